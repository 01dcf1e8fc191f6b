"""The utility's time-of-use calendar: which period (normal, peak, off-peak) an interval is in.

The calendar is effective-dated data: a list of ``TouSchedule`` versions, each valid from a local
date until the next one starts, each giving a ``DaySchedule`` per weekday and optional special
days. An interval belongs to the period in force at its *start*, in the utility's local time.

``TouCalendar.period_at`` answers for one instant; ``TouCalendar.period_codes`` answers for a
numpy array of instants (``datetime64`` or integer Unix seconds) at the cost of a few array
operations, so that billing and VEE can split millions of intervals.

The default, ``EVN_2014``, is the three-period table of Circular 16/2014/TT-BCT as published by
EVN (reference (f)): Monday to Saturday normal 04:00-09:30, 11:30-17:00, 20:00-22:00, peak
09:30-11:30 and 17:00-20:00, off-peak 22:00-04:00; Sunday normal 04:00-22:00, off-peak
22:00-04:00, no peak. No later version is confirmed; add one as a new ``TouSchedule``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

MINUTES_PER_DAY = 24 * 60
_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NO_SWITCH = np.iinfo(np.int64).max


class TouError(ValueError):
    """A calendar is malformed, or an instant falls outside every version of it."""


class TouPeriod(StrEnum):
    """A time-of-use period. Its ``code`` is its index in ``PERIODS``."""

    NORMAL = "normal"
    PEAK = "peak"
    OFF_PEAK = "off_peak"

    @property
    def code(self) -> int:
        return PERIODS.index(self)

    @property
    def tariff(self) -> int:
        """The tariff register number (1.0.1.8.<tariff>.255) this period accumulates in."""
        return TARIFF_OF_PERIOD[self]


# Array codes returned by ``TouCalendar.period_codes`` index into this tuple.
PERIODS: tuple[TouPeriod, ...] = (TouPeriod.NORMAL, TouPeriod.PEAK, TouPeriod.OFF_PEAK)

# Register numbering: T1 normal, T2 peak, T3 off-peak. On real meters this mapping is the
# vendor's (reference (e)); the simulator and the default profiles use this one.
TARIFF_OF_PERIOD: dict[TouPeriod, int] = {
    TouPeriod.NORMAL: 1,
    TouPeriod.PEAK: 2,
    TouPeriod.OFF_PEAK: 3,
}


@dataclass(frozen=True)
class DaySchedule:
    """A day's periods as switch points: each period runs from its time to the next switch.

    The first switch is at 00:00; times are whole minutes, strictly increasing.
    """

    switches: tuple[tuple[time, TouPeriod], ...]

    def __post_init__(self) -> None:
        if not self.switches or self.switches[0][0] != time(0, 0):
            raise TouError("a day schedule starts with a switch at 00:00")
        minutes = [_minute_of(t) for t, _ in self.switches]
        if any(b <= a for a, b in pairwise(minutes)):
            raise TouError("the switch times of a day schedule must increase")

    @classmethod
    def of(cls, *switches: tuple[str, TouPeriod]) -> DaySchedule:
        """Build from ``("HH:MM", period)`` pairs."""
        return cls(tuple((time.fromisoformat(t), p) for t, p in switches))

    def period_at_minute(self, minute: int) -> TouPeriod:
        minutes = [_minute_of(t) for t, _ in self.switches]
        return self.switches[bisect.bisect_right(minutes, minute) - 1][1]

    def minute_codes(self) -> npt.NDArray[np.int8]:
        """The period code of every minute of the day (1,440 entries)."""
        codes = np.empty(MINUTES_PER_DAY, dtype=np.int8)
        bounds = [_minute_of(t) for t, _ in self.switches] + [MINUTES_PER_DAY]
        for (_, period), lo, hi in zip(self.switches, bounds, bounds[1:], strict=False):
            codes[lo:hi] = period.code
        return codes


@dataclass(frozen=True)
class TouSchedule:
    """One version of the calendar, in force from ``effective_from`` (a local date)."""

    name: str
    effective_from: date
    week: tuple[DaySchedule, ...]  # Monday .. Sunday
    special_days: tuple[tuple[date, DaySchedule], ...] = ()

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise TouError(f"a week has 7 day schedules, {self.name!r} has {len(self.week)}")
        days = [d for d, _ in self.special_days]
        if len(set(days)) != len(days):
            raise TouError(f"{self.name!r} lists a special day twice")

    def day_schedule(self, day: date) -> DaySchedule:
        for special, schedule in self.special_days:
            if special == day:
                return schedule
        return self.week[day.weekday()]


@dataclass(frozen=True)
class TouCalendar:
    """The effective-dated time-of-use calendar of a utility, in its local time zone."""

    versions: tuple[TouSchedule, ...]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))

    def __post_init__(self) -> None:
        if not self.versions:
            raise TouError("a calendar needs at least one version")
        starts = [v.effective_from for v in self.versions]
        if any(b <= a for a, b in pairwise(starts)):
            raise TouError("calendar versions must be in order of their effective dates")

    def version_on(self, day: date) -> TouSchedule:
        """The version in force on a local date."""
        starts = [v.effective_from for v in self.versions]
        index = bisect.bisect_right(starts, day) - 1
        if index < 0:
            raise TouError(f"no time-of-use version is in force on {day.isoformat()}")
        return self.versions[index]

    def period_at(self, start: datetime) -> TouPeriod:
        """The period of an interval starting at ``start`` (an aware datetime)."""
        if start.tzinfo is None:
            raise TouError("interval starts must be aware datetimes")
        local = start.astimezone(self.tz)
        schedule = self.version_on(local.date()).day_schedule(local.date())
        return schedule.period_at_minute(local.hour * 60 + local.minute)

    def period_codes(self, starts: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
        """Period codes (indexes into ``PERIODS``) of an array of interval starts.

        ``starts`` is a ``datetime64`` array (UTC) or an integer array of Unix seconds.
        """
        given = _unix_seconds(starts)
        if given.size == 0:
            return np.empty(given.shape, dtype=np.int8)
        seconds = given.ravel()
        local = seconds + utc_offsets(self.tz, seconds)
        return self.local_period_codes(local).reshape(given.shape)

    def local_period_codes(
        self, local: npt.NDArray[np.int64], before_first: str = "refuse"
    ) -> npt.NDArray[np.int8]:
        """Period codes of interval starts given as local times: seconds since 1970 of the
        local wall clock (the UTC seconds plus the offset in force). A start before the
        first version is refused, or with ``before_first="first"`` takes the first
        version's week."""
        if local.size == 0:
            return np.empty(local.shape, dtype=np.int8)
        day = local // _SECONDS_PER_DAY
        minute = (local - day * _SECONDS_PER_DAY) // 60
        table = _tables(self)
        version = np.searchsorted(table.version_days, day, side="right") - 1
        if before_first == "first":
            version = np.maximum(version, 0)
        if int(version.min()) < 0:
            first = self.versions[0].effective_from.isoformat()
            raise TouError(f"an interval starts before the first version ({first})")
        row = table.week_row[version] + (day + 3) % 7  # 1970-01-01 was a Thursday
        if table.special_days.size:
            at = np.searchsorted(table.special_days, day).clip(0, table.special_days.size - 1)
            hit = table.special_days[at] == day
            row = np.where(hit, table.special_row[at], row)
        codes: npt.NDArray[np.int8] = table.codes[row, minute]
        return codes


