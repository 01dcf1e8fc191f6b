"""``headend probe`` against simulated meters that misbehave as real ones do, over the TCP
wrapper and HDLC: it exits 0 with the meter's true values once the device profile says what
the model does (or the session learns it), and otherwise ends with one line naming a category."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from headend.cli.probe import register
from headend.domain.enums import Transport
from headend.protocol.session import ENTRY_ACCESS_REFUSED, RANGE_ACCESS_REFUSED
from headend.simulator.devices import meter_data
from headend.simulator.spec import Quirk
from tests.conftest import REPO
from tests.ports import free_port
from tests.protocol.simfleet import Fleet, meter, serving

pytestmark = pytest.mark.timeout(60)
PROFILE = "single_phase_residential"
A_PLUS = "1.0.1.8.0.255"
QUIRKS = (Quirk.PDU_IGNORED, Quirk.DEVIATION_UNSPECIFIED, Quirk.NO_SELECTIVE_ACCESS)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    wrapper_port, hdlc_port = free_port(), free_port()
    specs = []
    for n, quirk in enumerate(QUIRKS):
        wrapped = meter(f"{quirk}-W", Transport.WRAPPER, wrapper_port, logical=n + 1, seed=n)
        on_bus = meter(f"{quirk}-H", Transport.HDLC, hdlc_port, physical=17 + n, seed=10 + n)
        specs += [replace(wrapped, quirks=(quirk,)), replace(on_bus, quirks=(quirk,))]
    with serving(specs, now=None) as served:
        yield served


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def profiles_with(tmp_path: Path, *settings: str) -> Path:
    """The shipped profiles, the household one with these lines in its ``quirks`` section."""
    folder = tmp_path / "profiles"
    shutil.copytree(REPO / "protocols", folder)
    path = folder / f"{PROFILE}.yaml"
    lines = path.read_text().splitlines()
    for setting in settings:
        key = setting.split(":")[0]
        lines = [line for line in lines if not line.startswith(f"  {key}:")]
        lines.insert(lines.index("quirks:") + 1, f"  {setting}")
    path.write_text("\n".join(lines) + "\n")
    return folder


class Probed:
    def __init__(self, code: int, stdout: str, stderr: str, start: datetime, end: datetime):
        self.code, self.stdout, self.stderr, self.start, self.end = code, stdout, stderr, start, end

    @property
    def doc(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.stdout)
        return found


def probe(
    fleet: Fleet, meter_id: str, monkeypatch: pytest.MonkeyPatch, folder: Path | None = None
) -> Probed:
    spec = fleet.specs[meter_id]
    if folder is not None:
        monkeypatch.setenv("HEADEND_PROFILES_DIR", str(folder))
    port = fleet.sim.endpoint_of(meter_id).address.rpartition(":")[2]
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(hours=6)
    args = ["probe", "--port", port, "--transport", spec.transport.value, "--json"]
    args += ["--server-address", str(spec.server_logical)]
    args += ["--physical-address", str(spec.server_physical), "--profile", PROFILE]
    args += ["--from", start.isoformat(), "--to", end.isoformat(), "--timeout", "5"]
    result = CliRunner().invoke(_app(), args)
    return Probed(result.exit_code, result.stdout, result.stderr, start, end)


def assert_rows_equal_the_truth(fleet: Fleet, meter_id: str, probed: Probed) -> None:
    """The probe's load-profile rows are the meter's captures of the period, at their UTC
    instants, each with the register value the meter holds there."""
    rows = probed.doc["load_profile"]
    truth = {
        row.end: row.registers["A+"]
        for row in meter_data(fleet.specs[meter_id]).intervals(
            probed.start - timedelta(seconds=1), probed.end, now=datetime.now(UTC)
        )
    }
    shown = {datetime.fromisoformat(r["interval_end"]): r["values"][A_PLUS] for r in rows}
    assert len(shown) == len(rows) and len(rows) >= 23  # six hours of quarter hours
    assert set(shown) <= set(truth) and len(truth) - len(shown) <= 1  # one may close meanwhile
    for at, value in shown.items():
        assert Decimal(str(value)) == truth[at], (meter_id, at)


@pytest.mark.parametrize("transport", ["W", "H"])
def test_the_probe_refuses_a_meter_overrunning_the_pdu_with_one_line_naming_malformed_frame(
    fleet: Fleet, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed = probe(fleet, f"pdu_ignored-{transport}", monkeypatch)
    assert probed.code == 1 and probed.stdout == ""
    lines = probed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("headend probe: malformed_frame:"), lines
    assert "more than" in lines[0]


@pytest.mark.parametrize("transport", ["W", "H"])
def test_the_probe_reads_a_meter_overrunning_the_pdu_when_its_profile_tolerates_it(
    fleet: Fleet, transport: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = profiles_with(tmp_path, "oversized_pdu_tolerance: 64")
    meter_id = f"pdu_ignored-{transport}"
    probed = probe(fleet, meter_id, monkeypatch, folder)
    assert probed.code == 0, probed.stderr
    assert_rows_equal_the_truth(fleet, meter_id, probed)
    assert probed.doc["meter"]["quirks_learned"] == []


@pytest.mark.parametrize("transport", ["W", "H"])
def test_the_probe_places_times_with_the_deviation_unspecified_in_the_profiles_time_zone(
    fleet: Fleet, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    meter_id = f"deviation_unspecified-{transport}"
    probed = probe(fleet, meter_id, monkeypatch)
    assert probed.code == 0, probed.stderr
    clock = probed.doc["clock"]
    assert clock["offset_assumed"] is True and clock["deviation_min"] is None
    assert datetime.fromisoformat(clock["time"]).utcoffset() == timedelta(hours=7)
    assert abs(clock["drift_s"]) < 60
    assert_rows_equal_the_truth(fleet, meter_id, probed)


@pytest.mark.parametrize("transport", ["W", "H"])
def test_the_probe_of_a_meter_refusing_selective_access_learns_it_and_keeps_the_period(
    fleet: Fleet, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    meter_id = f"no_selective_access-{transport}"
    probed = probe(fleet, meter_id, monkeypatch)
    assert probed.code == 0, probed.stderr
    assert probed.doc["meter"]["load_profile_access"] == "all"
    assert set(probed.doc["meter"]["quirks_learned"]) == {
        RANGE_ACCESS_REFUSED,
        ENTRY_ACCESS_REFUSED,
    }
    assert_rows_equal_the_truth(fleet, meter_id, probed)


@pytest.mark.parametrize("transport", ["W", "H"])
def test_the_probe_of_a_model_without_selective_access_reads_the_whole_buffer_learning_nothing(
    fleet: Fleet, transport: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = profiles_with(tmp_path, "supports_range_access: false", "supports_entry_access: false")
    meter_id = f"no_selective_access-{transport}"
    probed = probe(fleet, meter_id, monkeypatch, folder)
    assert probed.code == 0, probed.stderr
    assert probed.doc["meter"]["load_profile_access"] == "all"
    assert probed.doc["meter"]["quirks_learned"] == []
    assert_rows_equal_the_truth(fleet, meter_id, probed)
