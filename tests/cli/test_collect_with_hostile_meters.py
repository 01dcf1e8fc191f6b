"""``headend collect --timeout`` with hostile meters among healthy simulated ones, as an
operator runs it: it ends by itself, prints its JSON, reads every healthy meter, and files each
hostile meter's failure under the category that points at the meter."""

from __future__ import annotations

import csv
import json
import math
import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, Transport
from headend.domain.obis import Obis
from headend.protocol import axdr
from headend.simulator.fleet import load_fleet
from headend.store.models import Meter, ReadJob
from tests.cli.test_collect_command import _fast, _headend, _simulator
from tests.protocol.hostile_link import HostileMeter, endless_blocks, in_background, one_answer
from tests.protocol.hostile_values import Answer, hostile_meter

pytestmark = pytest.mark.timeout(240)
LOAD_PROFILE = Obis.parse("1.0.99.1.0.255")
A_PLUS = Obis.parse("1.0.1.8.0.255")
NAN = bytes((axdr.FLOAT64,)) + struct.pack(">d", math.nan)
SCALER_2_62 = axdr.structure(bytes((axdr.LONG64,)) + (2**62).to_bytes(8, "big"), axdr.enum(30))

# meter id: transport, what it answers, and the one category its failure may be filed under
CRAFTED: dict[str, tuple[Transport, dict[tuple[Obis, int], Answer], FailureCategory]] = {
    "HOSTILE-NESTED": (
        Transport.HDLC,
        {(LOAD_PROFILE, 2): b"\x01\x01" * 10_000 + b"\x00"},
        FailureCategory.DECODE_ERROR,
    ),
    "HOSTILE-HUGE-COUNT": (
        Transport.WRAPPER,
        {(LOAD_PROFILE, 2): b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 16},
        FailureCategory.DECODE_ERROR,
    ),
    "HOSTILE-NAN": (Transport.WRAPPER, {(A_PLUS, 2): NAN}, FailureCategory.DECODE_ERROR),
    "HOSTILE-SCALER": (Transport.HDLC, {(A_PLUS, 3): SCALER_2_62}, FailureCategory.DECODE_ERROR),
}


def _scripted() -> dict[str, tuple[Transport, HostileMeter, FailureCategory]]:
    """Meter id: transport, the scripted meter serving it, its one category."""
    return {
        "HOSTILE-60KB-BLOCKS": (
            Transport.WRAPPER,
            HostileMeter(Transport.WRAPPER, endless_blocks(60_000)),
            FailureCategory.MALFORMED_FRAME,
        ),
        "HOSTILE-SLOW-BLOCKS": (
            Transport.HDLC,
            HostileMeter(Transport.HDLC, endless_blocks(100, delay=0.3)),
            FailureCategory.RESPONSE_TIMEOUT,
        ),
        "HOSTILE-OVERSIZED": (
            Transport.HDLC,
            HostileMeter(Transport.HDLC, one_answer(60_000)),
            FailureCategory.MALFORMED_FRAME,
        ),
    }


@contextmanager
def _hostile_fleet() -> Iterator[dict[str, tuple[Transport, int, FailureCategory]]]:
    """Serve every hostile meter from this process: meter id to transport, port, category."""
    served: dict[str, tuple[Transport, int, FailureCategory]] = {}
    with ExitStack() as stack:
        for meter_id, (transport, meter, category) in _scripted().items():
            stack.enter_context(in_background(meter))
            served[meter_id] = (transport, meter.port, category)
        for meter_id, (transport, answers, category) in CRAFTED.items():
            fleet = stack.enter_context(hostile_meter(transport, answers, meter_id))
            address = fleet.sim.endpoint_of(meter_id).address
            served[meter_id] = (transport, int(address.rpartition(":")[2]), category)
        yield served


def _registry_rows(
    template: dict[str, str], served: dict[str, tuple[Transport, int, FailureCategory]]
) -> list[dict[str, str]]:
    rows = []
    for meter_id, (transport, port, _) in served.items():
        row = {key: "" for key in template}
        row.update(
            meter_id=meter_id,
            service_point=f"SP-{meter_id}",
            customer_ref=f"CUST-{meter_id}",
            gateway=f"hostile-{port}",
            gateway_kind="tcp",
            gateway_host="127.0.0.1",
            gateway_port=str(port),
            gateway_max_sessions="1",
            transport=transport.value,
            client_sap="16",
            server_logical="1",
            server_physical="17" if transport is Transport.HDLC else "",
            auth="none",
            device_profile="single_phase_residential",
            ct_ratio="1",
            vt_ratio="1",
            install_date=template["install_date"],
            status="active",
            tags="hostile",
        )
        rows.append(row)
    return rows


@pytest.mark.slow
def test_collect_among_hostile_meters_ends_by_itself_with_every_healthy_meter_read(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    # each session may take 5 s at most: the meter answering just inside the step timeout
    # ends there, every time it is tried
    env = _fast(cli_env, HEADEND_SESSION_BUDGET_S="5")
    with (
        _hostile_fleet() as served,
        _simulator(tmp_path, env, "--meters", "6", "--transport", "mixed", "--seed", "17") as fleet,
    ):
        registry = tmp_path / "hostile.csv"
        with (tmp_path / "registry.csv").open() as healthy:
            template = next(csv.DictReader(healthy))
        with registry.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(template))
            writer.writeheader()
            writer.writerows(_registry_rows(template, served))
        imported = _headend(["meters", "import", str(registry)], env)
        assert imported.returncode == 0, imported.stderr
        result = _headend(["collect", "--json", "--timeout", "20"], env, timeout=120)
    healthy_ids = {s.meter_id for s in load_fleet(fleet)}
    assert result.returncode in (0, 3), result.stderr  # every job ended, or the deadline came
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["attempted"] == len(healthy_ids) + len(served)
    assert summary["succeeded"] == len(healthy_ids)
    with store() as session:
        rows = session.execute(
            select(Meter.meter_id, ReadJob.state, ReadJob.failure_category).join(
                Meter, ReadJob.meter_id == Meter.id
            )
        ).all()
    assert JobState.RUNNING not in {state for _, state, _ in rows}
    jobs = {meter_id: (state, category) for meter_id, state, category in rows}
    assert len(jobs) == len(rows)  # one job per meter
    assert set(jobs) == healthy_ids | set(served)
    for meter_id in healthy_ids:
        assert jobs[meter_id] == (JobState.SUCCEEDED, None), meter_id
    for meter_id, (_, _, category) in served.items():
        state, filed = jobs[meter_id]
        assert state in (JobState.FAILED, JobState.RETRY_WAIT), (meter_id, state)
        assert filed == category, (meter_id, filed)
