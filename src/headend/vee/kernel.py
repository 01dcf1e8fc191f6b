"""One VEE pass over a block: validate, estimate, re-validate the estimates, assign quality."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from headend.domain.calendar import VIETNAM, HolidayCalendar
from headend.vee.block import I64, Block, BlockResult, Bool, FindingBatch, runs
from headend.vee.codes import (
    METHOD_NAME,
    METHOD_QUALITY,
    Q_MISSING,
    Q_SUSPECT,
    Q_VALID,
    QUALITY_CODE,
)
from headend.vee.estimate import Estimates, estimate
from headend.vee.registers import (
    Windows,
    advances,
    period_usage,
    tou_sum,
    windows,
    zero_consumption,
)
from headend.vee.ruleset import RuleSet
from headend.vee.validate import Validation, validate

_EST_QUALITY = np.zeros(16, dtype=np.uint8)
for _code, _name in METHOD_NAME.items():
    _EST_QUALITY[_code] = QUALITY_CODE[METHOD_QUALITY[_name]]


def run_block(
    block: Block, rs: RuleSet, now_s: int, calendar: HolidayCalendar = VIETNAM
) -> BlockResult:
    """Validate and estimate every row of ``block`` with rule set ``rs``."""
    val = validate(block, rs)
    findings = val.findings
    win = _no_windows()
    if block.registers is not None:
        has_prev, delta, reg_findings = advances(block.registers, rs)
        findings.extend(reg_findings)
        findings.extend(period_usage(block.registers, has_prev, delta, rs))
        findings.extend(zero_consumption(block.registers, rs))
        findings.extend(tou_sum(block.registers, rs))
        win = windows(block, block.registers, has_prev, delta)
    est = estimate(block, rs, val, win, now_s, calendar)
    findings.extend(est.findings)
    bad = _rejected(block, rs, est)
    if bad.any():
        # Re-validation: an estimate must itself be physically possible. Only E2 can break
        # the limit (it follows the register), so those gaps are estimated again without it.
        findings.append(FindingBatch("V09", "estimate_rejected", *_span_runs(block, bad)))
        rows = np.flatnonzero(bad.any(axis=1))
        sub_block, sub_val = _subset(block, val, rows)
        retry = estimate(sub_block, rs, sub_val, _no_windows(), now_s, calendar)
        still_bad = _rejected(sub_block, rs, retry)
        retry.method[still_bad] = 0
        sub_bad = bad[rows]
        est.method[rows] = np.where(sub_bad, retry.method, est.method[rows])
        est.value[rows] = np.where(sub_bad, retry.value, est.value[rows])
        est.source[rows] = np.where(sub_bad, retry.source, est.source[rows])
    estimated = est.method > 0
    span = block.values[:, block.span_lo : block.span_hi]
    quality = np.where(val.present, np.where(val.suspect, Q_SUSPECT, Q_VALID), Q_MISSING)
    quality = quality.astype(np.uint8)
    method = est.method.astype(np.uint8)
    np.copyto(quality, _EST_QUALITY[method], where=estimated)
    value = np.where(estimated, est.value, span)
    rr, rs_, re_ = est.reread
    return BlockResult(
        value=value,
        quality=quality,
        method=method,
        rules=val.rules,
        flags=val.flags,
        source=est.source.astype(np.int32),
        findings=findings,
        reread_rows=rr,
        reread_start=block.boundary_s(rs_ + block.span_lo),
        reread_end=block.boundary_s(re_ + block.span_lo),
    )


def _no_windows() -> Windows:
    none = np.zeros(0, dtype=np.int64)
    return Windows(none, none, none, np.zeros(0))


def _rejected(block: Block, rs: RuleSet, est: Estimates) -> Bool:
    if not rs.enabled("V09"):
        return np.zeros(est.method.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        over = (est.value > block.limit_kwh[:, None]) | (est.value < 0)
    return np.logical_and(est.method > 0, over)


def _subset(block: Block, val: Validation, rows: I64) -> tuple[Block, Validation]:
    def pick(array: Any) -> Any:
        return None if array is None else array[rows]

    sub = replace(
        block,
        values=block.values[rows],
        status=block.status[rows],
        limit_kwh=block.limit_kwh[rows],
        extra_flags=pick(block.extra_flags),
        extra_rules=pick(block.extra_rules),
        outage=pick(block.outage),
        registers=None,
        clock_rows=None,
        clock_t=None,
        clock_deviation=None,
        channels=None if block.channels is None else block.channels.take(rows),
    )
    sub_val = Validation(
        val.present[rows],
        val.suspect[rows],
        val.rules[rows],
        val.flags[rows],
        val.valid_full[rows],
        [],
    )
    return sub, sub_val


def _span_runs(block: Block, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, s, e = runs(mask)
    return rows, block.boundary_s(s + block.span_lo), block.boundary_s(e + block.span_lo)
