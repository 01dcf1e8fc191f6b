"""Collection from simulated meters into the store, compared with what the meters measured."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import AuthLevel, JobState, ReadKind
from headend.store.blocks import StoredInterval
from headend.store.models import Meter, ReadJob, ReadJobTransition, RegisterReading
from tests.conftest import TEST_ACTOR
from tests.intervals import stored_intervals
from tests.scheduling.simfleet_store import Clock, make_fleet, serving_into_store

pytestmark = pytest.mark.timeout(120)
A_PLUS = "1.0.1.8.0.255"
DAILY = {"kinds": ["registers", "load_profile"]}


def _collect(fleet, meter_ids: list[str] | None = None, max_sessions: int = 50) -> list[int]:  # type: ignore[no-untyped-def]
    ids = fleet.jobs.queue_for_meters(
        meter_ids or list(fleet.specs), ReadKind.FULL, params=DAILY, skip_if_active=False
    )
    dispatcher = fleet.dispatcher(max_sessions)
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
    finally:
        dispatcher.close()
    fleet.last_dispatcher = dispatcher
    return ids


def _intervals(store: sessionmaker[Session], meter_id: str) -> list[StoredInterval]:
    return stored_intervals(store, meter_id, A_PLUS)


def _register(store: sessionmaker[Session], meter_id: str) -> Decimal | None:
    with store() as session:
        return session.scalar(
            select(RegisterReading.value)
            .join(Meter, RegisterReading.meter_id == Meter.id)
            .where(Meter.meter_id == meter_id, RegisterReading.obis == A_PLUS)
            .order_by(RegisterReading.read_at.desc())
        )


def test_every_meter_of_a_mixed_fleet_lands_exactly_what_it_measured(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 9)
    assert {s.auth for s in specs} == set(AuthLevel)
    with serving_into_store(specs, store) as fleet:
        ids = _collect(fleet)
        assert fleet.jobs.summary(ids)["succeeded"] == 9
        for meter_id in fleet.specs:
            data = fleet.data(meter_id)
            rows = _intervals(store, meter_id)
            period = timedelta(seconds=fleet.specs[meter_id].capture_period_s)
            # two days of backfill, every interval once, up to the last one the meter closed
            assert rows[-1].interval_end == max(
                r.end for r in data.intervals(fleet.clock.now - timedelta(hours=2), fleet.clock.now)
            )
            assert len(rows) == len({r.interval_end for r in rows})
            assert all(
                b.interval_end - a.interval_end == period for a, b in itertools.pairwise(rows)
            )
            truth = data.truth(rows[0].interval_end - period, rows[-1].interval_end)
            assert sum(r.value for r in rows) == truth.consumption["A+"], meter_id
            assert _register(store, meter_id) == truth.registers_end["A+"], meter_id


def test_a_meter_unreachable_for_days_is_backfilled_on_its_next_success(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 3, transport="wrapper", auth="none")
    clock = Clock()
    clock.now -= timedelta(days=4)
    with serving_into_store(specs, store, clock) as fleet:
        _collect(fleet)
        first = {m: _intervals(store, m)[-1].interval_end for m in fleet.specs}
    # the simulator is gone for three days: every read fails as unreachable
    clock.now += timedelta(days=3)
    from tests.scheduling.simfleet_store import StoreFleet

    offline = StoreFleet({s.meter_id: s for s in specs}, clock, store)
    ids = _collect(offline)
    with store() as session:
        states = set(session.scalars(select(ReadJob.state).where(ReadJob.id.in_(ids))))
        assert states == {JobState.FAILED}
    clock.now += timedelta(days=1)
    with serving_into_store(specs, store, clock) as fleet:
        _collect(fleet)
        for meter_id, before in first.items():
            rows = _intervals(store, meter_id)
            gapless = [r for r in rows if r.interval_end > before]
            period = timedelta(seconds=fleet.specs[meter_id].capture_period_s)
            assert len(gapless) == (rows[-1].interval_end - before) // period  # four days, no gap
            truth = fleet.data(meter_id).truth(before, rows[-1].interval_end)
            assert sum(r.value for r in gapless) == truth.consumption["A+"]


def test_sessions_never_overlap_on_a_bus_or_a_meter_under_load(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 24, transport="hdlc", auth="none", bus_size=4)
    with serving_into_store(specs, store) as fleet:
        ids = _collect(fleet, max_sessions=20)
        stats = fleet.last_dispatcher.stats
    assert fleet.jobs.summary(ids)["succeeded"] == 24
    assert stats.peak_sessions > 1  # the buses were read in parallel...
    assert max(stats.peak_by_gateway.values()) == 1  # ...one session per bus at a time


def test_hls_invocation_counters_are_reserved_in_the_store_before_a_session(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 3, transport="wrapper", auth="hls_gmac")
    with serving_into_store(specs, store) as fleet:
        _collect(fleet)
        with store() as session:
            after_one = dict(
                session.execute(select(Meter.meter_id, Meter.invocation_counter)).all()
            )
        _collect(fleet)
        with store() as session:
            after_two = dict(
                session.execute(select(Meter.meter_id, Meter.invocation_counter)).all()
            )
            total = session.scalar(
                select(func.count()).select_from(ReadJob).where(ReadJob.state == JobState.SUCCEEDED)
            )
    assert total == 6
    assert all(after_one[m] > 0 for m in after_one)
    assert all(after_two[m] > after_one[m] for m in after_two)


def test_an_on_demand_read_jumps_the_queue_and_its_caller_gets_the_values(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 6, transport="hdlc", auth="none", bus_size=6)
    with serving_into_store(specs, store) as fleet:
        scheduled = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        wanted = specs[-1].meter_id
        job_id = fleet.jobs.request_read(
            wanted, ReadKind.REGISTERS, requested_by="technician", actor=TEST_ACTOR
        )
        dispatcher = fleet.dispatcher()

        async def scenario():  # type: ignore[no-untyped-def]
            stop = asyncio.Event()
            running = asyncio.create_task(dispatcher.run(stop))
            outcome = await fleet.jobs.wait(job_id, timeout_s=30)
            stop.set()
            await running
            return outcome

        try:
            outcome = asyncio.run(scenario())
        finally:
            dispatcher.close()
    assert outcome is not None and outcome.state is JobState.SUCCEEDED
    with store() as session:
        started = list(
            session.scalars(
                select(ReadJobTransition.job_id)
                .where(ReadJobTransition.to_state == JobState.RUNNING)
                .order_by(ReadJobTransition.id)
            )
        )
    # one bus, one session at a time: the technician's read went first
    assert started[0] == job_id and set(started[1:]) <= set(scheduled)
    registers = outcome.values[0]["registers"]
    truth = fleet.data(wanted).truth(fleet.clock.now - timedelta(hours=1), fleet.clock.now)
    assert Decimal(registers[A_PLUS]["value"]) / 1000 == truth.registers_end["A+"]
