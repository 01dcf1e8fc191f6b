"""interval blocks

Revision ID: 0006_interval_blocks
Revises: 0005_meters_firmware
Create Date: 2026-12-07 14:00:00

Interval versions move from one row each (``interval_readings``) to one packed row per meter,
channel and UTC day (``interval_blocks``, see ``headend.store.blocks``), channels to small
numbers (``channels``). On PostgreSQL the blocks are partitioned by month: a default partition
and one partition per month from the first month holding data to two months after the
current one. Every version is carried over both ways; only the rows' own ids are not (nothing
refers to them), so a downgrade numbers the rows afresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from headend.store import partitions
from headend.store.blocks import FIELDS, day_of, pack, unpack, versions_of
from headend.store.types import UtcDateTime

revision: str = "0006_interval_blocks"
down_revision: str | None = "0005_meters_firmware"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METERS_PER_STEP = 50  # a step holds all its meters' rows in memory
# the quality column as revision 0001 made it: a non-native enum, VARCHAR(32) on both databases
QUALITY = sa.String(length=32)


def _reading_columns() -> list[sa.Column[Any]]:
    """The columns of ``interval_readings`` as revision 0005 left it (times as UTC)."""
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("interval_end", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("cumulative", sa.BigInteger(), nullable=True),
        sa.Column("quality", QUALITY, nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("rules", sa.String(length=128), nullable=True),
        sa.Column("inputs", sa.String(length=255), nullable=True),
        sa.Column(
            "raw_read_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    ]


def _reading_constraints() -> list[Any]:
    return [
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_interval_readings_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["raw_read_id"],
            ["raw_reads.id"],
            name=op.f("fk_interval_readings_raw_read_id_raw_reads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interval_readings")),
        sa.UniqueConstraint(
            "meter_id",
            "channel",
            "interval_end",
            "version",
            name=op.f("uq_interval_readings_meter_id_channel_interval_end_version"),
        ),
    ]


def _readings(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "interval_readings", metadata, *_reading_columns(), sa.PrimaryKeyConstraint("id")
    )


def _channels(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "channels",
        metadata,
        sa.Column("id", sa.SmallInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("obis", sa.String(length=24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("obis", name=op.f("uq_channels_obis")),
    )


_BLOCK_COLUMNS = (
    ("meter_id", sa.Integer()),
    ("channel_id", sa.SmallInteger()),
    ("day", sa.Date()),
    ("data", sa.LargeBinary()),
)


def _blocks(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "interval_blocks",
        metadata,
        *(sa.Column(name, kind, nullable=False) for name, kind in _BLOCK_COLUMNS),
        sa.PrimaryKeyConstraint("meter_id", "channel_id", "day"),
    )


def _create_blocks() -> None:
    op.create_table(
        "interval_blocks",
        *(sa.Column(name, kind, nullable=False) for name, kind in _BLOCK_COLUMNS),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_interval_blocks_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_interval_blocks_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("meter_id", "channel_id", "day", name=op.f("pk_interval_blocks")),
        postgresql_partition_by="RANGE (day)",
    )


def _meter_steps(bind: sa.Connection, table: str) -> Iterator[list[int]]:
    pks = bind.execute(sa.text(f"SELECT DISTINCT meter_id FROM {table} ORDER BY 1")).scalars()
    ids = list(pks)
    for i in range(0, len(ids), METERS_PER_STEP):
        yield ids[i : i + METERS_PER_STEP]


def _months(bind: sa.Connection, first: date | None, last: date | None) -> list[date]:
    """The months to partition: those holding data, and up to two months after today."""
    today = datetime.now(UTC).date()
    lo = min(first or today, today)
    hi = max(last or today, today)
    ahead = partitions.next_month(partitions.next_month(partitions.month_of(hi)))
    return partitions.months_between(lo, ahead)


def upgrade() -> None:
    bind = op.get_bind()
    metadata = sa.MetaData()
    readings, channels, blocks = _readings(metadata), _channels(metadata), _blocks(metadata)
    channels.create(bind)
    _create_blocks()
    span = bind.execute(
        sa.select(sa.func.min(readings.c.interval_end), sa.func.max(readings.c.interval_end))
    ).one()
    first = day_of(span[0]) if span[0] is not None else None
    last = day_of(span[1]) if span[1] is not None else None
    partitions.create_default(bind)
    partitions.ensure_months(bind, _months(bind, first, last))
    names = sorted(bind.execute(sa.select(readings.c.channel).distinct()).scalars())
    if names:
        bind.execute(channels.insert(), [{"obis": name} for name in names])
    ids = {obis: cid for obis, cid in bind.execute(sa.select(channels.c.obis, channels.c.id))}
    columns = [readings.c[name] for name in FIELDS]
    for step in _meter_steps(bind, "interval_readings"):
        grouped: dict[tuple[int, str, date], list[tuple[Any, ...]]] = defaultdict(list)
        rows = bind.execute(
            sa.select(readings.c.meter_id, readings.c.channel, *columns)
            .where(readings.c.meter_id.in_(step))
            .order_by(
                readings.c.meter_id,
                readings.c.channel,
                readings.c.interval_end,
                readings.c.version,
            )
        )
        for meter_id, channel, *version in rows:
            grouped[(meter_id, channel, day_of(version[0]))].append(tuple(version))
        bind.execute(
            blocks.insert(),
            [
                {"meter_id": m, "channel_id": ids[c], "day": d, "data": pack(d, versions)}
                for (m, c, d), versions in grouped.items()
            ],
        )
    op.drop_table("interval_readings")


def downgrade() -> None:
    bind = op.get_bind()
    metadata = sa.MetaData()
    readings, channels, blocks = _readings(metadata), _channels(metadata), _blocks(metadata)
    op.create_table("interval_readings", *_reading_columns(), *_reading_constraints())
    names = {cid: obis for cid, obis in bind.execute(sa.select(channels.c.id, channels.c.obis))}
    for step in _meter_steps(bind, "interval_blocks"):
        out: list[dict[str, Any]] = []
        found = bind.execute(
            sa.select(blocks.c.meter_id, blocks.c.channel_id, blocks.c.day, blocks.c.data)
            .where(blocks.c.meter_id.in_(step))
            .order_by(blocks.c.meter_id, blocks.c.channel_id, blocks.c.day)
        )
        for meter_id, channel_id, day, data in found:
            for version in versions_of(unpack(bytes(data), day)):
                row = dict(zip(FIELDS, version, strict=True))
                row["meter_id"], row["channel"] = meter_id, names[channel_id]
                row["quality"] = str(row["quality"])
                out.append(row)
        if out:
            bind.execute(readings.insert(), out)
    op.drop_table("interval_blocks")  # its partitions go with it
    op.drop_table("channels")
