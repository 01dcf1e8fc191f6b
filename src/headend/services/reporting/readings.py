"""Reading back what is stored: a meter's intervals and registers over a time range.

The current value of a reading is its highest version; ``version="raw"`` gives version 0,
what the meter sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Flag, Quality
from headend.services.errors import UnknownMeter
from headend.store.models import IntervalReading, Meter, RegisterReading

Version = Literal["current", "raw"]


def flag_names(bits: int) -> list[str]:
    return [f.name for f in Flag if f and f.name and bits & f]


@dataclass(frozen=True)
class IntervalRow:
    channel: str
    interval_end: datetime
    value: Decimal | None
    cumulative: Decimal | None
    quality: Quality
    flags: list[str]
    status: int | None
    method: str | None
    version: int
    created_by: str


@dataclass(frozen=True)
class RegisterRow:
    obis: str
    read_at: datetime
    value: Decimal | None
    unit: str
    capture_time: datetime | None
    quality: Quality
    flags: list[str]
    method: str | None
    version: int
    created_by: str


class ReadingsService:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def _meter_pk(self, session: Session, meter_id: str) -> int:
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))
        if pk is None:
            raise UnknownMeter([meter_id])
        return pk

    def intervals(
        self,
        meter_id: str,
        start: datetime,
        end: datetime,
        channel: str | None = None,
        version: Version = "current",
    ) -> list[IntervalRow]:
        """Intervals ending in (start, end], by channel and time."""
        r = IntervalReading
        with self.session_factory() as session:
            pk = self._meter_pk(session, meter_id)
            where = [r.meter_id == pk, r.interval_end > start, r.interval_end <= end]
            if channel is not None:
                where.append(r.channel == channel)
            stmt = select(r).where(*where)
            if version == "raw":
                stmt = stmt.where(r.version == 0)
            else:
                latest = (
                    select(r.channel, r.interval_end, func.max(r.version).label("v"))
                    .where(*where)
                    .group_by(r.channel, r.interval_end)
                    .subquery()
                )
                stmt = stmt.join(
                    latest,
                    and_(
                        r.channel == latest.c.channel,
                        r.interval_end == latest.c.interval_end,
                        r.version == latest.c.v,
                    ),
                )
            stmt = stmt.order_by(r.channel, r.interval_end)
            return [
                IntervalRow(
                    x.channel,
                    x.interval_end,
                    x.value,
                    x.cumulative,
                    x.quality,
                    flag_names(x.flags),
                    x.status,
                    x.method,
                    x.version,
                    x.created_by,
                )
                for x in session.scalars(stmt)
            ]

    def registers(
        self,
        meter_id: str,
        start: datetime,
        end: datetime,
        obis: str | None = None,
        version: Version = "current",
    ) -> list[RegisterRow]:
        """Register reads taken in (start, end], by OBIS code and time."""
        r = RegisterReading
        with self.session_factory() as session:
            pk = self._meter_pk(session, meter_id)
            where = [r.meter_id == pk, r.read_at > start, r.read_at <= end]
            if obis is not None:
                where.append(r.obis == obis)
            stmt = select(r).where(*where)
            if version == "raw":
                stmt = stmt.where(r.version == 0)
            else:
                latest = (
                    select(r.obis, r.read_at, func.max(r.version).label("v"))
                    .where(*where)
                    .group_by(r.obis, r.read_at)
                    .subquery()
                )
                stmt = stmt.join(
                    latest,
                    and_(
                        r.obis == latest.c.obis,
                        r.read_at == latest.c.read_at,
                        r.version == latest.c.v,
                    ),
                )
            stmt = stmt.order_by(r.obis, r.read_at)
            return [
                RegisterRow(
                    x.obis,
                    x.read_at,
                    x.value,
                    x.unit,
                    x.capture_time,
                    x.quality,
                    flag_names(x.flags),
                    x.method,
                    x.version,
                    x.created_by,
                )
                for x in session.scalars(stmt)
            ]
