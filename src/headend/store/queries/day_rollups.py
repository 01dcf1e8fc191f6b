"""Which part of a billing period comes from the day rollups and which from the intervals,
and the rollup rows of a page of meters.

For each meter, the whole local days of the period (``LocalDays.whole_days``) before the day
of its ``rollup_from`` mark come from ``interval_days``, when the rollups were computed on the
billing service's own basis (zone, calendar, channels); everything else of the period (days
from the mark on, the parts of days at either end when the period does not start or end at a
local midnight) is read from the intervals as ``(after, until]`` spans of interval ends. The
two never overlap and together cover ``(start, end]``, so the sums are the same as from the
intervals alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from headend.domain.local_days import LocalDays, Run, utc
from headend.domain.quality import Quality
from headend.store.base import one_of, table_of
from headend.store.models import IntervalDay, IntervalDayEnd

Ranges = tuple[tuple[datetime, datetime], ...]  # (after, until] spans of interval ends
# per meter and channel, per quality: intervals, with a value, value, versions, then the
# value by time-of-use period (normal, peak, off-peak); integers, values in micro-kWh
Sums = dict[tuple[int, str], dict[Quality, list[int]]]


class Marked(Protocol):
    @property
    def pk(self) -> int: ...
    @property
    def rollup_from(self) -> datetime | None: ...
    @property
    def rollup_basis(self) -> str | None: ...


@dataclass(frozen=True)
class Split:
    runs: dict[int, tuple[Run, ...]]  # meter pk -> local days read from the rollups
    ranges: dict[int, Ranges]  # meter pk -> interval ends read from the intervals

    def by_ranges(self, pks: Sequence[int]) -> dict[Ranges, list[int]]:
        """The meters among ``pks`` that read intervals, grouped by what they read."""
        groups: dict[Ranges, list[int]] = defaultdict(list)
        for pk in pks:
            if self.ranges[pk]:
                groups[self.ranges[pk]].append(pk)
        return groups


def split_period(
    days: LocalDays, start: datetime, end: datetime, meters: Sequence[Marked], basis: str
) -> Split:
    whole = days.whole_days(start, end)
    runs: dict[int, tuple[Run, ...]] = {}
    ranges: dict[int, Ranges] = {}
    for meter in meters:
        if meter.rollup_basis != basis:
            mine: tuple[Run, ...] = ()
        elif meter.rollup_from is None:
            mine = tuple(whole)
        else:
            stale = days.day_of_end(meter.rollup_from)
            mine = tuple((a, min(b, stale)) for a, b in whole if a < stale)
        runs[meter.pk] = mine
        spans: list[tuple[datetime, datetime]] = []
        after = start
        for a, b in mine:
            midnight = utc(days.midnight(a))
            if after < midnight:
                spans.append((after, midnight))
            after = utc(days.midnight(b))
        if after < end:
            spans.append((after, end))
        ranges[meter.pk] = tuple(spans)
    return Split(runs, ranges)


def ranges_clause(
    meter: ColumnElement[int], end: ColumnElement[datetime], groups: dict[Ranges, list[int]]
) -> ColumnElement[bool]:
    """Rows of the grouped meters whose interval end lies in one of their group's spans."""
    return or_(
        *(
            and_(
                meter.in_(pks),
                or_(*(and_(end > after, end <= until) for after, until in spans)),
            )
            for spans, pks in groups.items()
        )
    )


def bounds(groups: dict[Ranges, list[int]]) -> tuple[datetime, datetime]:
    """The earliest ``after`` and the latest ``until`` of the groups' spans."""
    spans = [span for ranges in groups for span in ranges]
    return min(a for a, _ in spans), max(b for _, b in spans)


def _total(column: Any) -> Any:
    return func.sum(type_coerce(column, BigInteger))


def _rollups_statement(which: ColumnElement[bool] | None, dialect: str) -> Select[Any]:
    """The rollup rows of the meters ``pks`` summed by meter, channel and quality: of the days
    ``which`` selects, or (None) of the days ``[first, past)``."""
    d = table_of(IntervalDay)
    days = which
    if days is None:
        days = and_(d.c.day >= bindparam("first"), d.c.day < bindparam("past"))
    return (
        select(
            d.c.meter_id,
            d.c.channel,
            d.c.quality,
            *(
                _total(d.c[name])
                for name in (
                    "intervals",
                    "with_value",
                    "value_sum",
                    "version_sum",
                    "normal_sum",
                    "peak_sum",
                    "off_peak_sum",
                )
            ),
        )
        .where(
            one_of(d.c.meter_id, "pks", dialect),
            one_of(d.c.channel, "channels", dialect),
            days,
        )
        .group_by(d.c.meter_id, d.c.channel, d.c.quality)
    )


@cache
def _one_run(dialect: str) -> Select[Any]:
    """Every meter of the page the same days."""
    return _rollups_statement(None, dialect)


def read_rollups(
    session: Session, runs: dict[int, tuple[Run, ...]], channels: Sequence[str]
) -> Sums:
    """The rollup rows of the meters' days summed by meter, channel and quality."""
    found: Sums = defaultdict(dict)
    groups: dict[tuple[Run, ...], list[int]] = defaultdict(list)
    for pk, mine in runs.items():
        if mine:
            groups[mine].append(pk)
    if not groups or not channels:
        return found
    params: dict[str, Any] = {
        "pks": [pk for pks in groups.values() for pk in pks],
        "channels": list(channels),
    }
    date_of = LocalDays.date_of
    dialect = session.get_bind().dialect.name
    if len(groups) == 1 and len(next(iter(groups))) == 1:
        ((first, past),) = next(iter(groups))
        statement = _one_run(dialect)
        params |= {"first": date_of(first), "past": date_of(past)}
    else:
        d = table_of(IntervalDay)
        statement = _rollups_statement(
            or_(
                *(
                    and_(
                        d.c.meter_id.in_(pks),
                        or_(*(and_(d.c.day >= date_of(a), d.c.day < date_of(b)) for a, b in mine)),
                    )
                    for mine, pks in groups.items()
                )
            ),
            dialect,
        )
    for pk, channel, quality, *sums in session.execute(statement, params).all():
        found[(pk, channel)][Quality(quality)] = [int(v) for v in sums]
    return found


@cache
def _day_ends_statement(dialect: str) -> Select[Any]:
    e = table_of(IntervalDayEnd)
    return select(e.c.meter_id, e.c.channel, e.c.day, e.c.capture, e.c.quality).where(
        one_of(e.c.meter_id, "pks", dialect),
        one_of(e.c.channel, "channels", dialect),
        one_of(e.c.day, "days", dialect),
    )


def read_day_ends(
    session: Session, pks: Sequence[int], channels: Sequence[str], days: Sequence[int]
) -> dict[tuple[int, str, int], tuple[Any, Quality]]:
    """The captures as read at the end of these local days (``LocalDays`` numbers): (meter,
    channel, day) -> (capture in kWh, its quality), where the meter sent one."""
    if not (pks and channels and days):
        return {}
    params = {
        "pks": list(pks),
        "channels": list(channels),
        "days": [LocalDays.date_of(day) for day in days],
    }
    statement = _day_ends_statement(session.get_bind().dialect.name)
    number = LocalDays.number
    return {
        (pk, channel, number(day)): (capture, Quality(quality))
        for pk, channel, day, capture, quality in session.execute(statement, params).all()
    }
