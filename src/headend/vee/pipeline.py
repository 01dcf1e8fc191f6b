"""VEE over named reads: group into series, run the block kernel, name the results.

``run_vee`` is what the collection service and ``headend vee run`` call. It is pure: ``now``,
the rule set and everything known about the meters are arguments, and the result is a value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from headend.domain.calendar import VIETNAM, HolidayCalendar
from headend.domain.quality import Flag, Quality
from headend.vee.block import BlockResult, FindingBatch
from headend.vee.codes import METHOD_NAME, QUALITIES, rule_ids
from headend.vee.grid import Grid, SeriesKey, build_grid, epoch, to_utc
from headend.vee.kernel import run_block
from headend.vee.messages import describe
from headend.vee.model import (
    ClockCheck,
    Finding,
    IntervalRead,
    IntervalVersion,
    MeterContext,
    Outage,
    RegisterRead,
    ReReadRequest,
    VeeResult,
)
from headend.vee.ruleset import RuleSet, default_rules

USABLE_HISTORY = (Quality.VALID, Quality.VERIFIED)


def run_vee(
    intervals: Iterable[IntervalRead],
    registers: Iterable[RegisterRead] = (),
    *,
    now: datetime,
    rules: RuleSet | None = None,
    contexts: Mapping[str, MeterContext] | None = None,
    previous: Iterable[IntervalVersion] = (),
    history: Iterable[IntervalVersion] = (),
    clock_checks: Sequence[ClockCheck] = (),
    outages: Sequence[Outage] = (),
    span: tuple[datetime, datetime] | None = None,
    calendar: HolidayCalendar = VIETNAM,
) -> VeeResult:
    """Validate and estimate ``intervals`` (with ``registers`` for the sum check and E2).

    Output covers every expected interval end in ``span`` (default: from the earliest to the
    latest interval end read) for every series read. ``history`` is earlier, final data used
    for like days and usage history; ``previous`` are the current stored versions: an edit
    among them is kept, and ``new_versions`` holds only what differs from them.
    """
    base = rules or default_rules()
    ctx = dict(contexts or {})
    by_series: dict[SeriesKey, list[IntervalRead]] = defaultdict(list)
    for read in intervals:
        by_series[(read.meter_id, read.channel)].append(read)
    register_list = list(registers)
    history_list = [v for v in history if v.quality in USABLE_HISTORY and v.value is not None]
    by_rules: dict[str, tuple[RuleSet, list[SeriesKey]]] = {}
    for key in sorted(by_series):
        meter = ctx.get(key[0], MeterContext())
        rs = base.for_meter(meter.profile, meter.meter_class)
        by_rules.setdefault(rs.name, (rs, []))[1].append(key)
    versions: list[IntervalVersion] = []
    findings: list[Finding] = []
    rereads: list[ReReadRequest] = []
    for rs, keys in by_rules.values():
        reads = {k: by_series[k] for k in keys}
        ends = [r.interval_end for rows in reads.values() for r in rows]
        group_span = span or (min(ends), max(ends))
        meters = {k[0] for k in keys}
        mine = [h for h in history_list if (h.meter_id, h.channel) in reads]
        grid = build_grid(
            reads,
            [r for r in register_list if r.meter_id in meters],
            rs,
            ctx,
            group_span,
            min((h.interval_end for h in mine), default=None),
            [c for c in clock_checks if c.meter_id in meters],
            [o for o in outages if o.meter_id in meters],
        )
        _place_history(grid, mine)
        result = run_block(grid.block, rs, epoch(now), calendar)
        versions.extend(_versions(grid, result, rs, now))
        findings.extend(grid.findings)
        findings.extend(_findings(grid, result.findings, rs))
        requests = _rereads(grid, result, rs, now)
        rereads.extend(requests)
        findings.extend(_reread_findings(requests, rs))
    merged, new = _merge(versions, previous)
    findings.sort(key=lambda f: (f.meter_id, f.channel, f.start, f.rule, f.end))
    return VeeResult(tuple(merged), tuple(findings), tuple(rereads), tuple(new))


def _place_history(grid: Grid, history: list[IntervalVersion]) -> None:
    block = grid.block
    row_of = {key: row for row, key in enumerate(grid.keys)}
    for version in history:
        offset, rest = divmod(epoch(version.interval_end) - block.start_s, block.step_s)
        slot = offset - 1
        if rest == 0 and 0 <= slot < block.span_lo and version.value is not None:
            block.values[row_of[(version.meter_id, version.channel)], slot] = float(version.value)


def _places(resolution: float) -> int:
    """Decimal places of a resolution such as 0.001."""
    exponent = Decimal(repr(resolution)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _inputs(grid: Grid, method: str | None, source: int, slot: int) -> str:
    block = grid.block
    if method == "E4":
        return f"like day {block.days[slot // block.slots_per_day] - timedelta(days=source)}"
    if method == "E5":
        return f"average of {source} like days"
    if method == "E3":
        return "linear between the valid intervals either side"
    if method == "E2":
        return "register advance less valid intervals over the bracketing reads"
    if method == "E9":
        return "confirmed outage"
    return ""


def _versions(grid: Grid, res: BlockResult, rs: RuleSet, now: datetime) -> list[IntervalVersion]:
    block = grid.block
    out: list[IntervalVersion] = []
    tz = rs.timezone
    places = _places(rs.resolution_kwh)
    ends = [
        to_utc(block.start_s + (slot + 1) * block.step_s).astimezone(tz)
        for slot in range(block.span_lo, block.span_hi)
    ]
    flags: dict[int, Flag] = {}
    for row, (meter, channel) in enumerate(grid.keys):
        q_row, m_row = res.quality[row].tolist(), res.method[row].tolist()
        r_row, f_row = res.rules[row].tolist(), res.flags[row].tolist()
        v_row, s_row = res.value[row].tolist(), res.source[row].tolist()
        for i, end in enumerate(ends):
            slot = block.span_lo + i
            quality = QUALITIES[q_row[i]]
            method = METHOD_NAME.get(m_row[i])
            value: Decimal | None
            inputs = ""
            if method is not None:
                value = Decimal(f"{v_row[i]:.{places}f}")
                inputs = _inputs(grid, method, s_row[i], slot)
            elif quality is Quality.MISSING:
                value = None
            else:
                value = grid.actuals[(row, slot)]
            flag = flags.get(f_row[i])
            if flag is None:
                flag = flags[f_row[i]] = Flag(f_row[i])
            out.append(
                IntervalVersion(
                    meter,
                    channel,
                    end,
                    value,
                    quality,
                    method,
                    rule_ids(r_row[i]),
                    flag,
                    inputs,
                    now,
                )
            )
    return out


def _names(grid: Grid, batch: FindingBatch, i: int) -> tuple[str, str]:
    if batch.on_register:
        meter, obis = grid.register_keys[int(batch.rows[i])]
        return meter, str(obis)
    return grid.keys[int(batch.rows[i])]


def _findings(grid: Grid, batches: list[FindingBatch], rs: RuleSet) -> list[Finding]:
    tz = rs.timezone
    out: list[Finding] = []
    for batch in batches:
        params = rs.params(batch.rule)
        for i in range(len(batch)):
            meter, channel = _names(grid, batch, i)
            start = to_utc(int(batch.start_s[i])).astimezone(tz)
            end = to_utc(int(batch.end_s[i])).astimezone(tz)
            metrics = {k: float(v[i]) for k, v in batch.metrics.items()}
            intervals = (int(batch.end_s[i]) - int(batch.start_s[i])) // grid.block.step_s
            detail = describe(batch.rule, batch.kind, metrics, intervals, params)
            out.append(Finding(batch.rule, meter, channel, start, end, detail, params, batch.kind))
    return out


def _rereads(grid: Grid, res: BlockResult, rs: RuleSet, now: datetime) -> list[ReReadRequest]:
    if res.reread_rows.size == 0:
        return []
    tz = rs.timezone
    keep = timedelta(days=rs.num("E0", "retention_days"))
    out = []
    for row, s, e in zip(
        res.reread_rows.tolist(), res.reread_start.tolist(), res.reread_end.tolist(), strict=True
    ):
        meter, channel = grid.keys[row]
        start, end = to_utc(s).astimezone(tz), to_utc(e).astimezone(tz)
        slots = slice(
            (s - grid.block.start_s) // grid.block.step_s - grid.block.span_lo,
            (e - grid.block.start_s) // grid.block.step_s - grid.block.span_lo,
        )
        why = rule_ids(int(np.bitwise_or.reduce(res.rules[row, slots])))
        out.append(
            ReReadRequest(
                meter, channel, start, end, now, start + keep, int(rs.num("E0", "attempts")), why
            )
        )
    return out


def _reread_findings(requests: list[ReReadRequest], rs: RuleSet) -> list[Finding]:
    params = rs.params("E0")
    return [
        Finding(
            "E0",
            r.meter_id,
            r.channel,
            r.start,
            r.end,
            f"re-read requested ({r.attempts} attempts) before {r.not_after.isoformat()}; "
            "estimated meanwhile",
            params,
        )
        for r in requests
    ]


def _merge(
    versions: list[IntervalVersion], previous: Iterable[IntervalVersion]
) -> tuple[list[IntervalVersion], list[IntervalVersion]]:
    before = {v.key: v for v in previous}
    merged: list[IntervalVersion] = []
    new: list[IntervalVersion] = []
    for version in versions:
        old = before.get(version.key)
        if old is not None and (old.quality is Quality.EDITED or old.same_content(version)):
            merged.append(old)
            continue
        if old is not None:
            version = replace(version, supersedes=old.created_at)
        merged.append(version)
        new.append(version)
    return merged, new
