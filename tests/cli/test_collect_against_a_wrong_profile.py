"""``headend collect`` with meters whose device profile is wrong for them, as an operator runs
it: they are counted under ``configuration`` with the reason (the meter's value and the
profile's), which the failed-read report gives too; the meter its profile describes is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from headend.simulator.devices import cosem_devices, link_parameters
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.cli.conftest import Headend
from tests.scheduling.simfleet_store import make_fleet

pytestmark = pytest.mark.timeout(120)
TOU, SINGLE = "three_phase_tou", "single_phase_residential"
COLUMNS = "0.0.1.0.0.255/2, 0.0.96.10.1.255/2, 1.0.1.8.0.255/2, 1.0.2.8.0.255/2"


@pytest.fixture
def meters(tmp_path: Path) -> Iterator[tuple[list[MeterSpec], Path]]:
    """Three three-phase meters on the wrapper and HDLC, served from this process: one
    capturing every 1800 s as its profile says, one every 900 s, one every 900 s registered
    as a single-phase meter; and the registry file that says so."""
    made = make_fleet(tmp_path, 3, transport="mixed", auth="none")
    specs = [replace(s, profile=TOU, shape="business", capture_period_s=1800) for s in made]
    specs[1:] = [replace(s, capture_period_s=900) for s in specs[1:]]
    registered = [*specs[:2], replace(specs[2], profile=SINGLE)]
    registry = tmp_path / "registry.csv"
    registry.write_text(registry_csv(registered))
    with BackgroundSimulator(Simulator(specs, cosem_devices(), link_parameters)):
        yield specs, registry


def test_collect_counts_meters_their_profile_misdescribes_as_configuration_and_reports_why(
    cli_env: dict[str, str],
    store: sessionmaker[Session],
    headend: Headend,
    meters: tuple[list[MeterSpec], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEADEND_BACKFILL_DAYS", "1")
    specs, registry = meters
    healthy, every_900, other_model = specs
    imported = headend("meters", "import", str(registry))
    assert imported.code == 0, imported.stderr
    ran = headend("collect", "--json", "--timeout", "90")
    assert ran.code == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert (summary["attempted"], summary["succeeded"], summary["failed"]) == (3, 1, 2)
    assert summary["failures_by_category"] == {"configuration": 2}
    period = (
        "configuration: load profile 1.0.99.1.0.255: capture period 900 s on the meter, "
        f"1800 s in profile {TOU}"
    )
    objects = (
        f"configuration: load profile 1.0.99.1.0.255: capture objects [{COLUMNS}, "
        f"1.0.3.8.0.255/2] on the meter, [{COLUMNS}] in profile {SINGLE}"
    )
    problems = {p["example_meter"]: p for p in summary["configuration_problems"]}
    assert problems == {
        every_900.meter_id: {"detail": period, "meters": 1, "example_meter": every_900.meter_id},
        other_model.meter_id: {
            "detail": objects,
            "meters": 1,
            "example_meter": other_model.meter_id,
        },
    }
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    report = headend("reports", "failed-reads", "--date", today, "--json")
    assert report.code == 0, report.stderr
    failed = {row["meter_id"]: row for row in json.loads(report.stdout)}
    assert set(failed) == {every_900.meter_id, other_model.meter_id}
    assert healthy.meter_id not in failed
    assert {row["category"] for row in failed.values()} == {"configuration"}
    assert failed[every_900.meter_id]["detail"] == period
    assert failed[other_model.meter_id]["detail"] == objects
    # once more as text: the count under its category, then why
    again = headend("collect", "--meter", every_900.meter_id, "--timeout", "90")
    assert again.code == 0, again.stderr
    lines = again.stdout.splitlines()
    at = lines.index("  configuration: 1")
    assert lines[at + 1] == f"    1 meter(s), e.g. {every_900.meter_id}: {period}"