@dataclass(frozen=True)
class _Tables:
    version_days: npt.NDArray[np.int64]
    week_row: npt.NDArray[np.int64]
    special_days: npt.NDArray[np.int64]
    special_row: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int8]  # (schedules, 1440)


@lru_cache(maxsize=64)
def _tables(calendar: TouCalendar) -> _Tables:
    rows: list[npt.NDArray[np.int8]] = []
    week_row: list[int] = []
    specials: dict[int, int] = {}
    versions = calendar.versions
    for index, version in enumerate(versions):
        week_row.append(len(rows))
        rows.extend(s.minute_codes() for s in version.week)
        until = versions[index + 1].effective_from if index + 1 < len(versions) else date.max
        for day, schedule in version.special_days:
            if version.effective_from <= day < until:
                specials[_day_number(day)] = len(rows)
                rows.append(schedule.minute_codes())
    ordered = sorted(specials)
    return _Tables(
        version_days=np.array([_day_number(v.effective_from) for v in versions], dtype=np.int64),
        week_row=np.array(week_row, dtype=np.int64),
        special_days=np.array(ordered, dtype=np.int64),
        special_row=np.array([specials[d] for d in ordered], dtype=np.int64),
        codes=np.stack(rows),
    )


def utc_offsets(tz: ZoneInfo, seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The UTC offset in seconds of ``tz`` at each instant (Unix seconds), exactly.

    Offsets are looked up once per UTC day touched; a day with a transition is split at the
    transition's exact second. At most one transition per UTC day is assumed.
    """
    days = seconds // _SECONDS_PER_DAY
    first, last = int(days.min()), int(days.max())
    if last - first < max(4 * days.size, 4096):
        unique = np.arange(first, last + 1, dtype=np.int64)
        inverse = days - first
    else:
        unique, inverse = np.unique(days, return_inverse=True)
    before = np.empty(unique.size, dtype=np.int64)
    switch = np.empty(unique.size, dtype=np.int64)
    after = np.empty(unique.size, dtype=np.int64)
    for k, day in enumerate(unique.tolist()):
        before[k], switch[k], after[k] = _day_offsets(tz, day)
    return np.where(seconds >= switch[inverse], after[inverse], before[inverse])


@lru_cache(maxsize=65_536)
def _day_offsets(tz: ZoneInfo, day: int) -> tuple[int, int, int]:
    """(offset at the day's start, second of a transition or never, offset after it)."""
    lo = day * _SECONDS_PER_DAY
    hi = lo + _SECONDS_PER_DAY
    before, after = _offset_at(tz, lo), _offset_at(tz, hi)
    if before == after:
        return before, int(_NO_SWITCH), before
    while hi - lo > 1:  # first second with the new offset
        mid = (lo + hi) // 2
        if _offset_at(tz, mid) == before:
            lo = mid
        else:
            hi = mid
    return before, hi, after


def _offset_at(tz: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, UTC).astimezone(tz).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _unix_seconds(starts: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    array = np.asarray(starts)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]").astype(np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    raise TouError(f"interval starts must be datetime64 or Unix seconds, not {array.dtype}")


def _minute_of(t: time) -> int:
    if t.second or t.microsecond:
        raise TouError(f"switch times are whole minutes, got {t.isoformat()}")
    return t.hour * 60 + t.minute


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


_N, _P, _O = TouPeriod.NORMAL, TouPeriod.PEAK, TouPeriod.OFF_PEAK
_EVN_WORKDAY = DaySchedule.of(
    ("00:00", _O), ("04:00", _N), ("09:30", _P), ("11:30", _N),
    ("17:00", _P), ("20:00", _N), ("22:00", _O),
)  # fmt: skip
_EVN_SUNDAY = DaySchedule.of(("00:00", _O), ("04:00", _N), ("22:00", _O))

# Circular 16/2014/TT-BCT hours. Its start is left open (date.min): no earlier table is modelled.
EVN_2014 = TouSchedule(
    name="EVN Circular 16/2014/TT-BCT",
    effective_from=date.min,
    week=(_EVN_WORKDAY,) * 6 + (_EVN_SUNDAY,),
)


@lru_cache(maxsize=32)
def evn_calendar(tz: ZoneInfo | None = None) -> TouCalendar:
    """The EVN default calendar in ``tz`` (default Asia/Ho_Chi_Minh)."""
    return TouCalendar((EVN_2014,), tz or ZoneInfo("Asia/Ho_Chi_Minh"))


DEFAULT_CALENDAR = evn_calendar()

EVN_TOU_2014 = "evn_tou_2014"
# the calendars a device profile may name (``tariffs.calendar``), each built in a time zone
CALENDARS: dict[str, Callable[[ZoneInfo | None], TouCalendar]] = {EVN_TOU_2014: evn_calendar}


def calendar_named(name: str, tz: ZoneInfo | None = None) -> TouCalendar:
    """The calendar a device profile names, in ``tz``."""
    try:
        return CALENDARS[name](tz)
    except KeyError:
        known = ", ".join(sorted(CALENDARS))
        raise ValueError(f"no time-of-use calendar named {name!r} (known: {known})") from None
