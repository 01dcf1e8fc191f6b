"""Interval validation (V01, V03, V04, V08, V09, V10, V11), vectorised over a block's rows.

Each check sets its bit in the per-slot ``rules`` set and appends ``FindingBatch``es; checks
whose failure makes a value unusable also set ``suspect``. V02 is decided while the grid is
built (see ``headend.vee.grid``) and arrives here as ``Block.extra_rules``. V08 and V11 judge
consumption and look only at the rows whose channel their ``channels`` parameter selects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headend.vee.block import F64, I64, U16, U32, Block, Bool, FindingBatch, runs
from headend.vee.codes import (
    F_CLOCK_ADJUSTED,
    F_CLOCK_INVALID,
    F_CRITICAL_ERROR,
    F_DATA_NOT_VALID,
    F_POWER_FAIL,
    FLAG_TABLE,
    RULE_BIT,
)
from headend.vee.ruleset import RuleSet


@dataclass
class Validation:
    present: Bool  # M × span
    suspect: Bool
    rules: U32
    flags: U16
    valid_full: Bool  # M × L: usable actuals, history included
    findings: list[FindingBatch]


def _batch(block: Block, rule: str, kind: str, rows: I64, s: I64, e: I64) -> FindingBatch:
    lo = block.span_lo
    return FindingBatch(rule, kind, rows, block.boundary_s(lo + s), block.boundary_s(lo + e))


def _mark(block: Block, out: Validation, mask: Bool, rule: str, kind: str, suspect: bool) -> None:
    if not mask.any():
        return
    np.bitwise_or(out.rules, np.uint32(RULE_BIT[rule]), out=out.rules, where=mask)
    if suspect:
        out.suspect |= mask
    out.findings.append(_batch(block, rule, kind, *runs(mask)))


def limit_kwh(rs: RuleSet, step_s: int) -> float:
    """V09: the most energy the service can deliver in one interval."""
    kw = rs.num("V09", "rated_current_a") * rs.num("V09", "voltage_v") * rs.num("V09", "phases")
    return kw / 1000.0 * step_s / 3600.0 * rs.num("V09", "margin")


def validate(block: Block, rs: RuleSet) -> Validation:
    lo, hi = block.span_lo, block.span_hi
    values = block.values[:, lo:hi]
    flags = FLAG_TABLE[block.status[:, lo:hi]]
    if block.extra_flags is not None:
        flags |= block.extra_flags
    present = ~np.isnan(values)
    rules = np.zeros(values.shape, dtype=np.uint32)
    if block.extra_rules is not None:
        rules |= block.extra_rules
    out = Validation(
        present, np.zeros(values.shape, dtype=bool), rules, flags, np.zeros(0, dtype=bool), []
    )
    if rs.enabled("V01"):
        _check_gaps(block, rs, out)
    if rs.enabled("V03"):
        invalid = present & ((flags & F_CLOCK_INVALID) != 0)
        is_suspect = rs.flag("V03", "clock_invalid_is_suspect")
        _mark(block, out, invalid, "V03", "clock_invalid", is_suspect)
        adjusted = present & ((flags & F_CLOCK_ADJUSTED) != 0)
        _mark(block, out, adjusted, "V03", "clock_adjusted", False)
        _check_drift(block, rs, out)
    if rs.enabled("V04"):
        bad = present & ((flags & (F_DATA_NOT_VALID | F_CRITICAL_ERROR)) != 0)
        _mark(block, out, bad, "V04", "data_not_valid", True)
        if rs.flag("V04", "report_power_down"):
            _mark(block, out, present & ((flags & F_POWER_FAIL) != 0), "V04", "power_down", False)
    if rs.enabled("V09"):
        with np.errstate(invalid="ignore"):
            over = present & ((values > block.limit_kwh[:, None]) | (values < 0))
        _mark(block, out, over, "V09", "limit", True)
    if rs.enabled("V10"):
        _check_spikes(block, rs, out)
    valid_full = ~np.isnan(block.values)
    valid_full[:, lo:hi] = present & ~out.suspect
    out.valid_full = valid_full
    if rs.enabled("V11"):
        _check_zero_runs(block, rs, out)
    if rs.enabled("V08"):
        _check_daily_usage(block, rs, out)
    return out


def _check_gaps(block: Block, rs: RuleSet, out: Validation) -> None:
    missing = ~out.present
    _mark(block, out, missing, "V01", "missing", False)
    span = missing.shape[1]
    if span == 0:
        return
    share = missing.sum(axis=1) * 100.0 / span
    over = np.flatnonzero(share > rs.num("V01", "billing_gate_pct"))
    if over.size:
        s = np.zeros(over.size, dtype=np.int64)
        batch = _batch(block, "V01", "billing_gate", over, s, s + span)
        batch.metrics["missing_pct"] = share[over]
        out.findings.append(batch)


def _check_drift(block: Block, rs: RuleSet, out: Validation) -> None:
    if block.clock_rows is None or block.clock_t is None or block.clock_deviation is None:
        return
    bad = np.abs(block.clock_deviation) > rs.num("V03", "max_drift_s")
    if bad.any():
        t = block.clock_t[bad]
        batch = FindingBatch("V03", "drift", block.clock_rows[bad], t, t)
        batch.metrics["deviation_s"] = block.clock_deviation[bad]
        out.findings.append(batch)


def _check_spikes(block: Block, rs: RuleSet, out: Validation) -> None:
    lo = block.span_lo
    floor = rs.num("V10", "floor_kwh_per_15min") * block.step_s / 900.0
    values = block.values
    with np.errstate(invalid="ignore"):
        cand_r, cand_s = np.nonzero(values[:, lo : block.span_hi] > floor)
    if cand_r.size == 0:
        return
    k = int(rs.num("V10", "neighbours"))
    offsets = np.concatenate([np.arange(-k, 0), np.arange(1, k + 1)])
    cols = cand_s[:, None] + lo + offsets[None, :]
    inside = (cols >= 0) & (cols < values.shape[1])
    near = np.where(inside, values[cand_r[:, None], np.clip(cols, 0, values.shape[1] - 1)], np.nan)
    near.sort(axis=1)  # NaN last
    count = (~np.isnan(near)).sum(axis=1)
    usable = count > 0
    low = np.maximum((count - 1) // 2, 0)
    high = np.maximum(count // 2, 0)
    rows = np.arange(near.shape[0])
    median = (near[rows, low] + near[rows, high]) / 2.0
    value = values[cand_r, cand_s + lo]
    with np.errstate(invalid="ignore"):
        spike = usable & (value > rs.num("V10", "factor") * median)
    if not spike.any():
        return
    mask = np.zeros(out.present.shape, dtype=bool)
    mask[cand_r[spike], cand_s[spike]] = True
    mask &= ~out.suspect  # already explained by another rule
    _mark(block, out, mask, "V10", "spike", True)


def _check_zero_runs(block: Block, rs: RuleSet, out: Validation) -> None:
    """V11: at least ``min_run_minutes`` of zero intervals with no power-down bit and no
    confirmed outage, on the consumption channels the rule's ``channels`` names (active import
    by default). Zeros on an export channel are what a meter without generation records."""
    lo, hi = block.span_lo, block.span_hi
    min_slots = int(rs.num("V11", "min_run_minutes") * 60 // block.step_s)
    consumption = rs.channels("V11").select(block.channels, block.rows)
    zero = out.present & (block.values[:, lo:hi] == 0) & consumption[:, None]
    rows, s, e = runs(zero)
    long_run = (e - s) >= min_slots
    rows, s, e = rows[long_run], s[long_run], e[long_run]
    keep = np.ones(rows.size, dtype=bool)
    for i in range(rows.size):
        r, a, b = int(rows[i]), int(s[i]), int(e[i])
        powered_down = bool((out.flags[r, a:b] & F_POWER_FAIL).any())
        cut_off = block.outage is not None and bool(block.outage[r, lo + a : lo + b].any())
        if powered_down or cut_off:
            keep[i] = False
    rows, s, e = rows[keep], s[keep], e[keep]
    if rows.size == 0:
        return
    mask = np.zeros(zero.shape, dtype=bool)
    for r, a, b in zip(rows.tolist(), s.tolist(), e.tolist(), strict=True):
        mask[r, a:b] = True
    np.bitwise_or(out.rules, np.uint32(RULE_BIT["V11"]), out=out.rules, where=mask)
    batch = _batch(block, "V11", "zero_run", rows, s, e)
    batch.metrics["intervals"] = (e - s).astype(np.float64)
    out.findings.append(batch)


def _check_daily_usage(block: Block, rs: RuleSet, out: Validation) -> None:
    """V08: each whole day's usage against the average of the days before it, on the
    consumption channels the rule's ``channels`` names (active import by default): a day
    without export after days with a little is not low usage."""
    per_day = block.slots_per_day
    periods = int(rs.num("V08", "history_periods"))
    high, low = rs.num("V08", "high_factor"), rs.num("V08", "low_factor")
    first_day = max(-(-block.span_lo // per_day), 1)  # whole days inside the span only
    last_day = block.span_hi // per_day
    base = max(0, first_day - periods)
    if last_day <= first_day:
        return
    consumption = rs.channels("V08").select(block.channels, block.rows)
    cut = slice(base * per_day, last_day * per_day)
    shape = (block.rows, last_day - base, per_day)
    valid = out.valid_full[:, cut].reshape(shape)
    summed = np.where(valid, block.values[:, cut].reshape(shape), 0.0).sum(axis=2)
    totals: F64 = np.where(valid.all(axis=2), summed, np.nan)
    for d in range(first_day, last_day):
        history = totals[:, max(0, d - periods) - base : d - base]
        seen = ~np.isnan(history)
        count = seen.sum(axis=1)
        adu = np.where(seen, history, 0.0).sum(axis=1) / np.maximum(count, 1)
        today = totals[:, d - base]
        with np.errstate(invalid="ignore"):
            hit = (adu > 0) & ~np.isnan(today) & ((today > high * adu) | (today < low * adu))
        hit &= consumption
        rows = np.flatnonzero(hit)
        if rows.size == 0:
            continue
        start = np.full(rows.size, d * per_day, dtype=np.int64)
        batch = FindingBatch(
            "V08", "daily_usage", rows, block.boundary_s(start), block.boundary_s(start + per_day)
        )
        batch.metrics["total_kwh"] = today[rows]
        batch.metrics["adu_kwh"] = adu[rows]
        out.findings.append(batch)
