"""Estimation: the ladder E0, E2, E3, E4/E5, E9, vectorised over every gap of a block.

A gap is a run of slots that are missing or hold a suspect actual. In order:

* E0 asks for a re-read of every gap with a missing slot, while ``now`` is within the
  meter's retention. The request is returned alongside the estimates: on files nothing can
  be re-read, and a complete series is more useful than a hole, so estimation goes on; the
  collection layer decides whether to hold the estimates until its re-read has run.
* E2 spreads what bracketing register reads say was used (the advance minus the valid
  intervals) over the gap slots of the window, in the shape of the like day when there is
  one, evenly otherwise; rounding remainders go to the window's last gap slot.
* E3 interpolates a short gap between two valid anchors that carry no power-down bit, unless
  the gap is a confirmed outage.
* E4 copies the like day; E5 averages like days (see ``headend.vee.likeday``). Neither
  runs over a confirmed outage.
* E9 writes zeros over a confirmed outage: an ``Outage`` record, or power-down bits on the
  intervals both sides of the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headend.domain.calendar import HolidayCalendar
from headend.vee.block import F64, I64, Block, Bool, FindingBatch, runs
from headend.vee.codes import F_POWER_FAIL, FLAG_TABLE, METHOD_CODE
from headend.vee.likeday import GapSlots, estimate_like_days, pieces
from headend.vee.registers import Windows, sum_check
from headend.vee.ruleset import RuleSet
from headend.vee.validate import Validation


@dataclass
class Estimates:
    value: F64  # M × span, NaN where not estimated
    method: I64
    source: I64
    findings: list[FindingBatch]
    reread: tuple[I64, I64, I64]


def _rounded(values: F64, resolution: float) -> F64:
    return np.round(np.round(values / resolution) * resolution, 9)


def _power_fail(block: Block, row: I64, slot: I64) -> Bool:
    inside: Bool = (slot >= 0) & (slot < block.values.shape[1])
    safe = np.clip(slot, 0, block.values.shape[1] - 1)
    flagged: Bool = (FLAG_TABLE[block.status[row, safe]] & F_POWER_FAIL) != 0
    return np.logical_and(inside, flagged)


def _valid_at(valid: Bool, row: I64, slot: I64, hi: int) -> Bool:
    inside = (slot >= 0) & (slot < hi)
    return inside & valid[row, np.clip(slot, 0, valid.shape[1] - 1)]


def estimate(
    block: Block,
    rs: RuleSet,
    val: Validation,
    win: Windows,
    now_s: int,
    calendar: HolidayCalendar,
) -> Estimates:
    lo, hi = block.span_lo, block.span_hi
    shape = val.present.shape
    need = ~val.present | val.suspect
    row, s, e = runs(need)
    length = e - s
    out = Estimates(
        np.full(shape, np.nan),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
        [],
        _reread(block, rs, val, row, s, e, now_s),
    )
    out.findings.extend(_sum_check(block, rs, val, win, need))
    if row.size == 0:
        return out
    g0, g1 = s + lo - 1, e + lo  # anchors on both sides, in block slots
    pf_before, pf_after = _power_fail(block, row, g0), _power_fail(block, row, g1)
    outage = pf_after & (pf_before | (not rs.flag("E9", "require_flag_before")))
    if block.outage is not None:
        covered = np.array(
            [
                block.outage[r, a:b].all()
                for r, a, b in zip(row.tolist(), (s + lo).tolist(), (e + lo).tolist(), strict=True)
            ],
            dtype=bool,
        )
        outage |= covered
    gap = pieces(row, s + lo, e + lo, block.slots_per_day)
    gap_of = np.repeat(np.arange(row.size), length)
    like_ok = ~outage & (length <= rs.num("E4", "max_gap_days") * block.slots_per_day)
    like = _like_days(block, rs, val, gap, like_ok[gap_of], calendar)
    chosen = np.zeros(row.size, dtype=np.int64)
    slot_value = np.full(gap.row.size, np.nan)
    slot_source = np.zeros(gap.row.size, dtype=np.int64)
    if rs.enabled("E2") and win.row.size:
        gaps = Gaps(row, s, e, gap, gap_of)
        _register_windows(block, rs, val, win, need, gaps, like[0], chosen, slot_value, slot_source)
    if rs.enabled("E3"):
        max_len = rs.num("E3", "max_gap_minutes") * 60 // block.step_s
        anchored = (
            _valid_at(val.valid_full, row, g0, hi)
            & _valid_at(val.valid_full, row, g1, hi)
            & ~pf_before
            & ~pf_after
        )
        use = (chosen == 0) & (length <= max_len) & anchored & ~outage
        if use.any():
            chosen[use] = METHOD_CODE["E3"]
            left = block.values[row, np.clip(g0, 0, None)]
            right = block.values[row, np.clip(g1, 0, block.values.shape[1] - 1)]
            on = use[gap_of]
            step = (gap.slot - (g0[gap_of])) / (length[gap_of] + 1.0)
            line = left[gap_of] + (right[gap_of] - left[gap_of]) * step
            slot_value[on] = _rounded(line[on], rs.resolution_kwh)
    like_value, like_method, like_source = like
    on = (chosen[gap_of] == 0) & (like_method > 0)
    slot_value[on] = _rounded(like_value[on], rs.resolution_kwh)
    slot_source[on] = like_source[on]
    method_of_slot = np.where(chosen[gap_of] > 0, chosen[gap_of], np.where(on, like_method, 0))
    if rs.enabled("E9"):
        max_len = rs.num("E9", "max_outage_hours") * 3600 // block.step_s
        use = (chosen == 0) & outage & (length <= max_len)
        on = use[gap_of]
        slot_value[on] = 0.0
        method_of_slot[on] = METHOD_CODE["E9"]
    done = method_of_slot > 0
    r, c = gap.row[done], gap.slot[done] - lo
    out.value[r, c] = slot_value[done]
    out.method[r, c] = method_of_slot[done]
    out.source[r, c] = slot_source[done]
    return out


def _like_days(
    block: Block,
    rs: RuleSet,
    val: Validation,
    gap: GapSlots,
    allowed: Bool,
    calendar: HolidayCalendar,
) -> tuple[F64, I64, I64]:
    value, method, source = estimate_like_days(
        block.values, val.valid_full, gap, block.days, calendar, rs
    )
    method[~allowed] = 0
    value[~allowed] = np.nan
    return value, method, source


def _reread(
    block: Block, rs: RuleSet, val: Validation, row: I64, s: I64, e: I64, now_s: int
) -> tuple[I64, I64, I64]:
    if not rs.enabled("E0") or row.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    missing_cs = np.zeros((val.present.shape[0], val.present.shape[1] + 1), dtype=np.int64)
    np.cumsum(~val.present, axis=1, out=missing_cs[:, 1:])
    has_missing = (missing_cs[row, e] - missing_cs[row, s]) > 0
    end_s = block.boundary_s(e + block.span_lo)
    fresh = (now_s - end_s) <= rs.num("E0", "retention_days") * 86400
    pick = has_missing & fresh
    return row[pick], s[pick], e[pick]


def _window_sums(val: Validation, values: F64, win: Windows, need: Bool) -> tuple[F64, I64]:
    rows, inverse = np.unique(win.row, return_inverse=True)
    sub_values = np.where(val.present[rows] & ~val.suspect[rows], values[rows], 0.0)
    csum = np.zeros((rows.size, sub_values.shape[1] + 1))
    np.cumsum(sub_values, axis=1, out=csum[:, 1:])
    ccount = np.zeros((rows.size, sub_values.shape[1] + 1), dtype=np.int64)
    np.cumsum(need[rows], axis=1, out=ccount[:, 1:])
    sums = csum[inverse, win.b1] - csum[inverse, win.b0]
    count = ccount[inverse, win.b1] - ccount[inverse, win.b0]
    return sums, count


def _sum_check(
    block: Block, rs: RuleSet, val: Validation, win: Windows, need: Bool
) -> list[FindingBatch]:
    if win.row.size == 0:
        return []
    span_values = block.values[:, block.span_lo : block.span_hi]
    sums, count = _window_sums(val, span_values, win, need)
    return sum_check(block, rs, win, sums, count == 0)


@dataclass
class Gaps:
    """Every gap ``[s, e)`` (span slots) of ``row``, and its slots expanded into ``slots``."""

    row: I64
    s: I64
    e: I64
    slots: GapSlots
    gap_of: I64  # for each expanded slot, the index of its gap


def _register_windows(
    block: Block,
    rs: RuleSet,
    val: Validation,
    win: Windows,
    need: Bool,
    gaps: Gaps,
    shape: F64,
    chosen: I64,
    slot_value: F64,
    slot_source: I64,
) -> None:
    """E2: fill gaps lying wholly inside one register window, where the window allows it."""
    row, s, e, gap_of = gaps.row, gaps.s, gaps.e, gaps.gap_of
    span = need.shape[1] + 1
    key0 = win.row * span + win.b0
    at = np.searchsorted(key0, row * span + s, side="right") - 1
    safe = np.clip(at, 0, None)
    inside = (at >= 0) & (win.row[safe] == row) & (s >= win.b0[safe]) & (e <= win.b1[safe])
    if not inside.any():
        return
    span_values = block.values[:, block.span_lo : block.span_hi]
    sums, count = _window_sums(val, span_values, win, need)
    assigned = np.bincount(at[inside], weights=(e - s)[inside], minlength=win.row.size)
    remaining = win.delta - sums
    tolerance = rs.num("V05", "resolution_multiple") * rs.num("V05", "register_resolution_kwh")
    usable = (count > 0) & (assigned == count) & (remaining >= -tolerance)
    take = inside & usable[safe]
    if not take.any():
        return
    chosen[take] = METHOD_CODE["E2"]
    on = take[gap_of]
    slot_win = safe[gap_of][on]
    weights = shape[on]
    missing_shape = np.bincount(slot_win, weights=np.isnan(weights), minlength=win.row.size)
    shape_sum = np.bincount(slot_win, weights=np.nan_to_num(weights), minlength=win.row.size)
    by_shape = (missing_shape == 0) & (shape_sum > 0)
    weights = np.where(by_shape[slot_win], np.nan_to_num(weights), 1.0)
    total_weight = np.bincount(slot_win, weights=weights, minlength=win.row.size)
    share = np.maximum(remaining, 0.0)[slot_win] * weights / total_weight[slot_win]
    values = _rounded(share, rs.resolution_kwh)
    residual = np.maximum(remaining, 0.0) - np.bincount(
        slot_win, weights=values, minlength=win.row.size
    )
    last = np.ones(slot_win.size, dtype=bool)
    last[:-1] = slot_win[:-1] != slot_win[1:]
    values[last] = np.round(values[last] + residual[slot_win[last]], 9)
    slot_value[on] = values
    slot_source[on] = slot_win
