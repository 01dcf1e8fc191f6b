"""The VEE pass over the store: interval data landed since the last pass is validated and
estimated, and the results stored as new versions; nothing stored is overwritten.

Landing marks a meter (``meters.vee_from``) with the earliest interval it added; a pass takes
the marked meters in batches, runs ``headend.vee`` on all of them at once (it is vectorised
across meters), writes what changed and clears the marks it handled. Data arriving late moves
the mark back, so the period it falls in is validated again and an actual replaces an
estimate made before it came.

Findings are stable: an open finding the pass finds again (same rule, meter, channel and
period) is kept with its id and ``created_at``; one it no longer finds is closed
(``resolved_by`` ``CLEARED_BY``); only new ones are added and counted.

The register reads of the re-validated period (scheduled reads, billing-profile snapshots)
still as read (RAW) get the quality VEE gives them as their next version: VALID, or SUSPECT
with the rule that failed (``headend.vee.register_quality``); billing and the API read the
current version. A register read is judged by the pass that validates the intervals landed
with it, or by the meter's next one.

Every new version moves the meter's ``rollup_from`` mark back to its interval, in the same
transaction; given a ``RollupService``, the pass ends by recomputing the day rollups of the
meters so marked (by landing, by itself, by operator edits).

One meter cannot sink the pass: when a batch fails, its meters are validated one by one; a
meter that still fails (its profile or its data breaks VEE) is logged with its ``meter_id``,
gets an open finding of rule ``VEE_FAILED_RULE`` with the reason (one, however many passes
fail on it), has its mark cleared (new
data marks it again) and is listed in ``PassSummary.failed``; the pass goes on with the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.quality import Flag
from headend.profiles import load_profile
from headend.services.clock import Clock, utcnow
from headend.services.collection.jobs import JobRequest, JobService
from headend.services.validation.registers import judge_register_reads
from headend.services.validation.rollups import RollupService
from headend.services.validation.versions import as_version
from headend.store.blocks import StoredInterval
from headend.store.repositories.rollups import RollupRepository
from headend.store.repositories.vee import VeeRepository
from headend.vee.model import IntervalRead, IntervalVersion, MeterContext, RegisterRead
from headend.vee.pipeline import run_vee

RAW = 0
VEE_FAILED_RULE = "VEEFAIL"  # the finding of a meter the pass could not validate
# who closes an open finding that a later pass no longer finds (``resolved_by``)
CLEARED_BY = "vee: cleared by a later VEE pass"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ValidationSettings:
    revalidate: timedelta = timedelta(days=1)  # validated again before the first new interval
    history: timedelta = timedelta(days=14)  # earlier data for like days and usage history
    batch_meters: int = 2000
    # intervals a batch may write at most (estimated from each meter's mark): a transaction
    # that writes much more holds SQLite's one write lock, or the meters' rows on PostgreSQL,
    # long enough to stall landing; a meter alone is taken whatever its size
    batch_intervals: int = 100_000


@dataclass
class PassSummary:
    meters: int = 0
    new_versions: int = 0
    register_versions: int = 0  # register reads given their quality (a new version each)
    findings: int = 0  # new findings; an open finding found again is kept, not counted
    findings_closed: int = 0  # open findings a pass no longer found, closed as cleared
    rereads_queued: int = 0
    rolled_up: int = 0  # meters whose day rollups were recomputed after the pass
    # meters the pass could not validate: (meter id, reason); each also has a finding
    failed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: PassSummary) -> None:
        self.meters += other.meters
        self.new_versions += other.new_versions
        self.register_versions += other.register_versions
        self.findings += other.findings
        self.findings_closed += other.findings_closed
        self.rereads_queued += other.rereads_queued
        self.rolled_up += other.rolled_up
        self.failed.extend(other.failed)


Key = tuple[int, str, datetime]  # meter pk, channel, interval end


@dataclass
class _Loaded:
    """What a batch's stored intervals give the VEE run."""

    raw: list[IntervalRead]
    registers: list[RegisterRead]
    previous: list[IntervalVersion]  # current versions of the re-validated period
    history: list[IntervalVersion]  # current versions before it
    latest_version: dict[Key, int]


