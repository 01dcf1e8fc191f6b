"""The rollup pass's computation: the day rows (``interval_days``) of many meters from their
current interval versions.

Per interval: its local day from its end (``headend.domain.local_days``), its time-of-use
period from its start, both on the local wall clock (``headend.domain.tou.utc_offsets``), the
period from the calendar's tables (``TouCalendar.local_period_codes``: the day schedule of
the local date, special day or weekday of the version in force, then the switch minutes of
that schedule). The intervals of a whole batch are gathered into arrays and counted and summed
by meter, channel, day and quality at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Delete, and_, or_
from sqlalchemy.orm import Session

from headend.domain.local_days import SECONDS_PER_DAY, LocalDays, utc
from headend.domain.tou import PERIODS, TouCalendar, utc_offsets
from headend.store.base import table_of
from headend.store.blocks import QUALITIES, SCALE
from headend.store.models import IntervalDay, IntervalDayEnd
from headend.store.queries.intervals import Current, current, grouped, summed
from headend.store.repositories.intervals import IntervalRepository

RULES = "rollup-2"  # part of the basis: bump it when what a row holds changes


def rollup_basis(tz: ZoneInfo, calendar: TouCalendar, channels: Sequence[str]) -> str:
    """What day rows computed in this zone, on this calendar, of these channels are worth."""
    digest = hashlib.sha256(repr((calendar.versions, tuple(channels))).encode()).hexdigest()
    return f"{RULES} {tz.key} {digest[:16]}"


@dataclass(frozen=True)
class RollupBatch:
    """Meters of one capture period rolled up from their local day ``since`` on, up to the
    day before ``horizon``; every one of these days is ``LocalDays.steady``."""

    period_s: int
    since: dict[int, int]  # meter pk -> first local day to recompute
    horizon: int  # first local day not rolled up


def _by_day(since: dict[int, int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for pk, day in since.items():
        groups.setdefault(day, []).append(pk)
    return groups


def _kwh(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-SCALE)


@dataclass(frozen=True)
class RollupRows:
    days: list[dict[str, Any]]  # interval_days
    ends: list[dict[str, Any]]  # interval_day_ends


def rollup_rows(
    session: Session,
    batch: RollupBatch,
    channels: Sequence[str],
    days: LocalDays,
    calendar: TouCalendar,
    tz: ZoneInfo,
) -> RollupRows:
    """The batch's day rows and day ends from its intervals, those ending after each meter's
    first midnight and at or before the horizon's."""
    cuts = {pk: utc(days.midnight(day)) for pk, day in batch.since.items()}
    limit = utc(days.midnight(batch.horizon))
    first = min(cuts.values())
    cur = current(session, list(cuts), channels, first, limit, cuts=cuts, as_read=True)
    return RollupRows(_day_rows(cur, batch, calendar, tz), _day_ends(cur, tz))


def _day_ends(cur: Current, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The captures as read at local midnights, each the end of the day before."""
    read = cur.captured
    if read is None or not len(read.end):
        return []
    local_end = read.end + utc_offsets(tz, read.end)
    at_midnight = np.flatnonzero(local_end % SECONDS_PER_DAY == 0)
    epoch = date(1970, 1, 1)
    return [
        {
            "meter_id": int(read.meter[i]),
            "channel": cur.channels[int(read.channel[i])],
            "day": epoch + timedelta(days=int(local_end[i]) // SECONDS_PER_DAY - 1),
            "capture": _kwh(int(read.capture[i])),
            "quality": QUALITIES[int(read.quality[i])],
        }
        for i in at_midnight.tolist()
    ]


def _day_rows(
    cur: Current, batch: RollupBatch, calendar: TouCalendar, tz: ZoneInfo
) -> list[dict[str, Any]]:
    if not len(cur):
        return []
    end = cur.end
    start = end - batch.period_s
    local_end = end + utc_offsets(tz, end)
    local_start = start + utc_offsets(tz, start)
    day = (local_end - 1) // SECONDS_PER_DAY
    code = calendar.local_period_codes(local_start, before_first="first").astype(np.int64)
    keys, inverse = grouped([cur.meter, cur.channel, day, cur.quality])
    n = len(keys)
    rows = np.bincount(inverse, minlength=n)
    valued = rows - np.bincount(inverse[cur.value_null], minlength=n)
    total = summed(inverse, n, cur.value)
    versions = summed(inverse, n, cur.version)
    assert [p.code for p in PERIODS] == [0, 1, 2]
    by_period = [summed(inverse, n, np.where(code == k, cur.value, 0)) for k in range(3)]
    epoch = date(1970, 1, 1)
    return [
        {
            "meter_id": int(pk),
            "channel": cur.channels[int(ch)],
            "day": epoch + timedelta(days=int(d)),
            "quality": QUALITIES[int(q)],
            "intervals": int(rows[i]),
            "with_value": int(valued[i]),
            "value_sum": _kwh(int(total[i])),
            "version_sum": int(versions[i]),
            "normal_sum": _kwh(int(by_period[0][i])),
            "peak_sum": _kwh(int(by_period[1][i])),
            "off_peak_sum": _kwh(int(by_period[2][i])),
        }
        for i, (pk, ch, d, q) in enumerate(keys.tolist())
    ]


def beyond_horizon(
    session: Session, batch: RollupBatch, channels: Sequence[str], days: LocalDays
) -> dict[int, datetime]:
    """Per meter of the batch, its first interval end in a day at or after the horizon (a
    meter clock far ahead); the rollups stay stale from there."""
    found: dict[int, int] = {}
    limit = utc(days.midnight(batch.horizon))
    cut = int(limit.timestamp())
    repo = IntervalRepository(session)
    for pk, _, cols in repo.columns(list(batch.since), channels, limit, None):
        if len(cols):
            first = int(cols.end.min())
            if first > cut:
                found[pk] = min(found.get(pk, first), first)
    return {pk: utc(second) for pk, second in found.items()}


def day_rows_delete(batch: RollupBatch, days: LocalDays) -> list[Delete]:
    """``DELETE`` the batch's day rows and day ends from each meter's first day to recompute
    on."""
    groups = _by_day(batch.since)
    return [
        d.delete().where(
            or_(
                *(
                    and_(d.c.meter_id.in_(pks), d.c.day >= days.date_of(day))
                    for day, pks in groups.items()
                )
            )
        )
        for d in (table_of(IntervalDay), table_of(IntervalDayEnd))
    ]
