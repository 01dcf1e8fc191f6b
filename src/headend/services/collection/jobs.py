"""The read-job queue: queueing reads, starting and finishing jobs, recovering after a crash."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.domain.jobs import (
    RETRY_RULES,
    TERMINAL,
    IllegalTransition,
    JobEvent,
    next_state,
    retry_at,
)
from headend.services.access.audit import Actor
from headend.services.access.audit import write as write_audit
from headend.services.clock import Clock, utcnow
from headend.services.errors import UnknownMeter
from headend.store.notices import announce
from headend.store.repositories.jobs import DueJob, JobRepository

ON_DEMAND_PRIORITY = 10
SCHEDULED_PRIORITY = 100


@dataclass(frozen=True)
class AttemptOutcome:
    """What one session with a meter came to, as the dispatcher records it."""

    started_at: datetime
    finished_at: datetime
    succeeded: bool
    category: FailureCategory | None = None
    detail: str | None = None
    connect_ms: int | None = None
    bytes_sent: int | None = None
    bytes_received: int | None = None
    result: dict[str, Any] = field(default_factory=dict)  # summary of what was read and landed
    # the read did not land but is kept in the spool: the job stays running until it lands
    spooled: bool = False


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: JobState
    attempts: int
    failure_category: FailureCategory | None
    failure_detail: str | None
    values: list[dict[str, Any]]


@dataclass(frozen=True)
class JobRequest:
    """One meter's job to queue: its parameters and the deadline of its window."""

    meter_pk: int
    params: dict[str, Any]
    deadline: datetime | None


@dataclass(frozen=True)
class Finished:
    state: JobState
    retry_at: datetime | None
    counts_against_gateway: bool


