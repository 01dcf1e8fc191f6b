"""Migration 0009 (gateway sites, job leases, workers) down and up again on a filled store."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.services.collection.jobs import JobService
from headend.services.collection.workers import Workers
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Gateway, Meter, ReadJob
from tests.conftest import import_sample_fleet

BEFORE = "0008_redundant_indexes"
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_distributed_collection_migration_goes_down_and_up_keeping_the_registry_and_jobs(
    fresh_database_url: str,
) -> None:
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    store: sessionmaker[Session] = make_session_factory(engine)
    try:
        import_sample_fleet(store)
        with store.begin() as session:
            session.execute(update(Gateway).values(site="north"))
            pks = list(session.scalars(select(Meter.id).order_by(Meter.id)))
        jobs = JobService(store, clock=lambda: T0)
        ids = jobs.queue(pks, ReadKind.REGISTERS)
        jobs.start_many(jobs.due(10, set()), lease_s=60)
        Workers(store, clock=lambda: T0).beat("host:1", ["north"], 50, 3, 7)
        with store() as session:
            meters_before = session.execute(select(Meter.meter_id, Meter.gateway_id)).all()
            states_before = session.execute(select(ReadJob.id, ReadJob.state)).all()

        migrations.downgrade(fresh_database_url, BEFORE)
        inspector = inspect(engine)
        assert "workers" not in inspector.get_table_names()
        assert "site" not in {c["name"] for c in inspector.get_columns("gateways")}
        assert not {"worker", "lease_until"} & {
            c["name"] for c in inspector.get_columns("read_jobs")
        }
        with engine.connect() as conn:
            meters = sa.table("meters", sa.column("meter_id"), sa.column("gateway_id"))
            read_jobs = sa.table("read_jobs", sa.column("id"), sa.column("state"))
            assert sorted(
                conn.execute(select(meters.c.meter_id, meters.c.gateway_id)).all()
            ) == sorted(meters_before)
            assert len(conn.execute(select(read_jobs.c.id)).all()) == len(ids)

        migrations.upgrade(fresh_database_url)
        with store() as session:
            assert set(session.scalars(select(Gateway.site))) == {None}
            assert sorted(session.execute(select(ReadJob.id, ReadJob.state)).all()) == sorted(
                states_before
            )
            assert set(session.scalars(select(ReadJob.lease_until))) == {None}
        assert Workers(store, clock=lambda: T0).alive() == []
    finally:
        engine.dispose()
