"""Collection into the store from simulated meters that misbehave as real ones do."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.profiles import load_profile
from headend.protocol.session import LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR
from headend.services.collection.quirks import LearnedQuirks
from headend.simulator.spec import Quirk
from headend.store.models import Meter, RawRead, RegisterReading
from tests.intervals import intervals_of
from tests.scheduling.simfleet_store import StoreFleet, make_fleet, serving_into_store

pytestmark = pytest.mark.timeout(120)
A_PLUS, MAX_DEMAND = "1.0.1.8.0.255", "1.0.1.6.0.255"
QUIRKS = (
    Quirk.SHORT_LIST_AFTER_FAILURE,
    Quirk.WRONG_INVOKE_ID_ON_ERROR,
    Quirk.HARDWARE_FAULT_FOR_MISSING,
)


def test_a_meter_with_quirks_and_no_maximum_demand_lands_its_registers_and_intervals(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = [
        replace(spec, quirks=QUIRKS, missing_objects=(MAX_DEMAND,))
        for spec in make_fleet(tmp_path, 2, transport="mixed", auth="none")
    ]
    assert {spec.transport.value for spec in specs} == {"wrapper", "hdlc"}
    with serving_into_store(specs, store) as fleet:
        ids = fleet.jobs.queue_for_meters(
            list(fleet.specs),
            ReadKind.FULL,
            params={"kinds": ["registers", "load_profile"]},
            skip_if_active=False,
        )
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
        finally:
            dispatcher.close()
        assert fleet.jobs.summary(ids)["succeeded"] == 2
        for meter_id in fleet.specs:
            with store() as session:
                meter = session.scalars(select(Meter).where(Meter.meter_id == meter_id)).one()
                raw = session.scalars(select(RawRead).where(RawRead.meter_id == meter.id)).one()
                registers = {
                    r.obis: r.value
                    for r in session.scalars(
                        select(RegisterReading).where(RegisterReading.meter_id == meter.id)
                    )
                }
                rows = intervals_of(session, meter.id, A_PLUS)
            assert raw.payload["unavailable"] == {MAX_DEMAND: "object_unavailable"}
            assert MAX_DEMAND not in registers
            period = timedelta(seconds=fleet.specs[meter_id].capture_period_s)
            truth = fleet.data(meter_id).truth(rows[0].interval_end - period, rows[-1].interval_end)
            assert sum(r.value for r in rows) == truth.consumption["A+"], meter_id
            assert registers[A_PLUS] == truth.registers_end["A+"], meter_id


def _learned(store: sessionmaker[Session]) -> dict[tuple[str, str], int]:
    """(device profile, quirk) -> sessions that found it"""
    return {(r.device_profile, r.quirk): r.sessions for r in LearnedQuirks(store).listing()}


def test_what_a_model_does_wrong_is_kept_and_the_next_read_does_not_pay_for_it_again(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = [
        replace(spec, quirks=QUIRKS, missing_objects=(MAX_DEMAND,))
        for spec in make_fleet(tmp_path, 2, transport="mixed", auth="none")
    ]
    profiles = {spec.profile for spec in specs}
    lists = {p for p in profiles if load_profile(p).quirks.supports_get_with_list}
    assert lists  # at least one model is asked for lists

    def read_all(fleet: StoreFleet) -> None:
        ids = fleet.jobs.queue_for_meters(
            list(fleet.specs), ReadKind.REGISTERS, params={}, skip_if_active=False
        )
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
        finally:
            dispatcher.close()
        assert fleet.jobs.summary(ids)["succeeded"] == 2

    with serving_into_store(specs, store) as fleet:
        read_all(fleet)
        first = _learned(store)
        assert set(first) == {(p, LIST_UNRELIABLE) for p in lists} | {
            (p, WRONG_INVOKE_ON_ERROR) for p in profiles
        }
        read_all(fleet)
        second = _learned(store)
    # the list is not asked for again, so no session finds it garbled; an error answer with
    # another invoke id is still taken (and found) in every session
    assert {k: v for k, v in second.items() if k[1] == LIST_UNRELIABLE} == {
        k: v for k, v in first.items() if k[1] == LIST_UNRELIABLE
    }
    for key, sessions in first.items():
        if key[1] == WRONG_INVOKE_ON_ERROR:
            assert second[key] > sessions
