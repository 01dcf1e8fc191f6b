"""Clock synchronisation against a drifting simulated meter, and ``headend probe``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import typer
from typer.testing import CliRunner

from headend.cli.probe import register
from headend.domain.enums import AuthLevel, Transport
from headend.domain.readings import ClockAction, MeterRead
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.simulator.spec import Fault, FaultKind
from tests.ports import free_port
from tests.protocol.simfleet import AK, EK, NOW, PASSWORD, expected_register, meter, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)


def test_a_clock_drifting_past_the_threshold_is_set_and_the_record_says_so() -> None:
    spec = meter(
        "D1",
        Transport.WRAPPER,
        free_port(),
        AuthLevel.LLS,
        faults=(Fault(FaultKind.CLOCK_DRIFT, {"seconds": 300}),),
    )
    with serving([spec], now=None) as fleet:
        read_spec = fleet.read_spec("D1")

        async def go(threshold: float) -> MeterRead:
            async with MeterSession(fleet.target("D1"), counters=MemoryCounterStore()) as s:
                what = Collection(registers=False, clock_sync_threshold_s=threshold)
                return await collect(s, read_spec, what, DefinitionCache())

        first = run(go(20.0))
        second = run(go(20.0))
    assert first.clock_sync is not None
    assert first.clock_sync.action is ClockAction.SET
    assert 290 < first.clock_sync.before.drift_s < 310
    assert first.clock_sync.after is not None and abs(first.clock_sync.after.drift_s) < 2
    assert second.clock_sync is not None and second.clock_sync.action is ClockAction.NONE


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


@pytest.mark.parametrize("kind,auth", [("wrapper", "hls_gmac"), ("hdlc", "lls"), ("hdlc", "none")])
def test_the_probe_prints_the_documented_json(kind: str, auth: str) -> None:
    port = free_port()
    level = AuthLevel(auth)
    spec = replace(meter("P1", Transport(kind), port, level, physical=33), firmware="4.2.0-evn")
    args = [
        "probe",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--transport",
        kind,
        "--physical-address",
        "33",
        "--auth",
        auth,
        "--profile",
        "single_phase_residential",
        "--from",
        (NOW - timedelta(hours=2)).isoformat(),
        "--to",
        NOW.isoformat(),
        "--json",
    ]
    if level is AuthLevel.LLS:
        args += ["--password", PASSWORD]
    if level is AuthLevel.HLS_GMAC:
        args += ["--encryption-key", EK, "--authentication-key", AK]
    with serving([spec]) as fleet:
        result = CliRunner().invoke(_app(), args)
        data = fleet.data("P1")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) >= {"meter", "clock", "registers", "load_profile"}
    assert doc["meter"]["serial_number"] == "P1"
    assert doc["meter"]["firmware"] == "4.2.0-evn"
    assert datetime.fromisoformat(doc["clock"]["time"]) == data.meter_time(NOW)
    for obis, entry in doc["registers"].items():
        from headend.domain.obis import Obis

        want = expected_register("single_phase_residential", data, Obis.parse(obis), NOW)
        assert isinstance(entry["value"], str) and "E" not in entry["value"]
        assert Decimal(entry["value"]) == want and entry["unit"] in ("Wh", "W")
    rows = doc["load_profile"]
    assert len(rows) == 8
    for row in rows:
        end = datetime.fromisoformat(row["interval_end"])
        assert end.utcoffset() is not None
        value = row["values"]["1.0.1.8.0.255"]
        assert isinstance(value, str) and Decimal(value) == data.registers(end)["A+"]
        assert isinstance(row["status"], int)


def test_the_probe_fails_with_one_line_naming_the_category() -> None:
    result = CliRunner().invoke(_app(), ["probe", "--port", str(free_port()), "--timeout", "1"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("headend probe: unreachable:")


def test_the_probe_reports_a_rejected_association_by_its_category() -> None:
    port = free_port()
    spec = meter("P2", Transport.WRAPPER, port, AuthLevel.LLS)
    with serving([spec]):
        result = CliRunner().invoke(
            _app(), ["probe", "--port", str(port), "--auth", "lls", "--password", "not-it"]
        )
    assert result.exit_code == 1
    assert result.output.strip().startswith("headend probe: authentication_failed:")


def test_iso_times_without_offset_are_taken_as_utc() -> None:
    from headend.cli.probe import _parse_time

    assert _parse_time("2026-01-01T00:00:00", NOW).tzinfo == UTC


def test_the_probe_of_a_quirky_meter_without_maximum_demand_exits_0_and_names_what_it_learned() -> (
    None
):
    from headend.simulator.spec import Quirk

    port = free_port()
    spec = replace(
        meter("Q1", Transport.WRAPPER, port),
        quirks=(Quirk.SHORT_LIST_AFTER_FAILURE, Quirk.WRONG_INVOKE_ID_ON_ERROR),
        missing_objects=("1.0.1.6.0.255",),
    )
    args = ["probe", "--host", "127.0.0.1", "--port", str(port), "--transport", "wrapper"]
    args += ["--profile", "single_phase_residential", "--json"]
    with serving([spec]):
        result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["registers"]["1.0.1.6.0.255"]["value"] is None
    assert doc["registers"]["1.0.1.6.0.255"]["unavailable"]
    assert doc["registers"]["1.0.1.8.0.255"]["value"] is not None
    assert "get_with_list_unreliable" in doc["meter"]["quirks_learned"]


def test_the_probe_table_names_the_meters_firmware_under_its_serial_number() -> None:
    port = free_port()
    spec = replace(meter("T1", Transport.WRAPPER, port), firmware="7.7-b")
    args = ["probe", "--host", "127.0.0.1", "--port", str(port), "--transport", "wrapper"]
    args += ["--profile", "single_phase_residential"]
    with serving([spec]):
        result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("meter      T1  (")
    assert lines[1] == "firmware   7.7-b"
