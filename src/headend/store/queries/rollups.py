"""The set-based statements of the rollup pass: one ``INSERT ... SELECT`` computes the day
rows (``interval_days``) of many meters from their current interval versions.

Per interval, in SQL: its local day from its end (``headend.domain.local_days``), its
time-of-use period from its start, with the UTC offsets of both instants taken from a
``CASE`` over the spans of one offset (a constant where the zone has no transitions), and the
period from a ``CASE`` compiled from the calendar (``period_code``): the day schedule of the
local date (special day, else weekday of the version in force), then the switch minutes of
that schedule. The rows are then counted and summed by meter, channel, day and quality.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Delete,
    Insert,
    Select,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from headend.domain.local_days import SECONDS_PER_DAY, LocalDays, utc
from headend.domain.tou import PERIODS, DaySchedule, TouCalendar, TouPeriod
from headend.store.base import table_of
from headend.store.models import IntervalDay, IntervalReading
from headend.store.queries.intervals import EpochSeconds, current_intervals, offset_at

_MINUTES = 60
RULES = "rollup-1"  # part of the basis: bump it when what a row holds changes


def rollup_basis(tz: ZoneInfo, calendar: TouCalendar, channels: Sequence[str]) -> str:
    """What day rows computed in this zone, on this calendar, of these channels are worth."""
    digest = hashlib.sha256(repr((calendar.versions, tuple(channels))).encode()).hexdigest()
    return f"{RULES} {tz.key} {digest[:16]}"


class DayDate(FunctionElement[Any]):
    """The date of a local day number (days since 1970-01-01)."""

    type = Date()
    inherit_cache = True


@compiles(DayDate, "postgresql")
def _day_postgresql(element: DayDate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(DATE '1970-01-01' + CAST({compiler.process(element.clauses, **kw)} AS INTEGER))"


@compiles(DayDate, "sqlite")
def _day_sqlite(element: DayDate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date(({compiler.process(element.clauses, **kw)}) * 86400, 'unixepoch')"


def _number(value: int) -> ColumnElement[int]:
    return literal(value, BigInteger)


def _schedule_code(schedule: DaySchedule, minute: ColumnElement[int]) -> Any:
    codes = [(t.hour * 60 + t.minute, period.code) for t, period in schedule.switches]
    if len(codes) == 1:
        return _number(codes[0][1])
    return case(
        *((minute < _number(at), _number(code)) for (_, code), (at, _) in pairwise(codes)),
        else_=_number(codes[-1][1]),
    )


def period_code(calendar: TouCalendar, local: ColumnElement[int]) -> Any:
    """The period code (index into ``PERIODS``) of an interval starting at ``local``, its
    local time in seconds since 1970, as ``TouCalendar.period_codes`` gives it."""
    day = local // SECONDS_PER_DAY
    minute = local % SECONDS_PER_DAY // _MINUTES
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0

    def week(version_index: int) -> Any:
        schedules = calendar.versions[version_index].week
        distinct: list[DaySchedule] = []
        for schedule in schedules:
            if schedule not in distinct:
                distinct.append(schedule)
        if len(distinct) == 1:
            return _schedule_code(distinct[0], minute)
        branches = [
            (
                weekday.in_([d for d, s in enumerate(schedules) if s == schedule]),
                _schedule_code(schedule, minute),
            )
            for schedule in distinct[:-1]
        ]
        return case(*branches, else_=_schedule_code(distinct[-1], minute))

    versions = calendar.versions
    branches: list[tuple[Any, Any]] = []
    for index, version in enumerate(versions):
        until = versions[index + 1].effective_from if index + 1 < len(versions) else None
        for special, schedule in version.special_days:
            if version.effective_from <= special and (until is None or special < until):
                number = LocalDays.number(special)
                branches.append((day == _number(number), _schedule_code(schedule, minute)))
    for index in range(len(versions) - 1, 0, -1):
        start = LocalDays.number(versions[index].effective_from)
        branches.append((day >= _number(start), week(index)))
    if not branches:
        return week(0)
    return case(*branches, else_=week(0))


@dataclass(frozen=True)
class RollupBatch:
    """Meters of one capture period rolled up from their local day ``since`` on, up to the
    day before ``horizon``; every one of these days is ``LocalDays.steady``."""

    period_s: int
    since: dict[int, int]  # meter pk -> first local day to recompute
    horizon: int  # first local day not rolled up


_COLUMNS = (
    "meter_id",
    "channel",
    "day",
    "quality",
    "intervals",
    "with_value",
    "value_sum",
    "version_sum",
    "normal_sum",
    "peak_sum",
    "off_peak_sum",
)


def _by_day(since: dict[int, int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for pk, day in since.items():
        groups.setdefault(day, []).append(pk)
    return groups


def rollup_insert(
    session: Session,
    batch: RollupBatch,
    channels: Sequence[str],
    days: LocalDays,
    calendar: TouCalendar,
    spans: Sequence[tuple[int, int, int]],
) -> Insert:
    """``INSERT INTO interval_days ... SELECT``: the batch's day rows from its intervals,
    those ending after each meter's first midnight and at or before the horizon's."""
    t = table_of(IntervalReading)
    groups = _by_day(batch.since)
    cut = {day: utc(days.midnight(day)) for day in groups}
    where = []
    if len(groups) > 1:
        after = (and_(t.c.meter_id.in_(g), t.c.interval_end > cut[d]) for d, g in groups.items())
        where.append(or_(*after))
    limit = utc(days.midnight(batch.horizon))
    pks = list(batch.since)
    end = EpochSeconds(t.c.interval_end)
    start = end - batch.period_s
    local = [  # local times of the interval's end and start, in seconds
        (end + offset_at(end, spans)).label("local_end"),
        (start + offset_at(start, spans)).label("local_start"),
    ]
    cur = current_intervals(
        session, pks, channels, min(cut.values()), limit, where=where, computed=local
    )
    per_interval = select(
        cur.c.meter_id,
        cur.c.channel,
        cur.c.quality,
        cur.c.value,
        cur.c.version,
        ((cur.c.local_end - 1) // SECONDS_PER_DAY).label("dn"),
        period_code(calendar, cur.c.local_start).label("code"),
    ).subquery()
    r = per_interval.c

    def in_period(period: TouPeriod) -> Any:
        return func.coalesce(func.sum(case((r.code == period.code, r.value))), 0)

    assert [p.code for p in PERIODS] == [0, 1, 2]
    summed: Select[Any] = select(
        r.meter_id,
        r.channel,
        DayDate(r.dn),
        r.quality,
        func.count(),
        func.count(r.value),
        func.coalesce(func.sum(r.value), 0),
        func.sum(r.version),
        in_period(TouPeriod.NORMAL),
        in_period(TouPeriod.PEAK),
        in_period(TouPeriod.OFF_PEAK),
    ).group_by(r.meter_id, r.channel, r.dn, r.quality)
    return insert(table_of(IntervalDay)).from_select(list(_COLUMNS), summed)


def beyond_horizon(
    session: Session, batch: RollupBatch, channels: Sequence[str], days: LocalDays
) -> dict[int, datetime]:
    """Per meter of the batch, its first interval end in a day at or after the horizon (a
    meter clock far ahead); the rollups stay stale from there."""
    t = table_of(IntervalReading)
    rows = session.execute(
        select(t.c.meter_id, func.min(t.c.interval_end))
        .where(
            t.c.meter_id.in_(list(batch.since)),
            t.c.channel.in_(list(channels)),
            t.c.interval_end > utc(days.midnight(batch.horizon)),
        )
        .group_by(t.c.meter_id)
    )
    return {pk: at for pk, at in rows if at is not None}


def day_rows_delete(batch: RollupBatch, days: LocalDays) -> Delete:
    """``DELETE`` the batch's day rows from each meter's first day to recompute on."""
    d = table_of(IntervalDay)
    groups = _by_day(batch.since)
    return d.delete().where(
        or_(
            *(
                and_(d.c.meter_id.in_(pks), d.c.day >= days.date_of(day))
                for day, pks in groups.items()
            )
        )
    )
