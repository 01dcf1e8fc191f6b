"""Benchmark: one day of a 715,016-meter fleet at 15-minute intervals through VEE.

Synthetic load profiles with injected defects (gaps short and long, spikes, status bits,
outages, zero days, register faults) are validated and estimated with the default rule set,
vectorised across meters in chunks. The same kernel is then run meter by meter in a Python
loop over a sample, extrapolated to the fleet, for comparison.

    python bench/vee.py                 # the full fleet
    python bench/vee.py --meters 20000  # a quick run

Only VEE is timed; making the synthetic data is not.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from headend.vee.block import Block, BlockResult, RegisterArrays
from headend.vee.codes import QUALITIES
from headend.vee.kernel import run_block
from headend.vee.ruleset import RuleSet, default_rules
from headend.vee.validate import limit_kwh

FLEET = 715_016
TARGET_DAY = date(2026, 11, 26)  # a Thursday: the longest like-day list
STEP = 900
PER_DAY = 96


@dataclass
class Totals:
    intervals: int = 0
    seconds: float = 0.0
    findings: int = 0
    rereads: int = 0

    def add(self, result: BlockResult, rows: int, seconds: float) -> None:
        self.intervals += rows * result.quality.shape[1]
        self.seconds += seconds
        self.findings += sum(len(b) for b in result.findings)
        self.rereads += int(result.reread_rows.size)


def _profile() -> np.ndarray:
    hours = np.arange(PER_DAY) / 4.0
    evening = np.exp(-((hours - 19.5) ** 2) / 4.0)
    morning = 0.5 * np.exp(-((hours - 7.0) ** 2) / 3.0)
    return 0.05 + 0.25 * evening + 0.12 * morning


def make_block(rng: np.random.Generator, meters: int, history_days: int, rs: RuleSet) -> Block:
    """A block of ``meters`` rows: ``history_days`` final days, then the target day."""
    days = history_days + 1
    origin = datetime.combine(
        TARGET_DAY - timedelta(days=history_days), datetime.min.time(), ZoneInfo("Asia/Ho_Chi_Minh")
    )
    scale = rng.gamma(2.0, 0.6, size=(meters, 1, 1)).astype(np.float64)
    noise = rng.gamma(4.0, 0.25, size=(meters, days, PER_DAY))
    shaped = np.minimum(scale * _profile()[None, None, :] * noise, 2.0)
    values = np.round(shaped, 3).reshape(meters, -1)
    status = np.zeros(values.shape, dtype=np.uint8)
    lo = history_days * PER_DAY
    history = values[:, :lo]
    history[rng.random(history.shape) < 0.002] = np.nan  # unusable history
    pick = rng.random(meters)
    start = rng.integers(lo + 10, lo + PER_DAY - 50, size=meters)

    def rows(a: float, b: float) -> np.ndarray:
        return np.flatnonzero((pick >= a) & (pick < b))

    for r in rows(0.0, 0.010):  # short gaps -> E3 (or E2)
        values[r, start[r] : start[r] + rng.integers(1, 9)] = np.nan
    for r in rows(0.010, 0.015):  # long gaps -> E4/E5 (or E2)
        values[r, start[r] : start[r] + rng.integers(12, 40)] = np.nan
    for r in rows(0.015, 0.017):  # spikes
        values[r, start[r]] = 2.4
    for r in rows(0.017, 0.019):  # data not valid
        status[r, start[r] : start[r] + 4] |= 0b100
    for r in rows(0.019, 0.020):  # a day of zeros while energised
        values[r, lo:] = 0.0
    for r in rows(0.020, 0.021):  # above the physical limit
        values[r, start[r]] = 9.9
    for r in rows(0.021, 0.022):  # a confirmed outage: power-down bits both sides
        values[r, start[r] : start[r] + 16] = np.nan
        status[r, start[r] - 1] |= 0x80
        status[r, start[r] + 16] |= 0x80
    for r in rows(0.022, 0.024):  # clock adjusted
        status[r, start[r]] |= 0b100000
    return Block(
        start_s=int(origin.timestamp()),
        step_s=STEP,
        days=tuple(origin.date() + timedelta(days=d) for d in range(days)),
        values=values,
        status=status,
        span_lo=lo,
        span_hi=days * PER_DAY,
        limit_kwh=np.full(meters, limit_kwh(rs, STEP)),
        registers=make_registers(rng, values, lo, int(origin.timestamp())),
    )


def make_registers(
    rng: np.random.Generator, values: np.ndarray, lo: int, start_s: int
) -> RegisterArrays:
    """Half the meters have total reads at both midnights and tariff reads at the end."""
    meters = values.shape[0]
    read = np.flatnonzero(rng.random(meters) < 0.5)
    day = np.nansum(values[read, lo:], axis=1)
    begin = np.round(rng.uniform(1_000, 90_000, size=read.size), 3)
    end = begin + np.round(day, 3)
    pick = rng.random(read.size)
    end[pick < 0.001] = begin[pick < 0.001] - 5.0  # backwards
    roll = (pick >= 0.001) & (pick < 0.0015)
    begin[roll], end[roll] = 999_990.0, 3.0
    end[(pick >= 0.002) & (pick < 0.003)] += 4.0  # sum check fails
    parts = np.stack([end * 0.2, end * 0.5, end * 0.3], axis=1)
    parts[(pick >= 0.003) & (pick < 0.004), 0] += 1.0  # TOU sum fails
    t0, t1 = start_s + lo * STEP, start_s + values.shape[1] * STEP
    n = read.size
    # Per meter: total@t0, total@t1 (group 4m), tariff k@t1 (group 4m + k); family = meter.
    group = np.concatenate([4 * read, 4 * read, 4 * read + 1, 4 * read + 2, 4 * read + 3])
    family = np.tile(read, 5)
    tariff = np.repeat(np.array([0, 0, 1, 2, 3]), n)
    t = np.repeat(np.array([t0, t1, t1, t1, t1]), n)
    value = np.concatenate([begin, end, parts[:, 0], parts[:, 1], parts[:, 2]])
    row = np.concatenate([read, read, np.full(3 * n, -1)])
    order = np.lexsort((t, group))
    return RegisterArrays(
        group[order], family[order], tariff[order], t[order], value[order], row[order]
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=FLEET)
    parser.add_argument("--chunk", type=int, default=50_000, help="meters per block")
    parser.add_argument("--history-days", type=int, default=9)
    parser.add_argument("--sample", type=int, default=2_000, help="meters in the loop baseline")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    rs = default_rules()
    rng = np.random.default_rng(args.seed)
    now_s = (
        int(
            datetime.combine(
                TARGET_DAY + timedelta(days=1), datetime.min.time(), ZoneInfo("Asia/Ho_Chi_Minh")
            ).timestamp()
        )
        + 3600
    )
    vector = Totals()
    working = 0
    tracemalloc.start()
    quality_counts = np.zeros(len(QUALITIES), dtype=np.int64)
    made = 0
    while made < args.meters:
        rows = min(args.chunk, args.meters - made)
        block = make_block(rng, rows, args.history_days, rs)
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        began = time.perf_counter()
        result = run_block(block, rs, now_s)
        vector.add(result, rows, time.perf_counter() - began)
        working = max(working, tracemalloc.get_traced_memory()[1] - held)
        quality_counts += np.bincount(result.quality.ravel(), minlength=len(QUALITIES))
        made += rows
        del block, result
    tracemalloc.stop()
    sample = min(args.sample, args.meters)
    loop = Totals()
    block = make_block(rng, sample, args.history_days, rs)
    for r in range(sample):
        one = _one_meter(block, r)
        began = time.perf_counter()
        result = run_block(one, rs, now_s)
        loop.add(result, 1, time.perf_counter() - began)
    loop_fleet_s = loop.seconds / sample * args.meters
    print(f"meters                 {args.meters:,}")
    print(f"intervals              {vector.intervals:,}")
    print(f"wall time (VEE only)   {vector.seconds:.2f} s   goal < 60 s")
    print(f"throughput             {vector.intervals / vector.seconds:,.0f} intervals/s")
    print(f"peak memory (RSS)      {peak_mb():,.0f} MiB, whole process, synthetic data included")
    print(
        f"VEE working memory     {working / 2**20:,.0f} MiB per block of {args.chunk:,} meters "
        "(tracemalloc, beyond the input)"
    )
    print(f"findings               {vector.findings:,}   re-read requests {vector.rereads:,}")
    for code, count in enumerate(quality_counts.tolist()):
        if count:
            print(f"  {QUALITIES[code].value:<24}{count:,}")
    print(
        f"per-meter loop         {loop.seconds:.2f} s for {sample:,} meters -> "
        f"{loop_fleet_s:,.0f} s for the fleet (extrapolated)"
    )
    print(f"vectorised speed-up    {loop_fleet_s / vector.seconds:,.0f}×")
    return 0


def _one_meter(block: Block, r: int) -> Block:
    reg = block.registers
    sub_reg = None
    if reg is not None:
        mine = (reg.group // 4) == r
        sub_reg = RegisterArrays(
            reg.group[mine],
            reg.family[mine],
            reg.tariff[mine],
            reg.t[mine],
            reg.value[mine],
            np.where(reg.row[mine] >= 0, 0, -1),
        )
    return Block(
        block.start_s,
        block.step_s,
        block.days,
        block.values[r : r + 1],
        block.status[r : r + 1],
        block.span_lo,
        block.span_hi,
        block.limit_kwh[r : r + 1],
        registers=sub_reg,
    )


if __name__ == "__main__":
    sys.exit(main())