def _raw_reads(
    landed: Sequence[StoredInterval],
    names: dict[int, str],
    cumulative: dict[Key, Any],
    periods: dict[int, timedelta],
) -> tuple[list[IntervalRead], list[RegisterRead]]:
    """The landed rows as VEE input: interval values, and the register captures."""
    raw: list[IntervalRead] = []
    registers: list[RegisterRead] = []
    for row in landed:
        meter_id = names[row.meter_id]
        if row.cumulative is not None:
            obis = Obis.parse(row.channel)
            registers.append(RegisterRead(meter_id, obis, row.interval_end, row.cumulative))
        value = row.value
        if Flag(row.flags) & Flag.LONG:
            # it followed a gap; once the gap's rows have come, its own interval is known
            before = cumulative.get(
                (row.meter_id, row.channel, row.interval_end - periods[row.meter_id])
            )
            value = (
                row.cumulative - before
                if before is not None and row.cumulative is not None
                else None
            )
        if value is not None:
            raw.append(
                IntervalRead(meter_id, row.channel, row.interval_end, value, row.status or 0)
            )
    return raw, registers


class ValidationService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: ValidationSettings | None = None,
        clock: Clock = utcnow,
        rollups: RollupService | None = None,
        profiles_dir: Path | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.profiles_dir = profiles_dir  # None: the shipped protocols/ folder
        self.settings = settings or ValidationSettings()
        self.clock = clock
        self.rollups = rollups

    def run_pending(self, stop: Callable[[], bool] | None = None) -> PassSummary:
        """Validate every meter marked by landing, a batch per transaction; then, with a
        rollup service, bring the day rollups of every meter whose data changed up to date
        (``RollupService.run_pending``). When ``stop`` turns true the pass ends after the
        batch under way; what is left stays marked for the next pass."""
        total = PassSummary()
        while stop is None or not stop():
            with self.session_factory() as session:
                marked = VeeRepository(session).marked_meters(self.settings.batch_meters)
            if not marked:
                break
            batch = self._within_budget(marked)
            try:
                with self.session_factory() as session, session.begin():
                    total.add(self._validate(session, batch))
            except Exception as exc:
                if len(batch) == 1:
                    total.add(self._failed(batch[0], exc))
                    continue
                log.warning("a VEE batch failed; validating its meters one by one", error=str(exc))
                for one in batch:
                    total.add(self._validate_alone(one))
        if self.rollups is not None and (stop is None or not stop()):
            total.rolled_up = self.rollups.run_pending(stop).meters
        return total

    def _validate_alone(self, one: Any) -> PassSummary:
        """Validate one meter in its own transaction; if it fails, record why."""
        try:
            with self.session_factory() as session, session.begin():
                return self._validate(session, [one])
        except Exception as exc:
            return self._failed(one, exc)

    def _failed(self, one: Any, exc: Exception) -> PassSummary:
        """Record that VEE could not validate a meter, and clear its mark so the pass goes on.
        If even that fails, the store is at fault, not the meter: the pass stops."""
        pk, meter_id, since, _ = one
        reason = f"{type(exc).__name__}: {exc}"
        log.error("VEE could not validate a meter", meter_id=meter_id, error=reason, exc_info=exc)
        now = self.clock()
        with self.session_factory() as session, session.begin():
            repo = VeeRepository(session)
            failing = any(row.rule == VEE_FAILED_RULE for row in repo.open_findings([pk]))
            if not failing:  # a meter still failing keeps its open finding
                repo.add_findings(
                    [
                        {
                            "meter_id": pk,
                            "channel": None,
                            "rule": VEE_FAILED_RULE,
                            "start": since,
                            "end": max(now, since),
                            "detail": f"VEE could not validate this meter: {reason}"[:2000],
                            "params": {"error": type(exc).__name__},
                            "status": "open",
                            "created_at": now,
                        }
                    ]
                )
            repo.clear_mark(pk, since)
        return PassSummary(meters=1, findings=0 if failing else 1, failed=[(meter_id, reason)])

    def _within_budget(self, marked: Sequence[Any]) -> Sequence[Any]:
        """The first meters of ``marked`` whose intervals to write (import and export, from
        the mark less ``revalidate`` to now) fit ``batch_intervals``; at least one. A meter
        whose profile does not load counts as one interval (its batch then fails on it and
        is validated meter by meter)."""
        now, budget = self.clock(), self.settings.batch_intervals
        for n, (_, _, since, profile) in enumerate(marked):
            try:
                period_s = load_profile(profile, self.profiles_dir).load_profile.capture_period_s
            except Exception:
                period_s = 0
            if period_s <= 0:
                budget -= 1
                continue
            span = now - since + self.settings.revalidate
            budget -= 2 * max(1, int(span.total_seconds() // period_s))
            if budget < 0:
                return marked[: max(n, 1)]
        return marked

    def _validate(self, session: Session, marked: Sequence[Any]) -> PassSummary:
        now = self.clock()
        repo = VeeRepository(session)
        names = {pk: meter_id for pk, meter_id, _, _ in marked}
        starts = {pk: since - self.settings.revalidate for pk, _, since, _ in marked}
        loaded = self._load(repo, marked, names, starts)
        contexts = {meter_id: MeterContext(profile=profile) for _, meter_id, _, profile in marked}
        summary = PassSummary(meters=len(marked))
        if loaded.raw or loaded.registers:
            result = run_vee(
                loaded.raw,
                loaded.registers,
                now=now,
                contexts=contexts,
                previous=loaded.previous,
                history=loaded.history,
            )
            pk_of = {meter_id: pk for pk, meter_id in names.items()}
            summary.new_versions = self._store_versions(
                session, result.new_versions, pk_of, loaded.latest_version, now
            )
            summary.findings, summary.findings_closed = self._store_findings(
                repo, result.findings, pk_of, starts, now
            )
            summary.rereads_queued = self._queue_rereads(
                session, result.reread_requests, pk_of, now
            )
        profiles = {pk: profile for pk, _, _, profile in marked}
        summary.register_versions = judge_register_reads(
            repo, profiles, starts, self.settings.history, now
        )
        for pk, _, since, _ in marked:  # clear only the marks this pass saw
            repo.clear_mark(pk, since)
        return summary

    def _load(
        self,
        repo: VeeRepository,
        marked: Sequence[Any],
        names: dict[int, str],
        starts: dict[int, datetime],
    ) -> _Loaded:
        """Read the batch's intervals from the re-validated period less ``history`` on: the
        rows landed in the period, and the current version of every interval VEE made."""
        periods = {
            pk: timedelta(
                seconds=load_profile(profile, self.profiles_dir).load_profile.capture_period_s
            )
            for pk, _, _, profile in marked
        }
        earliest = min(starts.values())
        current: dict[Key, StoredInterval] = {}
        latest_version: dict[Key, int] = defaultdict(int)
        cumulative: dict[Key, Any] = {}
        landed: list[StoredInterval] = []
        for row in repo.interval_versions(list(names), earliest - self.settings.history):
            key = (row.meter_id, row.channel, row.interval_end)
            latest_version[key] = max(latest_version[key], row.version)
            if row.version > RAW:
                current[key] = row  # ordered by version: the last one wins
                continue
            if row.cumulative is not None:
                cumulative[key] = row.cumulative
            if row.interval_end > starts[row.meter_id]:
                landed.append(row)
        raw, registers = _raw_reads(landed, names, cumulative, periods)
        previous: list[IntervalVersion] = []
        history: list[IntervalVersion] = []
        for (pk, _channel, end), row in current.items():
            version = as_version(row, names[pk])
            (previous if end > starts[pk] else history).append(version)
        return _Loaded(raw, registers, previous, history, latest_version)

    @staticmethod
    def _store_versions(
        session: Session,
        versions: Sequence[IntervalVersion],
        pk_of: dict[str, int],
        latest_version: dict[Key, int],
        now: datetime,
    ) -> int:
        """Store VEE's new versions, each numbered after the interval's latest, and mark the
        meters' rollups stale from the first of them."""
        inserts: list[dict[str, Any]] = []
        for version in versions:
            pk = pk_of[version.meter_id]
            key = (pk, version.channel, version.interval_end)
            latest_version[key] += 1
            inserts.append(
                {
                    "meter_id": pk,
                    "channel": version.channel,
                    "interval_end": version.interval_end,
                    "version": latest_version[key],
                    "value": version.value,
                    "cumulative": None,
                    "quality": version.quality,
                    "flags": int(version.flags),
                    "status": None,
                    "method": version.method,
                    "rules": ",".join(version.rules) or None,
                    "inputs": version.inputs or None,
                    "raw_read_id": None,
                    "created_by": version.created_by,
                    "created_at": now,
                }
            )
        if inserts:
            VeeRepository(session).add_versions(inserts)
            changed: dict[int, datetime] = {}
            for new in inserts:
                pk, end = new["meter_id"], new["interval_end"]
                changed[pk] = min(changed.get(pk, end), end)
            RollupRepository(session).mark_stale(changed)
        return len(inserts)

    def _store_findings(
        self,
        repo: VeeRepository,
        findings: Sequence[Any],
        pk_of: dict[str, int],
        starts: dict[int, datetime],
        now: datetime,
    ) -> tuple[int, int]:
        """Reconcile this pass's findings with the open ones of the re-validated period: a
        finding of the same rule on the same meter, channel and period is kept as it is (its
        id and ``created_at`` stay); one of the same rule and kind whose period moved but
        overlaps the new one (the billing gate's window, a gap partly filled) is kept with the
        new period and detail; one the pass did not find again is closed as cleared; the rest
        are added. Returns (added, closed)."""
        kept: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        by_kind: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        before: set[int] = set()  # open findings before the period: kept, never closed
        for row in repo.open_findings(list(starts)):
            fid, pk, channel, rule, start, end, params = row
            kept[(pk, channel or None, rule, start, end)].append(fid)
            kind = (params or {}).get("kind")
            if kind:
                by_kind[(pk, channel or None, rule, kind)].append(row)
            if end <= starts[pk]:
                before.add(fid)
        matched: set[int] = set()
        unmatched: list[tuple[int, Any]] = []
        for f in findings:
            pk = pk_of[f.meter_id]
            same = [
                fid
                for fid in kept.get((pk, f.channel or None, f.rule, f.start, f.end), [])
                if fid not in matched
            ]
            if same:
                matched.add(same[0])  # still failing: the open finding stands
            else:
                unmatched.append((pk, f))
        rows: list[dict[str, Any]] = []
        for pk, f in unmatched:
            # the same failure over a period that moved (a window, a gap partly filled)
            moved = [
                row
                for row in by_kind.get((pk, f.channel or None, f.rule, f.kind), [])
                if row.id not in matched and row.start < f.end and f.start < row.end
            ]
            params = {**f.params, "kind": f.kind} if f.kind else dict(f.params)
            if moved:
                matched.add(moved[0].id)
                repo.update_finding(
                    moved[0].id, start=f.start, end=f.end, detail=f.detail, params=params
                )
                continue
            rows.append(
                {
                    "meter_id": pk,
                    "channel": f.channel or None,
                    "rule": f.rule,
                    "start": f.start,
                    "end": f.end,
                    "detail": f.detail,
                    "params": params,
                    "status": "open",
                    "created_at": now,
                }
            )
        cleared = [
            fid for ids in kept.values() for fid in ids if fid not in matched and fid not in before
        ]
        repo.close_findings(cleared, now, CLEARED_BY)
        if rows:
            repo.add_findings(rows)
        return len(rows), len(cleared)

    def _queue_rereads(
        self, session: Session, requests: Sequence[Any], pk_of: dict[str, int], now: datetime
    ) -> int:
        """E0: ask for the load profile again while the meter still holds it."""
        wanted: dict[int, tuple[datetime, datetime, datetime]] = {}
        for request in requests:
            pk = pk_of[request.meter_id]
            start, end, not_after = wanted.get(pk, (request.start, request.end, request.not_after))
            wanted[pk] = (
                min(start, request.start),
                max(end, request.end),
                min(not_after, request.not_after),
            )
        if not wanted:
            return 0
        queued = JobService.queue_in(
            session,
            [
                JobRequest(
                    pk,
                    {"start": start.isoformat(), "end": end.isoformat(), "reread": True},
                    not_after,
                )
                for pk, (start, end, not_after) in wanted.items()
            ],
            ReadKind.LOAD_PROFILE,
            now,
            priority=50,
            requested_by="vee:E0",
        )
        return len(queued)
