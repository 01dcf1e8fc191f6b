"""Register checks (V05, V06, V07, V12, V14) and the register windows E2 distributes into.

Reads arrive as ``RegisterArrays`` sorted by ``(group, t)``. Consecutive reads of one group
give an advance; a negative advance is a rollover (V07) when the index wrapped near its
maximum and a register running backwards (V06) otherwise. Advances of total registers whose
reads fall on the block's slot boundaries become *windows*: an interval row, a slot range and
the energy the register says was used in it. V08 and V12 judge consumption and look only at
the registers their ``channels`` parameter selects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headend.vee.block import F64, I64, Block, Bool, FindingBatch, RegisterArrays
from headend.vee.ruleset import RuleSet


@dataclass
class Windows:
    """Register-bracketed slot ranges ``[b0, b1)`` relative to the span, sorted by row, b0."""

    row: I64
    b0: I64
    b1: I64
    delta: F64


def _empty_windows() -> Windows:
    z = np.zeros(0, dtype=np.int64)
    return Windows(z, z, z, np.zeros(0, dtype=np.float64))


def advances(reg: RegisterArrays, rs: RuleSet) -> tuple[Bool, F64, list[FindingBatch]]:
    """Per read: whether it has a predecessor in its group, and the (rollover-aware) advance."""
    findings: list[FindingBatch] = []
    k = reg.group.size
    has_prev = np.zeros(k, dtype=bool)
    delta = np.zeros(k, dtype=np.float64)
    if k < 2:
        return has_prev, delta, findings
    has_prev[1:] = reg.group[1:] == reg.group[:-1]
    delta[1:] = reg.value[1:] - reg.value[:-1]
    delta[~has_prev] = 0.0
    backwards = has_prev & (delta < 0)
    if backwards.any():
        prev = np.roll(reg.value, 1)
        rolled = np.zeros(k, dtype=bool)
        if rs.enabled("V07"):
            top = 10.0 ** rs.num("V07", "register_digits")
            rolled = (
                backwards
                & (prev > rs.num("V07", "high_fraction") * top)
                & (reg.value < rs.num("V07", "low_fraction") * top)
            )
            idx = np.flatnonzero(rolled)
            if idx.size:
                delta[idx] = top - prev[idx] + reg.value[idx]
                batch = FindingBatch(
                    "V07", "rollover", reg.group[idx], reg.t[idx - 1], reg.t[idx], on_register=True
                )
                batch.metrics["previous_kwh"] = prev[idx]
                batch.metrics["current_kwh"] = reg.value[idx]
                batch.metrics["advance_kwh"] = delta[idx]
                findings.append(batch)
        idx = np.flatnonzero(backwards & ~rolled)
        if idx.size and rs.enabled("V06"):
            batch = FindingBatch(
                "V06", "backwards", reg.group[idx], reg.t[idx - 1], reg.t[idx], on_register=True
            )
            batch.metrics["previous_kwh"] = prev[idx]
            batch.metrics["current_kwh"] = reg.value[idx]
            findings.append(batch)
        has_prev &= ~(backwards & ~rolled)  # a backwards advance brackets nothing
    return has_prev, delta, findings


def period_usage(
    reg: RegisterArrays, has_prev: Bool, delta: F64, rs: RuleSet
) -> list[FindingBatch]:
    """V08 on registers: each period's daily usage against the periods before it, for the
    total registers of the consumption channels the rule's ``channels`` names."""
    if not rs.enabled("V08") or reg.group.size < 2:
        return []
    elapsed = np.zeros(reg.group.size)
    elapsed[1:] = (reg.t[1:] - reg.t[:-1]) / 86400.0
    usable = has_prev & (reg.tariff == 0)
    usable &= rs.channels("V08").select(reg.channels, reg.group.size)
    usable &= elapsed * 24.0 >= rs.num("V08", "min_register_period_hours")
    rate = np.where(usable, delta / np.maximum(elapsed, 1e-9), 0.0)
    total = np.zeros(reg.group.size)
    count = np.zeros(reg.group.size, dtype=np.int64)
    for back in range(1, int(rs.num("V08", "history_periods")) + 1):
        same = np.zeros(reg.group.size, dtype=bool)
        same[back:] = (reg.group[back:] == reg.group[:-back]) & usable[:-back]
        shifted = np.zeros(reg.group.size)
        shifted[back:] = rate[:-back]
        total += np.where(same, shifted, 0.0)
        count += same
    adu = total / np.maximum(count, 1)
    high, low = rs.num("V08", "high_factor"), rs.num("V08", "low_factor")
    hit = usable & (count > 0) & (adu > 0) & ((rate > high * adu) | (rate < low * adu))
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return []
    batch = FindingBatch(
        "V08", "register_usage", reg.group[idx], reg.t[idx - 1], reg.t[idx], on_register=True
    )
    batch.metrics["daily_kwh"] = rate[idx]
    batch.metrics["adu_kwh"] = adu[idx]
    return [batch]


