"""A store that refuses writes during a collection loses no read: the reads wait in the spool,
their jobs stay running, and once the store takes writes again every read lands exactly once
and every job ends succeeded."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import JobState, ReadKind
from headend.protocol.transports import Timeouts
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.collection.spool import Spool
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import RawRead, ReadJob, RegisterReading
from headend.store.secrets import SecretBox
from tests.conftest import BACKEND, TEST_SECRET_KEY
from tests.intervals import every_stored_interval
from tests.scheduling.simfleet_store import Clock, StoreFleet, make_fleet, serving_into_store

pytestmark = pytest.mark.timeout(180)
DAILY = {"kinds": ["registers", "load_profile"]}
METERS = 6

# A trigger that aborts every insert into raw_reads: a real refusal by either database.
REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_raw_reads BEFORE INSERT ON raw_reads "
        "BEGIN SELECT RAISE(ABORT, 'the store refuses writes'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the store refuses writes'; END $$",
        "CREATE TRIGGER refuse_raw_reads BEFORE INSERT ON raw_reads "
        "FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
    ],
}
ALLOW = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_raw_reads"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS refuse_raw_reads ON raw_reads",
        "DROP FUNCTION IF EXISTS refuse_writes()",
    ],
}


def _execute(store: sessionmaker[Session], statements: list[str]) -> None:
    with store() as session, session.begin():
        for statement in statements:
            session.execute(text(statement))


def _spooling(fleet: StoreFleet, spool: Spool) -> None:
    fleet.collection = CollectionService(
        fleet.store,
        SecretBox(TEST_SECRET_KEY),
        CollectionSettings(
            backfill=timedelta(days=2),
            timeouts=Timeouts(connect=2.0, link=2.0, response=2.0, close=1.0),
        ),
        clock=fleet.clock,
        spool=spool,
        landing_retry_s=0.5,
        spool_every_s=0.2,
    )


def _counts(store: sessionmaker[Session]) -> dict[str, int]:
    with store() as session:
        return {
            "raw_reads": session.scalar(select(func.count()).select_from(RawRead)) or 0,
            "distinct_raw_reads": session.scalar(
                select(func.count(func.distinct(RawRead.content_hash)))
            )
            or 0,
            "intervals": len(every_stored_interval(session)),
            "registers": session.scalar(select(func.count()).select_from(RegisterReading)) or 0,
        }


def _states(store: sessionmaker[Session], ids: list[int]) -> list[JobState]:
    with store() as session:
        return list(session.scalars(select(ReadJob.state).where(ReadJob.id.in_(ids))))


def _collect(fleet: StoreFleet) -> list[int]:
    ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
    dispatcher = fleet.dispatcher()
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
    finally:
        dispatcher.close()
    return ids


def test_reads_the_store_refused_land_exactly_once_when_it_takes_writes_again(
    store: sessionmaker[Session], fresh_database_url: str, tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, METERS)
    clock = Clock()

    # the same collection into a store that takes every write
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        healthy = make_session_factory(engine)
        with serving_into_store(specs, healthy, clock) as fleet:
            _collect(fleet)
        expected = _counts(healthy)
    finally:
        engine.dispose()
    assert expected["raw_reads"] == METERS and expected["intervals"] > 0

    spool = Spool(tmp_path / "spool")
    with serving_into_store(specs, store, clock) as fleet:
        _spooling(fleet, spool)
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        dispatcher = fleet.dispatcher()
        _execute(store, REFUSE[BACKEND])

        async def collect() -> bool:
            finishing = asyncio.create_task(dispatcher.run_until_finished(ids, timeout_s=90))
            try:
                loop = asyncio.get_running_loop()
                give_up = loop.time() + 60
                while len(spool) < METERS and loop.time() < give_up:
                    await asyncio.sleep(0.1)
                # every read is spooled, nothing landed, and no job ended
                assert len(spool) == METERS
                assert _counts(store)["raw_reads"] == 0
                await asyncio.sleep(1.0)  # the spool's passes are refused too, meanwhile
                assert len(spool) == METERS
                assert set(_states(store, ids)) == {JobState.RUNNING}
            finally:
                _execute(store, ALLOW[BACKEND])
            return await finishing

        try:
            assert asyncio.run(collect())
        finally:
            dispatcher.close()
            _execute(store, ALLOW[BACKEND])

        assert fleet.collection.land_spooled().landed == 0  # nothing left to land
        assert spool.waiting() == []
        assert set(_states(store, ids)) == {JobState.SUCCEEDED}
        assert _counts(store) == expected

        # landing the same read again (a crash between commit and removal) adds nothing
        assert fleet.jobs.summary(ids)["succeeded"] == METERS


def test_a_spooled_read_lands_once_even_if_its_file_outlived_its_landing(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 2)
    spool = Spool(tmp_path / "spool")
    with serving_into_store(specs, store) as fleet:
        _spooling(fleet, spool)
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        dispatcher = fleet.dispatcher()
        _execute(store, REFUSE[BACKEND])
        try:

            async def until_spooled() -> None:
                finishing = asyncio.create_task(dispatcher.run_until_finished(ids, timeout_s=30))
                while len(spool) < 2:
                    await asyncio.sleep(0.05)
                finishing.cancel()
                await asyncio.gather(finishing, return_exceptions=True)

            asyncio.run(until_spooled())
        finally:
            dispatcher.close()
            _execute(store, ALLOW[BACKEND])
        copies = {p: p.read_bytes() for p in spool.waiting()}
        assert fleet.collection.land_spooled().landed == 2
        once = _counts(store)
        for path, raw in copies.items():  # as if the process died before removing them
            path.write_bytes(raw)
        assert fleet.collection.land_spooled().landed == 2
        assert _counts(store) == once and once["raw_reads"] == 2
        assert set(_states(store, ids)) == {JobState.SUCCEEDED}
