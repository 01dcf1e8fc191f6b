"""The store's upkeep makes monthly partitions ahead, moves rows out of the default partition
into their month's, and drops months older than the retention setting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Quality
from headend.services.storage.upkeep import StoreUpkeep, first_kept
from headend.store import partitions
from headend.store.models import Meter
from headend.store.repositories.intervals import IntervalRepository
from tests.conftest import import_sample_fleet

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
A_PLUS = "1.0.1.8.0.255"


def _land(store: sessionmaker[Session], meter: int, days: list[date]) -> None:
    rows: list[dict[str, Any]] = []
    for day in days:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for i in range(1, 97):
            rows.append(
                {
                    "meter_id": meter,
                    "channel": A_PLUS,
                    "interval_end": midnight + timedelta(minutes=15 * i),
                    "value": Decimal("0.5"),
                    "cumulative": None,
                    "quality": Quality.RAW,
                    "flags": 0,
                    "status": 0,
                    "created_by": "meter",
                    "created_at": NOW,
                }
            )
    with store() as session, session.begin():
        IntervalRepository(session).land(rows)


def _days_stored(store: sessionmaker[Session], meter: int) -> list[date]:
    with store() as session:
        stored = IntervalRepository(session).versions([meter], datetime(1990, 1, 1, tzinfo=UTC))
    return sorted({(v.interval_end - timedelta(seconds=1)).date() for v in stored})


def _meter(store: sessionmaker[Session]) -> int:
    import_sample_fleet(store)
    with store() as session:
        return session.scalars(select(Meter.id).order_by(Meter.id)).first() or 0


def test_the_first_day_kept_is_the_first_of_the_month_so_many_months_back() -> None:
    assert first_kept(date(2026, 12, 7), 1) == date(2026, 11, 1)
    assert first_kept(date(2026, 12, 7), 12) == date(2025, 12, 1)
    assert first_kept(date(2026, 1, 31), 13) == date(2024, 12, 1)


@pytest.mark.db
def test_rows_older_than_every_partition_wait_in_the_default_one_until_upkeep_moves_them(
    store: sessionmaker[Session], engine: Engine
) -> None:
    meter = _meter(store)
    old = [date(2019, 3, 30), date(2019, 3, 31), date(2019, 4, 1)]  # history older than the store
    _land(store, meter, old)
    upkeep = StoreUpkeep(store, clock=lambda: NOW).run()
    assert _days_stored(store, meter) == old
    if engine.dialect.name != "postgresql":
        assert upkeep.created == []
        return
    with engine.connect() as conn:
        months = partitions.existing_months(conn)
        waiting = partitions.months_in_default(conn)
    assert {date(2019, 3, 1), date(2019, 4, 1), date(2027, 2, 1)} <= set(months)
    assert waiting == []
    assert StoreUpkeep(store, clock=lambda: NOW).run().created == []  # nothing left to do


@pytest.mark.db
def test_retention_drops_the_months_before_the_ones_kept_and_keeps_the_rest(
    store: sessionmaker[Session], engine: Engine
) -> None:
    meter = _meter(store)
    days = [date(2026, 8, 31), date(2026, 9, 1), date(2026, 10, 15), date(2026, 12, 6)]
    _land(store, meter, days)
    StoreUpkeep(store, clock=lambda: NOW).run()  # every month in a partition of its own
    summary = StoreUpkeep(store, retention_months=2, clock=lambda: NOW).run()
    assert summary.first_kept == date(2026, 10, 1)
    assert _days_stored(store, meter) == [date(2026, 10, 15), date(2026, 12, 6)]
    if engine.dialect.name == "postgresql":
        assert date(2026, 8, 1) in summary.dropped and date(2026, 9, 1) in summary.dropped
        with engine.connect() as conn:
            assert min(partitions.existing_months(conn)) == date(2026, 10, 1)
    else:
        assert summary.deleted == 2
