"""The registry's ``extra_obis``: objects read with every registers read besides the device
profile's registers, over real sockets from a simulated meter, landed as register reads; an
object the meter lacks (or holds under another class) is reported unavailable and the rest of
the read lands."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.profiles import load_profile
from headend.services.collection.runner import CollectionService
from headend.services.registry.imports import RegistryImportError, import_registry
from headend.simulator.consumption import MeterData
from headend.simulator.meter import Device
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.server import LogicalDevice
from headend.simulator.spec import MeterSpec
from headend.store.models import Meter, RawRead, RegisterReading
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.scheduling.simfleet_store import Clock, StoreFleet, make_fleet
from tests.services.billing.fleet import ICT

pytestmark = pytest.mark.timeout(120)

PROFILE = "import_register_only"
EXPORT = "1.0.2.8.0.255"  # a register the meter has and the profile does not read
AMR_STATUS = "0.0.96.10.1.255"  # a data object (class 1) the meter has
CURRENT = "1.0.31.7.0.255"  # an instantaneous current the meter does not have
EVENT_CODE = "0.0.96.11.0.255"  # a data object, named without its class: asked as a register
EXTRA = f"{EXPORT};1:{AMR_STATUS};{CURRENT};{EVENT_CODE}"


def _profiles(folder: Path) -> Path:
    """The shipped single-phase profile reading the import register alone."""
    raw = yaml.safe_load((REPO / "protocols" / "single_phase_residential.yaml").read_text())
    raw["name"] = PROFILE
    raw["reads"]["registers"] = ["1.0.1.8.0.255"]
    (folder / f"{PROFILE}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def _registry(specs: list[MeterSpec], extra: str) -> str:
    rows = list(csv.DictReader(io.StringIO(registry_csv(specs))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*rows[0], "extra_obis"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "extra_obis": extra} for row in rows)
    return out.getvalue()


def test_extra_objects_are_read_with_the_registers_and_the_missing_ones_reported(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = _profiles(tmp_path)
    served = load_profile("single_phase_residential")  # what the meter holds
    clock = Clock()
    specs = [
        replace(s, profile=PROFILE, capture_period_s=900, shape="household")
        for s in make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    ]

    def device(spec: MeterSpec) -> Device:
        built: Device = LogicalDevice(spec, MeterData(spec, resolution_wh=1, tz=ICT), served, clock)
        return built

    box = SecretBox(TEST_SECRET_KEY)
    import_registry(store, io.StringIO(_registry(specs, EXTRA)), box, frozenset({PROFILE}))
    with BackgroundSimulator(Simulator(specs, device)):
        fleet = StoreFleet({s.meter_id: s for s in specs}, clock, store)
        fleet.collection = CollectionService(
            store, box, fleet.collection.settings, clock=clock, profiles_dir=folder
        )
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.REGISTERS)
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=60))
        finally:
            dispatcher.close()
    assert fleet.jobs.summary(ids)["succeeded"] == 1

    with store() as session:
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == specs[0].meter_id))
        reads = {
            r.obis: r for r in session.scalars(select(RegisterReading).where(
                RegisterReading.meter_id == pk))
        }  # fmt: skip
        payload = session.scalars(select(RawRead.payload).where(RawRead.meter_id == pk)).one()
    assert set(reads) == {"1.0.1.8.0.255", EXPORT, AMR_STATUS}
    assert reads[EXPORT].unit == "kWh" and reads[EXPORT].value is not None
    assert reads[AMR_STATUS].unit == "" and reads[AMR_STATUS].value == payload["data"][AMR_STATUS]
    assert set(payload["unavailable"]) == {CURRENT, EVENT_CODE}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("2:1.0.1.8.0.255", "class 2 is not one of 1 (data), 3 (register), 4 (extended register)"),
        ("1.0.1.8", "'1.0.1.8' is not an OBIS code"),
        (f"{EXPORT};3:{EXPORT}", f"{EXPORT} is named twice"),
    ],
)
def test_an_extra_obis_entry_that_cannot_be_read_is_refused_at_import(
    store: sessionmaker[Session], tmp_path: Path, extra: str, problem: str
) -> None:
    specs = make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    box = SecretBox(TEST_SECRET_KEY)
    profiles = frozenset({specs[0].profile})

    with pytest.raises(RegistryImportError) as caught:
        import_registry(store, io.StringIO(_registry(specs, extra)), box, profiles)

    errors = [str(e) for e in caught.value.errors]
    assert len(errors) == 1 and f"extra_obis: '{extra.split(';')[-1]}': {problem}" in errors[0]
