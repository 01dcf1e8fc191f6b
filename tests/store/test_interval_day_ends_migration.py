"""Migration 0010 (the captures at the end of each local day) down and up again on a store
with intervals, rollups and billing records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Quality
from headend.services.billing.service import BillingService, parse_period
from headend.services.validation.rollups import RollupService
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import IntervalDayEnd, Meter, RollupBasis
from tests.conftest import import_sample_fleet
from tests.intervals import store_versions

BEFORE = "0009_distributed_collection"
ICT = ZoneInfo("Asia/Ho_Chi_Minh")
A_PLUS, A_MINUS = "1.0.1.8.0.255", "1.0.2.8.0.255"
FIRST = datetime(2026, 11, 1, tzinfo=ICT)  # local midnight
NOW = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)


def _fill(store: sessionmaker[Session]) -> None:
    """Four local days of 15-minute intervals of both channels for each meter, each with the
    register's capture, a value of 0.25 kWh and the register counting from 1,000 kWh."""
    with store.begin() as session:
        pks = list(session.scalars(select(Meter.id).order_by(Meter.id)))
        rows = []
        for pk in pks:
            for channel in (A_PLUS, A_MINUS):
                for n in range(1, 4 * 96 + 1):
                    rows.append(
                        {
                            "meter_id": pk,
                            "channel": channel,
                            "interval_end": (FIRST + timedelta(minutes=15 * n)).astimezone(UTC),
                            "value": Decimal("0.25"),
                            "cumulative": Decimal(1000 + pk) + Decimal("0.25") * n,
                            "quality": Quality.VALID,
                            "created_by": "test",
                        }
                    )
        store_versions(session, rows)


def _records(store: sessionmaker[Session], rollups: bool = True) -> list[str]:
    period = parse_period(None, "2026-11-02T00:00+07:00", "2026-11-04T00:00+07:00", ICT)
    service = BillingService(store, ICT, rollups=rollups)
    return [r.model_dump_json() for r in service.records(period)]


def _ends(store: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with store() as session:
        rows = session.execute(select(IntervalDayEnd).order_by(IntervalDayEnd.meter_id))
        return sorted((e.meter_id, e.channel, e.day, e.capture, e.quality) for e in rows.scalars())


def test_the_day_ends_migration_goes_down_and_up_and_the_next_pass_rebuilds_them(
    fresh_database_url: str,
) -> None:
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    store: sessionmaker[Session] = make_session_factory(engine)
    try:
        import_sample_fleet(store)
        _fill(store)
        rollups = RollupService(store, ICT, clock=lambda: NOW)
        rollups.run_pending()
        ends = _ends(store)
        with store() as session:
            meters = session.scalar(select(func.count()).select_from(Meter))
        # the ends of the first three days (the fourth ends at the last interval: a capture
        # too), both channels, every meter
        assert meters and len(ends) == meters * 2 * 4
        first = min(ends)
        assert first[2] == FIRST.date() and first[3] == Decimal(1000 + first[0]) + 24
        records = _records(store)
        assert records == _records(store, rollups=False)

        migrations.downgrade(fresh_database_url, BEFORE)
        assert "interval_day_ends" not in inspect(engine).get_table_names()
        with store() as session:
            assert session.scalar(select(func.count()).select_from(RollupBasis)) == 0

        migrations.upgrade(fresh_database_url)
        assert _ends(store) == []
        assert _records(store) == records  # from the intervals until the pass is done
        assert RollupService(store, ICT, clock=lambda: NOW).run_pending().rebuilt
        assert _ends(store) == ends
        assert _records(store) == records
    finally:
        engine.dispose()
