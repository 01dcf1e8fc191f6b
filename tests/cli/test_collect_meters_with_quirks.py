"""``headend collect`` into the store from simulated meters that misbehave as real ones do, over
the TCP wrapper and HDLC: a meter overrunning the PDU size, one sending its times with the
deviation unspecified, one refusing selective access. Each read lands equal to the meter's
truth once the device profile says what the model does, or the session learns it; the store
keeps what was learned per device profile and firmware, and the next session starts knowing it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, Transport
from headend.protocol.session import ENTRY_ACCESS_REFUSED, RANGE_ACCESS_REFUSED
from headend.simulator.devices import meter_data
from headend.simulator.registry import write_registry
from headend.simulator.spec import MeterSpec, Quirk
from headend.store.models import LearnedQuirk, Meter, RawRead, ReadJob
from tests.cli.test_collect_command import _fast, _headend
from tests.conftest import REPO
from tests.intervals import stored_intervals
from tests.ports import free_port
from tests.protocol.simfleet import Fleet, meter, serving

pytestmark = pytest.mark.timeout(240)
PROFILE = "single_phase_residential"
A_PLUS = "1.0.1.8.0.255"


def _pair(name: str, quirk: Quirk, wrapper_port: int, hdlc_port: int, n: int) -> list[MeterSpec]:
    wrapped = meter(f"{name}-W", Transport.WRAPPER, wrapper_port, logical=n + 1, seed=n)
    on_bus = meter(f"{name}-H", Transport.HDLC, hdlc_port, physical=17 + n, seed=10 + n)
    return [replace(wrapped, quirks=(quirk,)), replace(on_bus, quirks=(quirk,))]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    wrapper_port, hdlc_port = free_port(), free_port()
    specs = [
        *_pair("PDU", Quirk.PDU_IGNORED, wrapper_port, hdlc_port, 0),
        *_pair("DEV", Quirk.DEVIATION_UNSPECIFIED, wrapper_port, hdlc_port, 1),
        *_pair("NOSEL", Quirk.NO_SELECTIVE_ACCESS, wrapper_port, hdlc_port, 2),
    ]
    with serving(specs, now=None) as served:  # the meters keep real time, as collect does
        yield served


def profiles_with(tmp_path: Path, *settings: str) -> Path:
    """A profiles folder: the shipped profiles, the household one with ``settings`` (lines
    of its ``quirks`` section, such as ``supports_range_access: false``)."""
    folder = tmp_path / "profiles"
    shutil.copytree(REPO / "protocols", folder)
    path = folder / f"{PROFILE}.yaml"
    text = path.read_text()
    for setting in settings:
        key = setting.split(":")[0]
        lines = [line for line in text.splitlines() if not line.startswith(f"  {key}:")]
        at = lines.index("quirks:") + 1
        text = "\n".join([*lines[:at], f"  {setting}", *lines[at:]]) + "\n"
    path.write_text(text)
    return folder


def imported(fleet: Fleet, env: dict[str, str], tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    write_registry(registry, list(fleet.specs.values()))
    done = _headend(["meters", "import", str(registry)], env)
    assert done.returncode == 0, done.stderr


def collect(env: dict[str, str], *meter_ids: str) -> dict[str, object]:
    args = ["collect", "--json"]
    for meter_id in meter_ids:
        args += ["--meter", meter_id]
    done: subprocess.CompletedProcess[str] = _headend(args, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def jobs(store: sessionmaker[Session]) -> dict[str, tuple[JobState, FailureCategory | None, str]]:
    with store() as session:
        rows = session.execute(
            select(Meter.meter_id, ReadJob.state, ReadJob.failure_category, ReadJob.failure_detail)
            .join(Meter, ReadJob.meter_id == Meter.id)
            .order_by(ReadJob.id)
        ).all()
    return {meter_id: (state, category, detail or "") for meter_id, state, category, detail in rows}


def assert_intervals_equal_the_truth(
    store: sessionmaker[Session], fleet: Fleet, meter_id: str
) -> int:
    """Every A+ interval stored for the meter ends at the instant the meter captured it (UTC)
    and carries the meter's cumulative register there; the number of intervals."""
    rows = stored_intervals(store, meter_id, A_PLUS, "raw")
    assert rows, meter_id
    data = meter_data(fleet.specs[meter_id])
    period = timedelta(seconds=data.period_s)
    truth = {
        row.end: row.registers["A+"]
        for row in data.intervals(
            rows[0].interval_end - period, rows[-1].interval_end, now=datetime.now(UTC)
        )
    }
    for row in rows:
        assert row.interval_end in truth, (meter_id, row.interval_end)
        assert row.cumulative == Decimal(truth[row.interval_end]) / 1000, meter_id
    return len(rows)


def raw_payload(store: sessionmaker[Session], meter_id: str) -> dict[str, object]:
    with store() as session:
        payload: dict[str, object] = session.scalars(
            select(RawRead.payload)
            .join(Meter, RawRead.meter_id == Meter.id)
            .where(Meter.meter_id == meter_id)
            .order_by(RawRead.id.desc())
        ).first()
    return payload


