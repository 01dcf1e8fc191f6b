"""The migration to interval blocks converts a store in place, up and down, keeping every
version of every interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from headend.store import migrations, partitions
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter
from headend.store.repositories.intervals import IntervalRepository
from headend.store.types import UtcDateTime
from tests.conftest import import_sample_fleet

BEFORE = "0005_meters_firmware"
A_PLUS, A_MINUS = "1.0.1.8.0.255", "1.0.2.8.0.255"
T0 = datetime(2026, 10, 30, 22, 0, tzinfo=UTC)  # the data crosses a month and a UTC day

LEGACY = sa.Table(
    "interval_readings",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("meter_id", sa.Integer),
    sa.Column("channel", sa.String(24)),
    sa.Column("interval_end", UtcDateTime()),
    sa.Column("version", sa.Integer),
    sa.Column("value", sa.BigInteger),
    sa.Column("cumulative", sa.BigInteger),
    sa.Column("quality", sa.String(32)),
    sa.Column("flags", sa.Integer),
    sa.Column("status", sa.Integer),
    sa.Column("method", sa.String(8)),
    sa.Column("rules", sa.String(128)),
    sa.Column("inputs", sa.String(255)),
    sa.Column("raw_read_id", sa.Integer),
    sa.Column("created_by", sa.String(64)),
    sa.Column("created_at", UtcDateTime()),
)
RAW = sa.Table(
    "raw_reads",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("meter_id", sa.Integer),
    sa.Column("kind", sa.String(32)),
    sa.Column("read_at", UtcDateTime()),
    sa.Column("payload", sa.JSON),
    sa.Column("content_hash", sa.String(64)),
)
FIELDS = [c.name for c in LEGACY.c if c.name != "id"]


def _legacy_rows(meters: list[int], raw_id: int) -> list[dict[str, Any]]:
    """Three days of a channel pair for each meter: as read, VEE's acceptance of each, an
    estimate over a gap, an operator's edit with its reason, and a read with no value."""
    rows: list[dict[str, Any]] = []
    read_at = T0 + timedelta(days=3, minutes=7, microseconds=123456)
    for n, pk in enumerate(meters):
        for channel in (A_PLUS, A_MINUS):
            register = 1_234_567_000 + n * 1000
            for i in range(1, 3 * 96 + 1):
                end = T0 + timedelta(minutes=15 * i)
                value = 0 if channel == A_MINUS else (i * 37 % 500 + 10) * 1000
                register += value
                gap = 100 <= i < 104
                rows.append(
                    _row(pk, channel, end, 0, None if gap else value, None if gap else register,
                         "MISSING" if gap else "RAW", 128 if i == 104 else 0,
                         None if gap else (8 if i % 50 == 0 else 0), None, None, None,
                         raw_id, "meter", read_at)
                )  # fmt: skip
                if gap:
                    rows.append(
                        _row(pk, channel, end, 1, value + 3, None, "EST_LINEAR", 64, None, "E2",
                             "V05", "interpolated between 100 and 104", None, "vee:default",
                             read_at + timedelta(hours=1))
                    )  # fmt: skip
                else:
                    rows.append(
                        _row(pk, channel, end, 1, value, None, "VALID", 0, None, None, None,
                             None, None, "vee:default", read_at + timedelta(hours=1))
                    )  # fmt: skip
                if channel == A_PLUS and i in (7, 8):
                    rows.append(
                        _row(pk, channel, end, 2, 123_456_789, None, "EDITED", 0, None, None,
                             None, "edit #4: meter replaced", None, "operator.nguyen",
                             read_at + timedelta(days=1, seconds=1))
                    )  # fmt: skip
    return rows


def _row(meter_id: int, channel: str, *values: Any) -> dict[str, Any]:
    return dict(zip(FIELDS, [meter_id, channel, *values], strict=True))


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["meter_id"], row["channel"], row["interval_end"], row["version"])


def _as_legacy(version: Any) -> dict[str, Any]:
    row = version._asdict()
    for name in ("value", "cumulative"):
        row[name] = None if row[name] is None else int(row[name].scaleb(6))
    row["quality"] = str(row["quality"])
    return row


@pytest.mark.db
def test_the_interval_blocks_migration_keeps_every_version_up_and_down(
    fresh_database_url: str,
) -> None:
    # the registry is imported by today's code, then the schema taken back to the old layout
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    store: sessionmaker[Session] = make_session_factory(engine)
    try:
        import_sample_fleet(store)
        migrations.downgrade(fresh_database_url, BEFORE)
        with engine.begin() as conn:
            meters = list(conn.execute(select(Meter.id).order_by(Meter.id)).scalars())[:3]
            raw_id = conn.execute(
                RAW.insert().returning(RAW.c.id),
                {"meter_id": meters[0], "kind": "load_profile", "read_at": T0,
                 "payload": {"rows": []}, "content_hash": "ab" * 32},
            ).scalar_one()  # fmt: skip
            legacy = _legacy_rows(meters, raw_id)
            conn.execute(LEGACY.insert(), legacy)
        expected = sorted(legacy, key=_key)

        migrations.upgrade(fresh_database_url)
        tables = set(inspect(engine).get_table_names())
        assert "interval_readings" not in tables and "interval_blocks" in tables
        with store() as session:
            stored = IntervalRepository(session).versions(meters, T0 - timedelta(days=1))
        assert sorted((_as_legacy(v) for v in stored), key=_key) == expected
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                months = partitions.existing_months(conn)
                held = partitions.months_in_default(conn)
            assert {datetime(2026, 10, 1).date(), datetime(2026, 11, 1).date()} <= set(months)
            assert held == []  # every row sits in its month's partition

        migrations.downgrade(fresh_database_url, BEFORE)
        assert "interval_blocks" not in set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            back = [dict(row._mapping) for row in conn.execute(select(*LEGACY.c))]
        for row in back:
            row.pop("id")
        assert sorted(back, key=_key) == expected
    finally:
        engine.dispose()
