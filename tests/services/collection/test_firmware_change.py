"""A meter whose firmware changes between two sessions of one running head-end, over real
sockets: the second session notices it from the identifier it reads with the serial number,
scales with the scalers of the new firmware (not those cached for the old one), keeps the new
firmware for the meter, and what it learns is kept under the new firmware."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.profiles import DeviceProfile
from headend.protocol.session import RANGE_ACCESS_REFUSED
from headend.services.collection.quirks import LearnedQuirks
from headend.services.registry.imports import import_registry
from headend.simulator.consumption import MeterData
from headend.simulator.meter import Device
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.server import LogicalDevice
from headend.simulator.spec import MeterSpec, Quirk
from headend.store.models import Meter, RegisterReading
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.scheduling.simfleet_store import PROFILES, Clock, StoreFleet, make_fleet
from tests.services.billing.fleet import ICT

pytestmark = pytest.mark.timeout(120)

PROFILE = "single_phase_residential"
A_PLUS = "1.0.1.8.0.255"


def _served(scaler: int) -> DeviceProfile:
    """The household model as a meter holds it, its energy registers counting 10**scaler Wh."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "protocols" / f"{PROFILE}.yaml").read_text())
    for obj in raw["objects"]:
        if obj["quantity"] in ("A+", "A-"):
            obj["scaler"] = scaler
    return DeviceProfile.model_validate(raw)


def _session(fleet: StoreFleet, spec: MeterSpec, served: DeviceProfile) -> None:
    """One registers and load profile read of the meter served as ``spec`` and ``served``."""

    def device(s: MeterSpec) -> Device:
        built: Device = LogicalDevice(s, MeterData(s, resolution_wh=1, tz=ICT), served, fleet.clock)
        return built

    with BackgroundSimulator(Simulator([spec], device)):
        kinds = {"kinds": ["registers", "load_profile"]}
        pks = fleet.jobs.queue_for_meters([spec.meter_id], ReadKind.REGISTERS, params=kinds)
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(pks, timeout_s=60))
        finally:
            dispatcher.close()
    assert fleet.jobs.summary(pks)["succeeded"] == 1


def _a_plus(store: sessionmaker[Session], meter_pk: int) -> list[Decimal]:
    with store() as session:
        return list(
            session.scalars(
                select(RegisterReading.value)
                .where(RegisterReading.meter_id == meter_pk, RegisterReading.obis == A_PLUS)
                .order_by(RegisterReading.read_at)
            )
        )


def test_a_meter_upgraded_between_sessions_is_read_with_the_scalers_of_its_new_firmware(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    (spec,) = [
        replace(s, profile=PROFILE, capture_period_s=900, shape="household", firmware="1.0.0")
        for s in make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    ]
    box = SecretBox(TEST_SECRET_KEY)
    import_registry(store, io.StringIO(registry_csv([spec])), box, PROFILES)
    fleet = StoreFleet({spec.meter_id: spec}, Clock(), store)
    with store() as session:
        pk = session.scalars(select(Meter.id).where(Meter.meter_id == spec.meter_id)).one()

    _session(fleet, spec, _served(0))  # its firmware is not known before this one
    fleet.clock.now += timedelta(minutes=15)
    _session(fleet, spec, _served(0))  # known now: scalers come from the cache
    # the same meter, upgraded: firmware 2.0.0 counts energy in tens of Wh, refuses selective
    # access to its buffers, and the same head-end (its cache) reads it a quarter hour later
    fleet.clock.now += timedelta(minutes=15)
    upgraded = replace(spec, firmware="2.0.0", quirks=(Quirk.NO_SELECTIVE_ACCESS,))
    _session(fleet, upgraded, _served(1))

    data = MeterData(spec, resolution_wh=1, tz=ICT)
    first, second, upgraded_wh = (
        data.registers(fleet.clock.now - timedelta(minutes=m))["A+"] for m in (30, 15, 0)
    )
    assert _a_plus(store, pk) == [
        Decimal(first).scaleb(-3),
        Decimal(second).scaleb(-3),
        Decimal(upgraded_wh // 10 * 10).scaleb(-3),
    ]
    with store() as session:
        assert session.scalar(select(Meter.firmware).where(Meter.id == pk)) == "2.0.0"
    cache = fleet.collection.cache
    obis = Obis.parse(A_PLUS)
    assert cache.table(spec.meter_id, PROFILE, "1.0.0")[obis] == (0, 30)
    assert cache.table(spec.meter_id, PROFILE, "2.0.0")[obis] == (1, 30)
    assert cache.profiles(spec.meter_id, PROFILE, "2.0.0")
    learned = [(row["quirk"], row["firmware"]) for row in LearnedQuirks(store).as_json()]
    assert (RANGE_ACCESS_REFUSED, "2.0.0") in learned
    assert all(firmware == "2.0.0" for _, firmware in learned)
