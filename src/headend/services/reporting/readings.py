"""Reading back what is stored: a meter's intervals and registers over a time range.

The current value of a reading is its highest version; ``version="raw"`` gives version 0,
what the meter sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Flag, Quality
from headend.services.errors import UnknownMeter
from headend.store.repositories.readings import ReadingsRepository

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

    @staticmethod
    def _meter_pk(repo: ReadingsRepository, meter_id: str) -> int:
        pk = repo.meter_pk(meter_id)
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
        with self.session_factory() as session:
            repo = ReadingsRepository(session)
            pk = self._meter_pk(repo, meter_id)
            found = repo.intervals(pk, start, end, channel, raw=version == "raw")
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
                for x in found
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
        with self.session_factory() as session:
            repo = ReadingsRepository(session)
            pk = self._meter_pk(repo, meter_id)
            found = repo.registers(pk, start, end, obis, raw=version == "raw")
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
                for x in found
            ]
