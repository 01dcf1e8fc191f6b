"""Like days (E4) and averages of like days (E5).

The like-day table is the two-week retrospective table of the catalogue (section b). Public
holidays count as Sundays: a holiday takes the most recent Sunday, then the one before; a
weekday never takes a holiday as its like day, and a Sunday-like day only takes Sunday-like
days.

E4 takes the first usable day of the table. Where none is usable, E5 averages up to
``max_samples`` days of the same weekday (Sundays for a holiday) within ``lookback_weeks``,
nearest first, when at least ``min_samples`` are usable.

Estimates are built per *piece*: the part of a gap inside one local day. A candidate day is
usable for a piece only if every slot of the piece holds a valid actual on that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from headend.domain.calendar import HolidayCalendar
from headend.vee.block import F64, I64, Bool
from headend.vee.codes import METHOD_CODE
from headend.vee.ruleset import RuleSet

# Weekday (Monday = 0) -> days back to try, in order.
LIKE_DAY_TABLE: dict[int, tuple[int, ...]] = {
    0: (7, 14),  # Monday: prior Monday, then two weeks back
    1: (7, 6, 5),  # Tuesday: prior Tuesday, prior Wednesday, prior Thursday
    2: (7, 1, 8, 6),  # Wednesday: prior Wed, this Tue, prior Tue, prior Thu
    3: (7, 1, 8, 2, 9),  # Thursday: prior Thu, this Wed, prior Wed, this Tue, prior Tue
    4: (7,),
    5: (7,),
    6: (7,),
}


def _days_to_last_sunday(day: date) -> int:
    return (day.weekday() + 1) % 7 or 7


def like_day_offsets(day: date, calendar: HolidayCalendar) -> tuple[int, ...]:
    """Days back to try for E4, after the table and the holiday rule."""
    sunday_like = calendar.is_sunday_like(day)
    if calendar.is_holiday(day) and day.weekday() != 6:
        back = _days_to_last_sunday(day)
        offsets: tuple[int, ...] = (back, back + 7)
    else:
        offsets = LIKE_DAY_TABLE[day.weekday()]
    return tuple(
        k for k in offsets if calendar.is_sunday_like(day - timedelta(days=k)) == sunday_like
    )


def sample_offsets(day: date, calendar: HolidayCalendar, weeks: int) -> tuple[int, ...]:
    """Days back for E5: the same weekday (Sundays for a holiday) over ``weeks`` weeks."""
    sunday_like = calendar.is_sunday_like(day)
    first = _days_to_last_sunday(day) if calendar.is_holiday(day) and day.weekday() != 6 else 7
    offsets = (first + 7 * w for w in range(weeks))
    return tuple(
        k for k in offsets if calendar.is_sunday_like(day - timedelta(days=k)) == sunday_like
    )


@dataclass
class GapSlots:
    """Every slot to estimate, flattened: its row, its slot in the block, and its piece."""

    row: I64
    slot: I64
    piece_start: I64  # index into these arrays where each piece begins
    piece_len: I64


def pieces(row: I64, start: I64, end: I64, per_day: int) -> GapSlots:
    """Expand gaps ``[start, end)`` (block slots) into slots, split at day boundaries."""
    length = end - start
    total = int(length.sum())
    slot_row = np.repeat(row, length)
    first = np.repeat(start, length)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(length) - length, length)
    slot = first + offset
    begins = np.ones(total, dtype=bool)
    if total:
        begins[1:] = (offset[1:] == 0) | (slot[1:] % per_day == 0)
    piece_start = np.flatnonzero(begins).astype(np.int64)
    piece_len = np.diff(np.append(piece_start, total)).astype(np.int64)
    return GapSlots(slot_row, slot, piece_start, piece_len)


def _piece_ok(ok: Bool, gap: GapSlots) -> Bool:
    if ok.size == 0:
        return ok
    return np.repeat(np.logical_and.reduceat(ok, gap.piece_start), gap.piece_len)


def estimate_like_days(
    values: F64,
    valid: Bool,
    gap: GapSlots,
    days: tuple[date, ...],
    calendar: HolidayCalendar,
    rs: RuleSet,
) -> tuple[F64, I64, I64]:
    """E4 then E5 for every gap slot: ``(value, method code, source)``, NaN where neither ran."""
    per_day = values.shape[1] // len(days)
    count = gap.row.size
    est = np.full(count, np.nan)
    method = np.zeros(count, dtype=np.int64)
    source = np.zeros(count, dtype=np.int64)
    if count == 0:
        return est, method, source
    day_of = gap.slot // per_day
    use_e4, use_e5 = rs.enabled("E4"), rs.enabled("E5")
    weeks = int(rs.num("E5", "lookback_weeks"))
    max_samples = int(rs.num("E5", "max_samples"))
    min_samples = int(rs.num("E5", "min_samples"))
    sums = np.zeros(count)
    seen = np.zeros(count, dtype=np.int64)
    for d in np.unique(day_of).tolist():
        on_day = day_of == d
        todo = [k for k in like_day_offsets(days[d], calendar) if k <= d] if use_e4 else []
        for k in todo:
            src = gap.slot - k * per_day
            ok = on_day & (method == 0) & valid[gap.row, np.maximum(src, 0)] & (src >= 0)
            ok = _piece_ok(ok, gap)
            est[ok] = values[gap.row[ok], src[ok]]
            method[ok] = METHOD_CODE["E4"]
            source[ok] = k
        if not use_e5:
            continue
        for k in (k for k in sample_offsets(days[d], calendar, weeks) if k <= d):
            src = gap.slot - k * per_day
            ok = on_day & (method == 0) & (seen < max_samples) & (src >= 0)
            ok &= valid[gap.row, np.maximum(src, 0)]
            ok = _piece_ok(ok, gap)
            sums[ok] += values[gap.row[ok], src[ok]]
            seen[ok] += 1
    averaged = (method == 0) & (seen >= max(min_samples, 1))
    est[averaged] = sums[averaged] / seen[averaged]
    method[averaged] = METHOD_CODE["E5"]
    source[averaged] = seen[averaged]
    return est, method, source
