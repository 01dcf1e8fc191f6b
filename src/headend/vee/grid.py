"""From reads to a ``Block``: the time grid, V02 (duplicates, overlaps, off-grid intervals).

An ``interval_end`` on the grid fills its slot. One that is off the grid (a clock set in the
middle of an interval gives a short interval and a long one) is added to the slot it ends in,
which is marked PARTIAL: the two pieces of a split interval add up to the slot's energy. The
same ``interval_end`` twice keeps the later row (the latest version) and is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from headend.domain.obis import Obis
from headend.vee.block import Block, Channels, RegisterArrays
from headend.vee.codes import F_PARTIAL, RULE_BIT
from headend.vee.model import ClockCheck, Finding, IntervalRead, MeterContext, Outage, RegisterRead
from headend.vee.ruleset import RuleSet
from headend.vee.validate import limit_kwh

SeriesKey = tuple[str, str]


@dataclass
class Grid:
    """A block plus what is needed to turn its rows back into named values."""

    block: Block
    keys: list[SeriesKey]
    actuals: dict[tuple[int, int], Decimal]  # (row, slot) -> the value as read
    register_keys: list[tuple[str, Obis]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def to_utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def register_for_channel(channel: str) -> Obis | None:
    """The total register a load-profile channel accumulates: ``A.B.C.8.0.F`` for ``A.B.C.*``."""
    try:
        obis = Obis.parse(channel)
    except ValueError:
        return None
    return Obis(obis.a, obis.b, obis.c, 8, 0, obis.f)


def _local_midnight(moment: datetime, rs: RuleSet) -> datetime:
    local = moment.astimezone(rs.timezone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def build_grid(
    series: Mapping[SeriesKey, Sequence[IntervalRead]],
    registers: Sequence[RegisterRead],
    rs: RuleSet,
    contexts: Mapping[str, MeterContext],
    span: tuple[datetime, datetime],
    history_from: datetime | None = None,
    clock_checks: Sequence[ClockCheck] = (),
    outages: Sequence[Outage] = (),
) -> Grid:
    """Lay ``series`` on one grid covering interval ends in ``span`` (both inclusive)."""
    step = rs.interval_s
    first_end, last_end = span
    earliest = first_end if history_from is None else min(history_from, first_end)
    origin = _local_midnight(earliest - timedelta(seconds=step), rs)
    start_s = epoch(origin)
    span_lo = -(-(epoch(first_end) - start_s) // step) - 1
    span_hi = -(-(epoch(last_end) - start_s) // step)
    per_day = 86400 // step
    days = -(-span_hi // per_day)
    day_list = tuple(origin.date() + timedelta(days=d) for d in range(days))
    keys = sorted(series)
    rows = len(keys)
    size = days * per_day
    values = np.full((rows, size), np.nan)
    status = np.zeros((rows, size), dtype=np.uint8)
    extra_flags = np.zeros((rows, span_hi - span_lo), dtype=np.uint16)
    extra_rules = np.zeros((rows, span_hi - span_lo), dtype=np.uint32)
    grid = Grid(
        Block(
            start_s,
            step,
            day_list,
            values,
            status,
            span_lo,
            span_hi,
            np.zeros(rows),
            extra_flags,
            extra_rules,
            channels=Channels.of([channel for _, channel in keys]),
        ),
        keys,
        {},
    )
    for row, key in enumerate(keys):
        _place(grid, row, key, series[key], rs)
        ctx = contexts.get(key[0], MeterContext())
        grid.block.limit_kwh[row] = limit_kwh(rs, step) / float(ctx.interval_multiplier)
    _attach_registers(grid, registers, contexts)
    _attach_events(grid, clock_checks, outages)
    return grid


def _place(
    grid: Grid, row: int, key: SeriesKey, reads: Sequence[IntervalRead], rs: RuleSet
) -> None:
    block = grid.block
    assert block.extra_flags is not None and block.extra_rules is not None
    step = block.step_s
    seen: dict[int, IntervalRead] = {}
    for read in reads:
        offset, rest = divmod(epoch(read.interval_end) - block.start_s, step)
        slot = offset - 1 if rest == 0 else offset
        if not block.span_lo <= slot < block.span_hi:
            continue
        local = slot - block.span_lo
        cell = (row, slot)
        if rest:
            block.extra_flags[row, local] |= F_PARTIAL
            block.extra_rules[row, local] |= RULE_BIT["V02"]
            end = to_utc(block.start_s + (slot + 1) * step).astimezone(rs.timezone)
            grid.findings.append(
                _v02(
                    key,
                    end,
                    rs,
                    f"interval end {read.interval_end.isoformat()}"
                    f" is off the {step // 60}-minute grid; added to the "
                    "interval it ends in",
                )
            )
        elif slot in seen:
            block.extra_rules[row, local] |= RULE_BIT["V02"]
            earlier = seen[slot]
            what = (
                "same value"
                if earlier.value == read.value
                else (f"values {earlier.value} and {read.value}; kept the later row")
            )
            detail = f"interval end repeated ({what})"
            grid.findings.append(_v02(key, read.interval_end, rs, detail))
            grid.actuals.pop(cell, None)
            block.values[cell] = np.nan
            block.status[cell] = 0
        if rest == 0:
            seen[slot] = read
        previous = grid.actuals.get(cell)
        grid.actuals[cell] = read.value if previous is None else previous + read.value
        block.values[cell] = float(grid.actuals[cell])
        block.status[cell] |= read.status & 0xFF


def _v02(key: SeriesKey, end: datetime, rs: RuleSet, detail: str) -> Finding:
    start = end - timedelta(seconds=rs.interval_s)
    return Finding("V02", key[0], key[1], start, end, detail, rs.params("V02"))


def _attach_registers(
    grid: Grid, registers: Sequence[RegisterRead], contexts: Mapping[str, MeterContext]
) -> None:
    if not any(r.obis.d == 8 for r in registers):
        return
    row_of: dict[tuple[str, Obis], int] = {}
    for row, (meter, channel) in enumerate(grid.keys):
        total = register_for_channel(channel)
        if total is not None:
            row_of.setdefault((meter, total), row)
    # Only cumulative energy registers (OBIS D = 8) must never go down; demand and
    # instantaneous values are not checked here.
    cumulative = [r for r in registers if r.obis.d == 8]
    ordered = sorted(cumulative, key=lambda r: (r.meter_id, str(r.obis), r.read_at))
    groups: dict[tuple[str, Obis], int] = {}
    families: dict[tuple[str, int, int, int, int, int], int] = {}
    group: list[int] = []
    family: list[int] = []
    tariff: list[int] = []
    t: list[int] = []
    value: list[float] = []
    row_col: list[int] = []
    active: list[bool] = []
    for read in ordered:
        gkey = (read.meter_id, read.obis)
        if gkey not in groups:
            groups[gkey] = len(groups)
            grid.register_keys.append(gkey)
        o = read.obis
        fkey = (read.meter_id, o.a, o.b, o.c, o.d, o.f)
        family.append(families.setdefault(fkey, len(families)))
        group.append(groups[gkey])
        tariff.append(o.e)
        t.append(epoch(read.read_at))
        ctx = contexts.get(read.meter_id, MeterContext())
        scale = ctx.register_multiplier / ctx.interval_multiplier
        value.append(float(read.value * scale))
        row_col.append(row_of.get(gkey, -1) if o.e == 0 and o.d == 8 else -1)
        active.append(ctx.active)
    grid.block.registers = RegisterArrays(
        np.array(group, dtype=np.int64),
        np.array(family, dtype=np.int64),
        np.array(tariff, dtype=np.int64),
        np.array(t, dtype=np.int64),
        np.array(value, dtype=np.float64),
        np.array(row_col, dtype=np.int64),
        np.array(active, dtype=bool),
        Channels.of([str(read.obis) for read in ordered]),
    )


def _attach_events(
    grid: Grid, clock_checks: Sequence[ClockCheck], outages: Sequence[Outage]
) -> None:
    block = grid.block
    rows_of: dict[str, list[int]] = {}
    for row, (meter, _) in enumerate(grid.keys):
        rows_of.setdefault(meter, []).append(row)
    if clock_checks:
        r, t, dev = [], [], []
        for check in clock_checks:
            for row in rows_of.get(check.meter_id, [])[:1]:
                r.append(row)
                t.append(epoch(check.checked_at))
                dev.append(check.deviation_s)
        block.clock_rows = np.array(r, dtype=np.int64)
        block.clock_t = np.array(t, dtype=np.int64)
        block.clock_deviation = np.array(dev, dtype=np.float64)
    if outages:
        mask = np.zeros(block.values.shape, dtype=bool)
        for outage in outages:
            a = max((epoch(outage.start) - block.start_s) // block.step_s, 0)
            b = -(-(epoch(outage.end) - block.start_s) // block.step_s)
            for row in rows_of.get(outage.meter_id, []):
                mask[row, a:b] = True
        block.outage = mask


def day_of(block: Block, slot: int) -> date:
    return block.days[slot // block.slots_per_day]
