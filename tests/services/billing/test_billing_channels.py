"""Which energy a billing record bills comes from the meter's device profile: a household meter
whose export register is read but captured in no profile gets billable records, with export
reported as not billed, from the service, the API and ``headend export billing``. The meters
are simulated with that profile, collected, validated and billed from a profiles folder of
their own (the ``profiles_dir`` setting)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine

from headend.api.app import create_app
from headend.api.server import ApiServer
from headend.config import Settings
from headend.domain.billing import BillingRecord, RecordQuality
from headend.domain.enums import ReadKind, Role
from headend.domain.quality import Quality
from headend.profiles import load_profile
from headend.runtime import Runtime
from headend.services.access.keys import KeyService
from headend.services.billing.service import BillingPeriod, BillingService, parse_period
from headend.services.collection.runner import CollectionService
from headend.services.registry.imports import import_registry
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.simulator.consumption import MeterData
from headend.simulator.meter import Device
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.server import LogicalDevice
from headend.simulator.spec import MeterSpec
from headend.store.engine import make_session_factory
from headend.store.secrets import SecretBox
from tests.cli.conftest import HEADEND
from tests.conftest import REPO, TEST_ACTOR, TEST_SECRET_KEY, headend_env
from tests.ports import free_ports
from tests.scheduling.simfleet_store import Clock, StoreFleet, make_fleet
from tests.services.billing.fleet import ICT, empty

pytestmark = pytest.mark.timeout(180)

HOUSEHOLD = "household_export_unbilled"
EXPORT = "1.0.2.8.0.255"


def household_profile(folder: Path, name: str = HOUSEHOLD, bill_export: bool = False) -> Path:
    """The shipped single-phase profile, its export register read on schedule but captured by
    neither the load profile nor the billing profile; export billed only if asked."""
    raw = yaml.safe_load((REPO / "protocols" / "single_phase_residential.yaml").read_text())
    raw["name"] = name
    for section in ("load_profile", "billing_profile"):
        captured = raw[section]["capture_objects"]
        raw[section]["capture_objects"] = [c for c in captured if c["obis"] != EXPORT]
    assert EXPORT in raw["reads"]["registers"]
    del raw["billing"]
    if bill_export:
        raw["billing"] = {"quantities": ["A+", "A-"]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


@dataclass
class Household:
    database_url: str
    folder: Path  # the profiles folder the meters' profile is in
    service: BillingService
    day: BillingPeriod  # yesterday, collected and validated
    meters: list[str]
    data: dict[str, MeterData]


def _collect(fleet: StoreFleet) -> None:
    ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, skip_if_active=False)
    dispatcher = fleet.dispatcher()
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
    finally:
        dispatcher.close()
    assert fleet.jobs.summary(ids)["succeeded"] == len(fleet.specs)


@pytest.fixture(scope="module")
def household(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Household]:
    folder = household_profile(tmp_path_factory.mktemp("profiles"))
    profile = load_profile(HOUSEHOLD, folder)
    store = make_session_factory(engine)
    clock = Clock()
    empty(engine)
    specs = [
        replace(s, profile=HOUSEHOLD, capture_period_s=900, shape="household")
        for s in make_fleet(tmp_path_factory.mktemp("fleet"), 3, transport="wrapper", auth="none")
    ]
    data = {s.meter_id: MeterData(s, resolution_wh=1, tz=ICT) for s in specs}

    def device(spec: MeterSpec) -> Device:
        built: Device = LogicalDevice(spec, data[spec.meter_id], profile, clock)
        return built

    box = SecretBox(TEST_SECRET_KEY)
    import_registry(store, io.StringIO(registry_csv(specs)), box, frozenset({HOUSEHOLD}))
    with BackgroundSimulator(Simulator(specs, device)):
        fleet = StoreFleet({s.meter_id: s for s in specs}, clock, store)
        fleet.collection = CollectionService(
            store,
            box,
            replace(fleet.collection.settings, backfill=timedelta(days=3)),
            clock=clock,
            profiles_dir=folder,
        )
        _collect(fleet)
    rollups = RollupService(store, ICT, clock=clock, profiles_dir=folder)
    ValidationService(store, clock=clock, rollups=rollups, profiles_dir=folder).run_pending()
    yesterday = clock.now.astimezone(ICT).date() - timedelta(days=1)
    yield Household(
        database_url,
        folder,
        BillingService(store, ICT, profiles_dir=folder),
        parse_period(yesterday.isoformat(), None, None, ICT),
        sorted(data),
        data,
    )
    empty(engine)


def _assert_billable_with_export_not_billed(record: BillingRecord) -> None:
    assert record.billable, record.reason
    assert record.quality is RecordQuality.ACTUAL
    assert record.reason is None
    assert record.not_billed == ("export",)
    assert record.export_energy is not None  # read, reported, not billed
    assert record.export_energy.opening is None and record.export_energy.closing is None
    assert record.notes == (
        "export not billed: no export register read at the period start; "
        "no export register read at the period end"
    )
    assert record.import_energy.source == "registers"
    opening, closing = record.import_energy.opening, record.import_energy.closing
    assert opening is not None and closing is not None
    # the boundary reads carry the quality the VEE pass gave them
    assert (opening.source, opening.quality) == ("register", Quality.VALID)
    assert (closing.source, closing.quality) == ("register", Quality.VALID)


def test_a_household_meter_whose_export_no_profile_captures_gets_billable_records(
    household: Household,
) -> None:
    day = household.day
    for meter in household.meters:
        record = household.service.record(meter, day)
        _assert_billable_with_export_not_billed(record)
        truth = household.data[meter].truth(day.start, day.end)
        assert record.import_energy.consumption_kwh == truth.consumption["A+"]
        assert record.tou.source == "registers"


def test_the_same_meter_billed_on_export_by_its_profile_is_not_billable_for_want_of_it(
    household: Household, tmp_path: Path
) -> None:
    folder = household_profile(tmp_path / "profiles", bill_export=True)
    billing = BillingService(household.service.session_factory, ICT, profiles_dir=folder)

    record = billing.record(household.meters[0], household.day)

    assert not record.billable
    assert record.quality is RecordQuality.PARTIAL
    assert record.reason == (
        "no export register read at the period start; no export register read at the period end"
    )
    assert record.not_billed == () and record.notes is None


class _Api:
    """The API on a loopback port, on the household store and its profiles folder."""

    def __init__(self, household: Household) -> None:
        settings = Settings(
            database_url=household.database_url,
            secret_key=TEST_SECRET_KEY,
            profiles_dir=household.folder,
        )
        runtime = Runtime(settings)
        self.key = KeyService(runtime.session_factory).create(
            "billing-channels", Role.BILLING, actor=TEST_ACTOR
        )[1]
        self.port = free_ports(1)
        self.server = ApiServer(create_app(runtime.api_context()), "127.0.0.1", self.port)
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(),))

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30.0,
        )

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def test_the_api_serves_them_billable_with_export_not_billed(household: Household) -> None:
    period = {"period": household.day.label}
    with _Api(household) as client:
        one = client.get(f"/api/v1/meters/{household.meters[0]}/billing", params=period)
        stream = client.get("/api/v1/billing", params={**period, "format": "ndjson"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["billable"] is True and body["not_billed"] == ["export"]
    assert body["export_energy"]["obis"] == EXPORT
    assert stream.status_code == 200, stream.text
    records = [BillingRecord.model_validate_json(line) for line in stream.text.splitlines()]
    assert [r.meter_id for r in records] == household.meters
    for record in records:
        _assert_billable_with_export_not_billed(record)


def test_export_billing_writes_them_billable_with_export_not_billed(
    household: Household, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = headend_env(household.database_url, monkeypatch)
    env["HEADEND_PROFILES_DIR"] = str(household.folder)
    period = household.day.label

    def export(form: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HEADEND, "export", "billing", "--period", period, "--format", form],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ndjson, table = export("ndjson"), export("csv")

    assert ndjson.returncode == 0, ndjson.stderr
    for line in ndjson.stdout.splitlines():
        record = BillingRecord.model_validate_json(line)
        _assert_billable_with_export_not_billed(record)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [r["meter_id"] for r in rows] == household.meters
    assert {(r["billable"], r["quality"]) for r in rows} == {("true", "actual")}
    assert json.loads(ndjson.stdout.splitlines()[0])["notes"].startswith("export not billed")
