"""``headend probe`` with the default profile against a meter of another model, over the TCP
wrapper and HDLC: the meter captures other objects every 30 minutes, has no maximum demand and
garbles its GET-with-list answers after a failed item. The probe exits 0, prints the load
profile the meter has with its own channels, and reports maximum demand unavailable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.profiles import load_profile
from headend.simulator.spec import Quirk
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter, serving
from tests.protocol.test_clock_and_probe import _app

pytestmark = pytest.mark.timeout(60)

SHIPPED = Path(__file__).resolve().parents[2] / "protocols"
MODEL = "acme_three_phase"
MAX_DEMAND = "1.0.1.6.0.255"
# the other model's load profile: reactive import besides the single-phase meter's channels
METER_COLUMNS = ["0.0.1.0.0.255", "0.0.96.10.1.255", "1.0.1.8.0.255", "1.0.2.8.0.255"]
METER_COLUMNS.append("1.0.3.8.0.255")
CHANNELS = {"1.0.1.8.0.255": "Wh", "1.0.2.8.0.255": "Wh", "1.0.3.8.0.255": "varh"}


def another_model(folder: Path) -> Path:
    """A three-phase model that answers GET with list: the shipped three-phase profile under
    another name, lists allowed."""
    text = (SHIPPED / "three_phase_tou.yaml").read_text()
    text = text.replace("name: three_phase_tou", f"name: {MODEL}")
    text = text.replace("supports_get_with_list: false", "supports_get_with_list: true")
    (folder / f"{MODEL}.yaml").write_text(text)
    return folder


def probe(fleet: Fleet, meter_id: str, *options: str) -> tuple[int, str]:
    spec = fleet.specs[meter_id]
    address = fleet.sim.endpoint_of(meter_id).address
    args = ["probe", "--host", "127.0.0.1", "--port", address.rpartition(":")[2]]
    args += ["--transport", spec.transport.value, "--physical-address", "17"]
    args += ["--from", (NOW - timedelta(hours=2)).isoformat(), "--to", NOW.isoformat(), *options]
    result = CliRunner().invoke(_app(), args)  # no --profile: single_phase_residential
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = another_model(tmp_path_factory.mktemp("profiles"))
    specs = [
        replace(
            meter(f"ACME-{kind.value}", kind, free_port(), profile=MODEL, profiles=folder),
            quirks=(Quirk.SHORT_LIST_AFTER_FAILURE,),
            missing_objects=(MAX_DEMAND,),
        )
        for kind in (Transport.WRAPPER, Transport.HDLC)
    ]
    with serving(specs, profiles=folder) as served:
        yield served


def test_the_other_model_differs_from_the_default_profile_where_the_probe_must_cope() -> None:
    ours = load_profile("single_phase_residential").load_profile
    theirs = load_profile("three_phase_tou").load_profile
    assert [str(c.obis) for c in theirs.capture_objects] == METER_COLUMNS
    assert [c.obis for c in ours.capture_objects] != [c.obis for c in theirs.capture_objects]
    assert (ours.capture_period_s, theirs.capture_period_s) == (900, 1800)


@pytest.mark.parametrize("kind", [Transport.WRAPPER, Transport.HDLC], ids=["wrapper", "hdlc"])
def test_the_probe_prints_the_load_profile_the_meter_has_and_maximum_demand_unavailable(
    fleet: Fleet, kind: Transport
) -> None:
    meter_id = f"ACME-{kind.value}"
    code, out = probe(fleet, meter_id, "--json")
    assert code == 0, out
    doc = json.loads(out)
    about = doc["meter"]
    assert about["profile"] == "single_phase_residential"
    assert about["capture_period_s"] == 1800
    assert [c["obis"] for c in about["load_profile_columns"]] == METER_COLUMNS
    units = {c["obis"]: c["unit"] for c in about["load_profile_columns"] if c["unit"]}
    assert units == CHANNELS
    assert doc["registers"][MAX_DEMAND]["value"] is None
    assert doc["registers"][MAX_DEMAND]["unavailable"] == "object_unavailable"
    assert "object-undefined" in doc["registers"][MAX_DEMAND]["detail"]
    assert doc["registers"]["1.0.1.8.0.255"]["value"] is not None
    assert "get_with_list_unreliable" in about["quirks_learned"]
    assert about["profile_differences"][0] == (
        "load profile 1.0.99.1.0.255: capture period 1800 s on the meter, "
        "900 s in profile single_phase_residential"
    )
    assert "1.0.3.8.0.255/2" in about["profile_differences"][1]
    # every row is the meter's, each channel as the simulator's truth has it
    data = fleet.data(meter_id)
    truth = data.intervals(NOW - timedelta(hours=2), NOW, now=NOW)
    rows = doc["load_profile"]
    assert [datetime.fromisoformat(r["interval_end"]) for r in rows] == [t.end for t in truth]
    assert len(rows) == 4
    model = load_profile(MODEL, fleet.profiles)
    for row, want in zip(rows, truth, strict=True):
        assert set(row["values"]) == set(CHANNELS)
        for obis, value in row["values"].items():
            obj = model.object_by_obis(Obis.parse(obis))
            assert obj is not None
            assert Decimal(str(value)) == Decimal(want.registers[obj.quantity.value]), obis


@pytest.mark.parametrize("kind", [Transport.WRAPPER, Transport.HDLC], ids=["wrapper", "hdlc"])
def test_the_probe_table_shows_the_meters_channels_and_what_it_lacks(
    fleet: Fleet, kind: Transport
) -> None:
    code, out = probe(fleet, f"ACME-{kind.value}")
    assert code == 0, out
    lines = out.splitlines()
    assert f"  {MAX_DEMAND:<16} unavailable (object_unavailable)" in lines
    channels = ", ".join(f"{obis} {unit}" for obis, unit in CHANNELS.items())
    assert f"load profile every 1800 s, channels: {channels}" in lines
    assert "load profile: 4 rows" in lines
    rows = lines[lines.index("load profile: 4 rows") + 1 :]
    assert len(rows) == 4 and all("1.0.3.8.0.255=" in row for row in rows)
    differs = [line for line in lines if line.startswith("differs ")]
    assert len(differs) == 2 and "capture period 1800 s on the meter" in differs[0]
    assert any(line.startswith("quirks ") and "get_with_list_unreliable" in line for line in lines)