def learned(store: sessionmaker[Session]) -> dict[str, tuple[str, str, int]]:
    """quirk -> (device profile, first meter, sessions)"""
    with store() as session:
        rows = session.execute(
            select(LearnedQuirk, Meter.meter_id).join(
                Meter, LearnedQuirk.first_meter_id == Meter.id
            )
        ).all()
    return {q.quirk: (q.device_profile, meter_id, q.sessions) for q, meter_id in rows}


def test_a_meter_overrunning_the_pdu_is_refused_as_a_malformed_frame_unless_its_profile_allows_it(
    fleet: Fleet, cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    strict = _fast(cli_env)
    imported(fleet, strict, tmp_path)
    summary = collect(strict, "PDU-W", "PDU-H")
    assert summary["succeeded"] == 0
    found = jobs(store)
    for meter_id in ("PDU-W", "PDU-H"):
        state, category, detail = found[meter_id]
        assert (state, category) == (JobState.FAILED, FailureCategory.MALFORMED_FRAME), meter_id
        assert "more than" in detail, detail
    tolerant = _fast(
        cli_env, HEADEND_PROFILES_DIR=str(profiles_with(tmp_path, "oversized_pdu_tolerance: 64"))
    )
    summary = collect(tolerant, "PDU-W", "PDU-H")
    assert summary["succeeded"] == 2
    for meter_id in ("PDU-W", "PDU-H"):
        assert jobs(store)[meter_id][0] is JobState.SUCCEEDED
        assert assert_intervals_equal_the_truth(store, fleet, meter_id) > 100  # two days


def test_times_with_the_deviation_unspecified_are_placed_in_the_profiles_time_zone(
    fleet: Fleet, cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    env = _fast(cli_env)
    imported(fleet, env, tmp_path)
    summary = collect(env, "DEV-W", "DEV-H")
    assert summary["succeeded"] == 2
    for meter_id in ("DEV-W", "DEV-H"):
        assert assert_intervals_equal_the_truth(store, fleet, meter_id) > 100
        clock = raw_payload(store, meter_id)["clock"]
        assert isinstance(clock, dict)
        assert clock["offset_assumed"] is True and clock["deviation_min"] is None
        meter_time = datetime.fromisoformat(clock["meter_time"])
        assert meter_time.utcoffset() == timedelta(hours=7)  # Asia/Ho_Chi_Minh, the profile's
        assert abs(meter_time - datetime.fromisoformat(clock["system_time"])) < timedelta(minutes=1)


def test_a_model_without_selective_access_is_read_whole_keeping_the_period(
    fleet: Fleet, cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = profiles_with(tmp_path, "supports_range_access: false", "supports_entry_access: false")
    env = _fast(cli_env, HEADEND_PROFILES_DIR=str(folder))
    imported(fleet, env, tmp_path)
    summary = collect(env, "NOSEL-W", "NOSEL-H")
    assert summary["succeeded"] == 2
    for meter_id in ("NOSEL-W", "NOSEL-H"):
        count = assert_intervals_equal_the_truth(store, fleet, meter_id)
        assert 2 * 96 - 2 <= count <= 2 * 96 + 1  # the two days of the backfill, not 40
        load = raw_payload(store, meter_id)["load_profile"]
        assert isinstance(load, dict) and load["access"] == "all"
    assert learned(store) == {}  # configured, nothing to learn


def test_a_refused_selective_access_is_learned_for_the_model_and_not_paid_for_again(
    fleet: Fleet, cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    env = _fast(cli_env)
    imported(fleet, env, tmp_path)
    assert collect(env, "NOSEL-W")["succeeded"] == 1
    assert 2 * 96 - 2 <= assert_intervals_equal_the_truth(store, fleet, "NOSEL-W") <= 2 * 96 + 1
    assert learned(store) == {
        RANGE_ACCESS_REFUSED: (PROFILE, "NOSEL-W", 1),
        ENTRY_ACCESS_REFUSED: (PROFILE, "NOSEL-W", 1),
    }
    # another meter of the same model, then the first again: both start knowing it, so
    # neither session meets the refusal (the count of sessions that found it stays 1)
    assert collect(env, "NOSEL-H")["succeeded"] == 1
    assert collect(env, "NOSEL-W")["succeeded"] == 1
    assert learned(store) == {
        RANGE_ACCESS_REFUSED: (PROFILE, "NOSEL-W", 1),
        ENTRY_ACCESS_REFUSED: (PROFILE, "NOSEL-W", 1),
    }
    for meter_id in ("NOSEL-W", "NOSEL-H"):
        assert_intervals_equal_the_truth(store, fleet, meter_id)
        load = raw_payload(store, meter_id)["load_profile"]
        assert isinstance(load, dict) and load["access"] == "all"
    # and operators see it
    listed = _headend(["profiles", "quirks", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["device_profile"], r["quirk"], r["first_meter"]) for r in rows] == [
        (PROFILE, ENTRY_ACCESS_REFUSED, "NOSEL-W"),
        (PROFILE, RANGE_ACCESS_REFUSED, "NOSEL-W"),
    ]
    assert {r["firmware"] for r in rows} == {"1.0.0"}  # as the meters reported it
    table = _headend(["profiles", "quirks", "--profile", PROFILE], env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 2 and all(PROFILE in line and "NOSEL-W" in line for line in lines)
    assert all("firmware 1.0.0" in line for line in lines)
    assert RANGE_ACCESS_REFUSED in table.stdout