def zero_consumption(reg: RegisterArrays, rs: RuleSet) -> list[FindingBatch]:
    """V12: a total register that did not move over the whole period on an active meter.

    Only consumption registers are judged: those the rule's ``channels`` names, active import
    (``1.0.1.8.0.255``) by default. An export register (A-, ``1.0.2.8.0.255``) that does not
    move belongs to a meter without generation, which is normal. Tariff registers are left
    out whatever ``channels`` says: one may rightly stand still through a day without its
    time-of-use period (no peak hours on Sunday).
    """
    k = reg.group.size
    if k < 2 or not rs.enabled("V12"):
        return []
    first = np.ones(k, dtype=bool)
    first[1:] = reg.group[1:] != reg.group[:-1]
    last = np.ones(k, dtype=bool)
    last[:-1] = reg.group[:-1] != reg.group[1:]
    i0, i1 = np.flatnonzero(first), np.flatnonzero(last)
    long_enough = (reg.t[i1] - reg.t[i0]) >= rs.num("V12", "min_period_hours") * 3600
    still = reg.value[i1] == reg.value[i0]
    consumption = rs.channels("V12").select(reg.channels, k)
    hit = long_enough & still & (reg.tariff[i0] == 0) & consumption[i0]
    if reg.active is not None:
        hit &= reg.active[i0]
    if not hit.any():
        return []
    batch = FindingBatch(
        "V12",
        "zero_consumption",
        reg.group[i0[hit]],
        reg.t[i0[hit]],
        reg.t[i1[hit]],
        on_register=True,
    )
    batch.metrics["index_kwh"] = reg.value[i0[hit]]
    return [batch]


def tou_sum(reg: RegisterArrays, rs: RuleSet) -> list[FindingBatch]:
    """V14: at every instant a total and its tariff registers were read together."""
    if reg.group.size == 0 or not rs.enabled("V14"):
        return []
    order = np.lexsort((reg.tariff, reg.t, reg.family))
    fam, t, tariff, value = reg.family[order], reg.t[order], reg.tariff[order], reg.value[order]
    new = np.ones(fam.size, dtype=bool)
    new[1:] = (fam[1:] != fam[:-1]) | (t[1:] != t[:-1])
    starts = np.flatnonzero(new)
    is_total = tariff == 0
    parts = np.where(is_total, 0.0, value)
    part_sum = np.add.reduceat(parts, starts)
    part_count = np.add.reduceat((~is_total).astype(np.int64), starts)
    total_at = np.add.reduceat(np.where(is_total, value, 0.0), starts)
    has_total = np.add.reduceat(is_total.astype(np.int64), starts) == 1
    tolerance = part_count * rs.num("V14", "resolution_kwh") + 1e-9
    hit = has_total & (part_count > 0) & (np.abs(part_sum - total_at) > tolerance)
    if not hit.any():
        return []
    first_total = starts[hit]  # the total sorts first within its instant (tariff 0)
    batch = FindingBatch(
        "V14",
        "tou_sum",
        reg.group[order][first_total],
        t[first_total],
        t[first_total],
        on_register=True,
    )
    batch.metrics["total_kwh"] = total_at[hit]
    batch.metrics["tariff_sum_kwh"] = part_sum[hit]
    batch.metrics["tariffs"] = part_count[hit].astype(np.float64)
    return [batch]


def windows(block: Block, reg: RegisterArrays, has_prev: Bool, delta: F64) -> Windows:
    """Advances of total registers whose two reads fall on slot boundaries inside the span."""
    if reg.group.size == 0:
        return _empty_windows()
    offset = reg.t - block.start_s
    on_grid = (offset % block.step_s) == 0
    boundary = offset // block.step_s
    prev_boundary = np.roll(boundary, 1)
    prev_on_grid = np.roll(on_grid, 1)
    ok = (
        has_prev
        & on_grid
        & prev_on_grid
        & (reg.row >= 0)
        & (reg.tariff == 0)
        & (prev_boundary >= block.span_lo)
        & (boundary <= block.span_hi)
        & (boundary > prev_boundary)
    )
    idx = np.flatnonzero(ok)
    lo = block.span_lo
    row, b0, b1 = reg.row[idx], prev_boundary[idx] - lo, boundary[idx] - lo
    order = np.lexsort((b0, row))
    return Windows(row[order], b0[order], b1[order], delta[idx][order])


def sum_check(
    block: Block, rs: RuleSet, win: Windows, sums: F64, complete: Bool
) -> list[FindingBatch]:
    """V05: over complete windows, interval energy must match the register advance."""
    if not rs.enabled("V05") or win.row.size == 0:
        return []
    tolerance = np.maximum(
        rs.num("V05", "resolution_multiple") * rs.num("V05", "register_resolution_kwh"),
        rs.num("V05", "relative_pct") / 100.0 * np.abs(win.delta),
    )
    hit = complete & (np.abs(sums - win.delta) > tolerance + 1e-9)
    if not hit.any():
        return []
    lo = block.span_lo
    batch = FindingBatch(
        "V05",
        "sum_check",
        win.row[hit],
        block.boundary_s(win.b0[hit] + lo),
        block.boundary_s(win.b1[hit] + lo),
    )
    batch.metrics["intervals_kwh"] = sums[hit]
    batch.metrics["register_kwh"] = win.delta[hit]
    return [batch]