class JobService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock = utcnow,
        retry_delay_scale: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.retry_delay_scale = retry_delay_scale
        self.rng = rng or random.Random()

    # -- queueing ---------------------------------------------------------------------------
    def queue(
        self,
        meter_pks: Sequence[int],
        kind: ReadKind,
        *,
        priority: int = SCHEDULED_PRIORITY,
        params: dict[str, Any] | None = None,
        plan_id: int | None = None,
        window: timedelta | None = timedelta(hours=4),
        requested_by: str | None = None,
        skip_if_active: bool = True,
        audit: Callable[[Session, list[int]], None] | None = None,
    ) -> list[int]:
        """Queue one job per meter; a meter that already has a live job of this kind is skipped
        (so a plan firing again, or after downtime, does not pile up duplicates). ``audit``,
        if given, records the queued job ids in the same transaction."""
        now = self.clock()
        shared = params or {}
        deadline = now + window if window else None
        with self.session_factory() as session, session.begin():
            ids = self.queue_in(
                session,
                [JobRequest(pk, shared, deadline) for pk in meter_pks],
                kind,
                now,
                priority=priority,
                plan_id=plan_id,
                requested_by=requested_by,
                skip_if_active=skip_if_active,
            )
            if audit is not None:
                audit(session, ids)
            return ids

    @staticmethod
    def queue_in(
        session: Session,
        requests: Sequence[JobRequest],
        kind: ReadKind,
        now: datetime,
        *,
        priority: int = SCHEDULED_PRIORITY,
        plan_id: int | None = None,
        requested_by: str | None = None,
        skip_if_active: bool = True,
    ) -> list[int]:
        """``queue`` inside the caller's transaction, each meter with its own parameters and
        deadline."""
        repo = JobRepository(session)
        pks = [request.meter_pk for request in requests]
        busy = repo.meters_with_active_job(kind, pks) if skip_if_active else set()
        rows = [
            {
                "meter_id": request.meter_pk,
                "plan_id": plan_id,
                "kind": kind,
                "params": request.params,
                "priority": priority,
                "state": JobState.QUEUED,
                "due_at": now,
                "deadline": request.deadline,
                "attempts": 0,
                "requested_by": requested_by,
                "created_at": now,
                "updated_at": now,
            }
            for request in requests
            if request.meter_pk not in busy
        ]
        return repo.add_jobs(rows)

    def live(self, meter_pks: Sequence[int], kind: ReadKind) -> list[int]:
        """Jobs of this kind still queued, running or waiting to retry for these meters."""
        with self.session_factory() as session:
            return JobRepository(session).active_job_ids(kind, meter_pks)

    def meter_pks(self, meter_ids: Sequence[str]) -> list[int]:
        with self.session_factory() as session:
            found = JobRepository(session).meter_pks(meter_ids)
        missing = [m for m in meter_ids if m not in found]
        if missing:
            raise UnknownMeter(missing)
        return [found[m] for m in meter_ids]

    def queue_for_meters(
        self,
        meter_ids: Sequence[str],
        kind: ReadKind,
        **options: Any,
    ) -> list[int]:
        with self.session_factory() as session:
            found = JobRepository(session).meter_pks(meter_ids)
        missing = [m for m in meter_ids if m not in found]
        if missing:
            raise UnknownMeter(missing)
        return self.queue([found[m] for m in meter_ids], kind, **options)

    def request_read(
        self,
        meter_id: str,
        kind: ReadKind,
        params: dict[str, Any] | None = None,
        requested_by: str | None = None,
        *,
        actor: Actor,
    ) -> int:
        """An on-demand read: runs before scheduled work. Audited as ``read.request``."""

        def audited(session: Session, ids: list[int]) -> None:
            detail = {"job_id": ids[0], "kind": str(kind), **(params or {})}
            write_audit(session, self.clock(), actor, "read.request", f"meter:{meter_id}", detail)

        return self.queue_for_meters(
            [meter_id],
            kind,
            priority=ON_DEMAND_PRIORITY,
            params=params,
            window=timedelta(minutes=30),
            requested_by=requested_by or "on-demand",
            skip_if_active=False,
            audit=audited,
        )[0]

    # -- running ----------------------------------------------------------------------------
    def due(self, limit: int, exclude_meters: set[int]) -> list[DueJob]:
        with self.session_factory() as session:
            return JobRepository(session).due_jobs(self.clock(), limit, exclude_meters)

    def start(self, job: DueJob) -> bool:
        """Mark a due job running; False when another dispatcher got there first."""
        return self.start_many([job])[0]

    def start_many(self, jobs: Sequence[DueJob], lease_s: float | None = None) -> list[bool]:
        """Mark due jobs running in one transaction; False for each one another dispatcher
        started, finished or cancelled meanwhile. With ``lease_s`` (jobs sent to workers) each
        job is leased for that long to whichever worker claims it."""
        now = self.clock()
        lease: dict[str, Any] = (
            {"worker": None, "lease_until": now + timedelta(seconds=lease_s)} if lease_s else {}
        )
        # jobs in the same state at the same attempt count start in one statement
        groups: dict[tuple[JobState, int], list[int]] = defaultdict(list)
        for job in jobs:
            groups[(job.state, job.attempts)].append(job.id)
        started: set[int] = set()
        with self.session_factory() as session, session.begin():
            repo = JobRepository(session)
            for (state, attempts), ids in groups.items():
                try:
                    next_state(state, JobEvent.START)
                except IllegalTransition:
                    continue
                started |= repo.start(ids, state, attempts, now, **lease)
        return [job.id in started for job in jobs]

    def finish(self, job: DueJob, outcome: AttemptOutcome) -> Finished:
        finished = self.finish_many([(job, outcome)])[0]
        assert finished is not None  # only a worker's end can find the job gone
        return finished

    def finish_many(
        self,
        ended: Sequence[tuple[DueJob, AttemptOutcome]],
        worker: str | None = None,
        *,
        if_running: bool = False,
    ) -> list[Finished | None]:
        """Record how several sessions ended, in one transaction. With ``worker``, only the
        jobs that worker still holds at the attempt it was sent are ended; with
        ``if_running``, only those still running at that attempt. The others get None: their
        lease ran out and the job went back to the queue, or it already ended (what a
        session read has landed all the same)."""
        with self.session_factory() as session, session.begin():
            repo = JobRepository(session)
            if worker is None and not if_running:
                return [self._finish(repo, job, outcome) for job, outcome in ended]
            held = repo.held({job.id: job.attempts + 1 for job, _ in ended}, worker)
            results = [
                self._finish(repo, job, outcome, worker, held=True) if job.id in held else None
                for job, outcome in ended
            ]
            # the coordinator that sent these jobs learns of their ends when this commits
            announce(
                session,
                [
                    (job.id, str(done.state), None if done.state is JobState.SUCCEEDED
                     else str(outcome.category or FailureCategory.DECODE_ERROR))
                    for (job, outcome), done in zip(ended, results, strict=True)
                    if done is not None and done.state is not JobState.RUNNING
                ],
            )  # fmt: skip
            return results

    def _finish(
        self,
        repo: JobRepository,
        job: DueJob,
        outcome: AttemptOutcome,
        worker: str | None = None,
        held: bool = False,
    ) -> Finished:
        attempt = job.attempts + 1
        # a remote end applies to the attempt that was sent, while the worker holds the lease
        owner: dict[str, Any] = {"at_attempt": attempt} if held else {}
        if worker is not None:
            owner["held_by"] = worker
        repo.add_attempt(
            {
                "job_id": job.id,
                "number": attempt,
                "started_at": outcome.started_at,
                "finished_at": outcome.finished_at,
                "succeeded": outcome.succeeded,
                "failure_category": outcome.category,
                "failure_detail": outcome.detail,
                "connect_ms": outcome.connect_ms,
                "duration_ms": int(
                    (outcome.finished_at - outcome.started_at).total_seconds() * 1000
                ),
                "bytes_sent": outcome.bytes_sent,
                "bytes_received": outcome.bytes_received,
            }
        )
        now = self.clock()
        if outcome.spooled:  # the spool's landing pass ends the job (see runner.land_spooled)
            return Finished(JobState.RUNNING, None, False)
        if outcome.succeeded:
            repo.transition(
                job.id,
                JobEvent.SUCCEED,
                now,
                "read succeeded",
                expected=JobState.RUNNING,
                failure_category=None,
                failure_detail=None,
                lease_until=None,
                **owner,
            )
            return Finished(JobState.SUCCEEDED, None, False)
        category = outcome.category or FailureCategory.DECODE_ERROR
        when = retry_at(
            category, attempt, now, job.deadline, self.rng.random(), self.retry_delay_scale
        )
        rule = RETRY_RULES[category]
        if when is None:
            repo.transition(
                job.id,
                JobEvent.FAIL,
                now,
                f"{category}: {outcome.detail or ''}".strip(),
                expected=JobState.RUNNING,
                failure_category=category,
                failure_detail=outcome.detail,
                lease_until=None,
                **owner,
            )
            return Finished(JobState.FAILED, None, rule.counts_against_gateway)
        repo.transition(
            job.id,
            JobEvent.RETRY,
            now,
            f"{category}; retry at {when.isoformat()}",
            expected=JobState.RUNNING,
            failure_category=category,
            failure_detail=outcome.detail,
            due_at=when,
            lease_until=None,
            worker=None,
            **owner,
        )
        return Finished(JobState.RETRY_WAIT, when, rule.counts_against_gateway)

    def recover(self) -> list[int]:
        """Put jobs left running by a stopped process back in the queue; returns their ids."""
        return self._requeue(None, "found running at start-up")

    def requeue_expired(self) -> list[int]:
        """Put running jobs whose lease ran out (their worker stopped, or never got them)
        back in the queue; returns their ids."""
        return self._requeue(self.clock(), "its worker's lease ran out")

    def _requeue(self, lease_ended_by: datetime | None, reason: str) -> list[int]:
        now = self.clock()
        requeued: list[int] = []
        with self.session_factory() as session, session.begin():
            repo = JobRepository(session)
            for job_id in repo.running_job_ids(lease_ended_by):
                # conditional: a worker ending the job meanwhile wins
                if repo.transition(
                    job_id,
                    JobEvent.REQUEUE,
                    now,
                    reason,
                    JobState.RUNNING,
                    due_at=now,
                    worker=None,
                    lease_until=None,
                ):
                    requeued.append(job_id)
            announce(session, [(job_id, str(JobState.QUEUED), None) for job_id in requeued])
        return requeued

    def claim(self, jobs: Sequence[DueJob], worker: str, lease_s: float) -> list[DueJob]:
        """The jobs of a batch the worker may run: those still running at the attempt they
        were sent for and held by no other worker; leased to ``worker`` for ``lease_s``."""
        until = self.clock() + timedelta(seconds=lease_s)
        with self.session_factory() as session, session.begin():
            repo = JobRepository(session)
            return [job for job in jobs if repo.claim(job.id, job.attempts + 1, worker, until)]

    def renew(self, worker: str, job_ids: Sequence[int], lease_s: float) -> int:
        """Extend the worker's lease on the jobs it runs; how many it still holds."""
        until = self.clock() + timedelta(seconds=lease_s)
        with self.session_factory() as session, session.begin():
            return JobRepository(session).renew(worker, job_ids, until)

    def states(
        self, job_ids: Sequence[int], ended_only: bool = False
    ) -> list[tuple[int, JobState, int, FailureCategory | None]]:
        """Each job's id, state, attempts and failure category (only of the jobs no longer
        running, with ``ended_only``)."""
        with self.session_factory() as session:
            return JobRepository(session).states(job_ids, ended_only)

    def outcome(self, job_id: int) -> JobOutcome | None:
        """A job's state, its failure if any, and what it read (the raw reads it landed)."""
        with self.session_factory() as session:
            repo = JobRepository(session)
            job = repo.job(job_id)
            if job is None:
                return None
            raws = repo.raw_reads(job_id)
            return JobOutcome(
                job_id=job.id,
                state=job.state,
                attempts=job.attempts,
                failure_category=job.failure_category,
                failure_detail=job.failure_detail,
                values=[raw.payload for raw in raws],
            )

    async def wait(self, job_id: int, timeout_s: float, poll_s: float = 0.1) -> JobOutcome | None:
        """Wait up to ``timeout_s`` for the job to end; returns its outcome either way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            outcome = await asyncio.to_thread(self.outcome, job_id)
            if outcome is None or outcome.state in TERMINAL or loop.time() >= deadline:
                return outcome
            await asyncio.sleep(min(poll_s, max(0.0, deadline - loop.time())))

    # -- looking ----------------------------------------------------------------------------
    def all_finished(self, job_ids: Sequence[int]) -> bool:
        with self.session_factory() as session:
            counts = JobRepository(session).state_counts(job_ids)
        return all(state in TERMINAL for state in counts)

    def queue_depth(self) -> dict[JobState, int]:
        with self.session_factory() as session:
            return JobRepository(session).queue_depth()

    def configuration_problems(
        self, job_ids: Sequence[int], limit: int = 10
    ) -> list[dict[str, Any]]:
        """Why jobs failed as ``configuration`` (a registry's or a profile's mistake, which no
        retry mends): each distinct detail, how many meters, one of them; commonest first."""
        with self.session_factory() as session:
            rows = JobRepository(session).failure_details(
                job_ids, FailureCategory.CONFIGURATION, limit
            )
        return [{"detail": d, "meters": n, "example_meter": m} for d, n, m in rows]

    def summary(self, job_ids: Sequence[int]) -> dict[str, Any]:
        with self.session_factory() as session:
            repo = JobRepository(session)
            counts = repo.state_counts(job_ids)
            failures = repo.failures_by_category(job_ids)
        return {
            "attempted": len(job_ids),
            "succeeded": counts.get(JobState.SUCCEEDED, 0),
            "failed": counts.get(JobState.FAILED, 0),
            "unfinished": sum(v for k, v in counts.items() if k not in TERMINAL),
            "failures_by_category": {str(k): v for k, v in sorted(failures.items())},
        }
