"""Local days of the utility's time zone, as the day rollups count them.

Days are numbered from 1970-01-01 (day 0) in local time. An interval belongs to the day its
end falls in, ending in (D 00:00, D+1 00:00] local time, so its local day number is
``(end + offset(end) - 1) // 86400`` in whole seconds, which is what the rollup pass computes
in SQL (``headend.store.queries.rollups``) with the UTC offset of the end instant.

A midnight is *steady* when it is more than a day away from any change of UTC offset: its
UTC instant follows from one offset, and an interval ends in that day or later exactly when it
ends after that instant, whatever the zone does at its transitions. The rollup pass starts and
stops at steady midnights; billing takes from the rollups only the days lying wholly in the
period with both midnights steady (``whole_days``). The other days, a few around each
daylight-saving change in zones that have them, are read from intervals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from headend.domain.tou import utc_offsets

SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1)

Run = tuple[int, int]  # local days [first, past the last)
_REMEMBERED = 256  # periods whose whole days a LocalDays keeps


def seconds(moment: datetime) -> int:
    """Whole seconds since 1970 of an aware datetime."""
    return int(moment.timestamp() // 1)


def utc(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def offset_spans(tz: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``[a, b)`` spans covering the instants ``[lo, hi)``, each with one UTC offset."""
    samples = np.append(np.arange(lo, hi, 3600, dtype=np.int64), np.int64(hi - 1))
    offsets = utc_offsets(tz, samples)
    spans: list[tuple[int, int, int]] = []
    start = lo
    for k in np.flatnonzero(np.diff(offsets)).tolist():
        before, after = int(samples[k]), int(samples[k + 1])  # it changes in (before, after]
        while after - before > 1:
            mid = (before + after) // 2
            same = utc_offsets(tz, np.array([mid], dtype=np.int64))[0] == offsets[k]
            before, after = (mid, after) if same else (before, mid)
        spans.append((start, after, int(offsets[k])))
        start = after
    spans.append((start, hi, int(offsets[-1])))
    return spans


class LocalDays:
    """Day numbers, dates and midnights of one time zone."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._steady: dict[int, bool] = {}
        self._whole: dict[tuple[int, int], tuple[Run, ...]] = {}
        self._midnights: dict[int, int] = {}

    def offset(self, second: int) -> int:
        """The UTC offset in seconds at an instant (seconds since 1970)."""
        return int(utc_offsets(self.tz, np.array([second], dtype=np.int64))[0])

    def day_of_end(self, moment: datetime) -> int:
        """The local day of an interval ending at ``moment``."""
        second = seconds(moment)
        return (second + self.offset(second) - 1) // SECONDS_PER_DAY

    @staticmethod
    def date_of(day: int) -> date:
        return _EPOCH + timedelta(days=day)

    @staticmethod
    def number(day: date) -> int:
        return (day - _EPOCH).days

    def midnight(self, day: int) -> int:
        """The instant (seconds since 1970) local day ``day`` starts, exactly when the day is
        ``steady``."""
        found = self._midnights.get(day)
        if found is None:
            start = datetime.combine(self.date_of(day), time(), self.tz)
            found = self._midnights[day] = seconds(start)
        return found

    def steady(self, day: int) -> bool:
        """Whether the UTC offset stays the same from a day before local day ``day`` starts
        to a day after: then the day starts at ``day * 86400 - offset`` and an interval
        belongs to it or a later day exactly when it ends after that instant."""
        found = self._steady.get(day)
        if found is None:
            midnight = self.midnight(day)
            spans = offset_spans(
                self.tz, midnight - SECONDS_PER_DAY, midnight + SECONDS_PER_DAY + 1
            )
            found = self._steady[day] = len(spans) == 1
        return found

    def steady_from(self, day: int, step: int) -> int:
        """``day`` if it is steady, else the nearest steady day before (``step`` -1) or
        after (``step`` 1) it."""
        while not self.steady(day):
            day += step
        return day

    def whole_days(self, start: datetime, end: datetime) -> tuple[Run, ...]:
        """Runs of the local days lying wholly in ``(start, end]`` whose midnights are both
        steady, as ``[first, past the last)``; remembered for the last periods asked."""
        key = (seconds(start), seconds(end))
        found = self._whole.get(key)
        if found is None:
            if len(self._whole) >= _REMEMBERED:
                self._whole.clear()
            found = self._whole[key] = tuple(self._whole_days(*key))
        return found

    def _whole_days(self, lo: int, hi: int) -> list[Run]:
        if hi - lo < SECONDS_PER_DAY:
            return []
        first = (lo + self.offset(lo)) // SECONDS_PER_DAY
        last = (hi + self.offset(hi)) // SECONDS_PER_DAY
        good = [
            day
            for day in range(first, last + 1)
            if lo <= self.midnight(day)
            and self.midnight(day + 1) <= hi
            and self.steady(day)
            and self.steady(day + 1)
        ]
        runs: list[Run] = []
        for day in good:
            if runs and runs[-1][1] == day:
                runs[-1] = (runs[-1][0], day + 1)
            else:
                runs.append((day, day + 1))
        return runs
