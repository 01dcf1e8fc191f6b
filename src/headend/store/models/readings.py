"""Validated data: versioned interval and register readings, VEE findings, edits, events,
and the day rollups billing reads.

Version 0 of a reading is the value as collected; VEE and operators add versions 1, 2, ...;
nothing is overwritten. Interval versions are packed by meter, channel and day
(``IntervalBlock``); re-landing the same reading changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from headend.domain.quality import Quality
from headend.store.base import Base, utcnow
from headend.store.models._columns import enum_type
from headend.store.types import ScaledDecimal, UtcDateTime


class Channel(Base):
    """The interval channels (OBIS codes of captured registers) by a small number, so that a
    block names its channel in two bytes."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(
        SmallInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    obis: Mapped[str] = mapped_column(String(24), unique=True)


class IntervalBlock(Base):
    """Every version of one meter channel's intervals ending in one UTC day D, that is in
    (D 00:00, D+1 00:00], packed (``headend.store.blocks``): the values as read (version 0)
    and each later version VEE or an operator made, with who, when and why.

    On PostgreSQL the table is partitioned by month of ``day`` (``headend.store.partitions``),
    so that a closed month can be moved to other storage or dropped under a retention
    setting.
    """

    __tablename__ = "interval_blocks"
    __table_args__ = {"postgresql_partition_by": "RANGE (day)"}  # noqa: RUF012

    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        SmallInteger, ForeignKey("channels.id"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RegisterReading(Base):
    __tablename__ = "register_readings"
    __table_args__ = (
        # also the index of every read by meter, OBIS code and time
        UniqueConstraint("meter_id", "obis", "read_at", "version"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    obis: Mapped[str] = mapped_column(String(24))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the meter's capture time
    version: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[Decimal | None] = mapped_column(ScaledDecimal())
    unit: Mapped[str] = mapped_column(String(16))
    capture_time: Mapped[datetime | None] = mapped_column(UtcDateTime())  # maximum demand
    quality: Mapped[Quality] = mapped_column(enum_type(Quality))
    flags: Mapped[int] = mapped_column(Integer, default=0)
    method: Mapped[str | None] = mapped_column(String(8))
    rules: Mapped[str | None] = mapped_column(String(128))
    raw_read_id: Mapped[int | None] = mapped_column(ForeignKey("raw_reads.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class VeeFinding(Base):
    __tablename__ = "vee_findings"
    __table_args__ = (Index(None, "meter_id", "status"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    channel: Mapped[str | None] = mapped_column(String(24))
    rule: Mapped[str] = mapped_column(String(8))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    detail: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))


class Edit(Base):
    """An operator's change to a value or a range: who, when, why; revertible."""

    __tablename__ = "edits"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    channel: Mapped[str] = mapped_column(String(24))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    value: Mapped[Decimal | None] = mapped_column(ScaledDecimal())
    reason_code: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    edited_by: Mapped[str] = mapped_column(String(64))
    edited_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reverted_by: Mapped[str | None] = mapped_column(String(64))
    reverted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MeterEvent(Base):
    __tablename__ = "meter_events"
    __table_args__ = (UniqueConstraint("meter_id", "log", "occurred_at", "code"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    log: Mapped[str] = mapped_column(String(24))  # OBIS of the event log
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    code: Mapped[int] = mapped_column(Integer)
    raw_read_id: Mapped[int | None] = mapped_column(ForeignKey("raw_reads.id"))


class IntervalDay(Base):
    """The current versions of one meter channel's intervals of one local day, by quality.

    Derived from the interval versions by the rollup pass (``services.validation.rollups``) so
    that billing reads a few rows per meter and month instead of every interval. An interval
    belongs to the local day (the utility's time zone) its end falls in, ending in
    (D 00:00, D+1 00:00]; its time-of-use period is the one of its start. Sums are integers
    of micro-kWh, as ``ScaledDecimal`` stores values. The rows of a meter are exact for the
    days before the local day of ``meters.rollup_from``; later days are read from intervals.
    """

    __tablename__ = "interval_days"

    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    quality: Mapped[Quality] = mapped_column(enum_type(Quality), primary_key=True)
    intervals: Mapped[int] = mapped_column(Integer)
    with_value: Mapped[int] = mapped_column(Integer)
    value_sum: Mapped[Decimal] = mapped_column(ScaledDecimal())
    version_sum: Mapped[int] = mapped_column(BigInteger)
    normal_sum: Mapped[Decimal] = mapped_column(ScaledDecimal())
    peak_sum: Mapped[Decimal] = mapped_column(ScaledDecimal())
    off_peak_sum: Mapped[Decimal] = mapped_column(ScaledDecimal())


class IntervalDayEnd(Base):
    """The register capture of one meter channel as read at the end of one local day: the
    capture (version 0) of the interval ending at the next local midnight, when the meter sent
    one. Written by the rollup pass with the day's ``IntervalDay`` rows, exact for the same
    days, so that billing finds the capture at a period's boundary without reading the day's
    interval block. No row: the meter sent no capture for that instant."""

    __tablename__ = "interval_day_ends"

    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    capture: Mapped[Decimal] = mapped_column(ScaledDecimal())
    quality: Mapped[Quality] = mapped_column(enum_type(Quality))


class RollupBasis(Base):
    """What the stored day rollups were computed with (one row): the time zone, the
    time-of-use calendar and the channels rolled up. Billing uses rollups only when its own
    basis is this one; the rollup pass rebuilds every meter's rollups when it differs."""

    __tablename__ = "rollup_basis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    basis: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
