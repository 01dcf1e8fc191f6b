"""The dispatcher: starts due read jobs within every limit and records how they end.

Limits, all enforced here: a global number of sessions; each gateway's own session limit (a
serial port or an RS485 bus carries one at a time); never two sessions to one meter; on-demand
jobs first (they have a lower priority number); a gateway paused by its circuit breaker gets no
new sessions until the pause ends.

Sessions run here (the local executor: ``runner`` per job, in this event loop) or on workers
(``remote``: the Celery executor, see ``remote.py``), where a job of a site starts only while
that site's live workers have room.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import structlog

from headend.domain.enums import FailureCategory, JobState
from headend.scheduling.breaker import CircuitBreaker
from headend.scheduling.remote import LEFT, RemoteSessions
from headend.services.collection.jobs import AttemptOutcome, Finished, JobService
from headend.services.collection.queue import DueJob, StoreBatch

log = structlog.get_logger(__name__)
T = TypeVar("T")
RECORD_BATCH = 128  # session outcomes recorded in one transaction at most
ReadRunner = Callable[[DueJob], Awaitable[AttemptOutcome]]


@dataclass
class DispatcherLimits:
    max_sessions: int = 200
    poll_interval_s: float = 0.5
    settle_s: float = 0.02  # pause after each pass, so one pass starts many jobs
    breaker_threshold: int = 5
    breaker_pause_s: float = 300.0


@dataclass
class DispatcherStats:
    started: int = 0
    finished: int = 0
    peak_sessions: int = 0
    peak_by_gateway: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    peak_by_meter: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # sessions ended, by outcome: "succeeded" or the failure category
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dispatcher:
    def __init__(
        self,
        jobs: JobService,
        runner: ReadRunner | None,
        limits: DispatcherLimits | None = None,
        remote: RemoteSessions | None = None,
    ) -> None:
        if (runner is None) == (remote is None):
            raise ValueError("a dispatcher runs sessions here (runner) or on workers (remote)")
        self.jobs = jobs
        self.runner = runner
        self.remote = remote
        self.limits = limits or DispatcherLimits()
        # sending to workers costs a message per gateway and pass: passes gather more ends
        self._settle_s = self.limits.settle_s
        if remote is not None:
            self._settle_s = max(self._settle_s, remote.settle_s)
        self.breaker = CircuitBreaker(
            self.limits.breaker_threshold, timedelta(seconds=self.limits.breaker_pause_s)
        )
        self.stats = DispatcherStats()
        self._by_gateway: dict[int, int] = defaultdict(int)
        self._meters: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_session: set[asyncio.Task[Any]] = set()  # still talking to their meter
        self._wakeup = asyncio.Event()
        # The store is used from one thread, so the event loop never waits on a write.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headend-db")
        self._recording = StoreBatch(self._store, self.jobs.finish_many, RECORD_BATCH)

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    @property
    def in_flight(self) -> int:
        return len(self._meters)

    @property
    def sessions_by_gateway(self) -> dict[int, int]:
        """Sessions open now, per gateway id (gateways with none are left out)."""
        return {gid: n for gid, n in dict(self._by_gateway).items() if n}

    def wake(self) -> None:
        """New work was queued: look for it now rather than at the next poll."""
        self._wakeup.set()

    async def recover(self) -> list[int]:
        """Requeue the jobs a stopped process left running; returns their ids. With workers,
        only those whose lease ran out: the others are still running on a worker."""
        recover = self.jobs.recover if self.remote is None else self.jobs.requeue_expired
        ids = await self._store(recover)
        if ids:
            log.warning("requeued jobs found running at start-up", count=len(ids))
        return ids

    async def dispatch_once(self) -> int:
        """Start every due job the limits allow; return how many were started."""
        free = self.limits.max_sessions - self.in_flight
        if free <= 0:
            return 0
        remote = self.remote
        if remote is not None:
            await remote.refresh()
        due = await self._store(self.jobs.due, free * 4 + 16, set(self._meters))
        now = self.jobs.clock()
        chosen: list[DueJob] = []
        for job in due:
            if self.in_flight >= self.limits.max_sessions:
                break
            if job.meter_pk in self._meters:
                continue
            if self._by_gateway[job.gateway_id] >= job.gateway_sessions:
                continue
            if not self.breaker.allows(job.gateway_id, now):
                continue
            if remote is not None and not remote.room_for(job.site):
                continue  # no live worker of its site has room: it waits, queued
            self._claim(job)
            chosen.append(job)
        if not chosen:
            return 0
        lease = remote.lease_s if remote is not None else None
        started = await self._store(self.jobs.start_many, chosen, lease)
        for job, ok in zip(chosen, started, strict=True):
            if not ok:
                self._release(job)
                continue
            task = asyncio.create_task(self._run(job), name=f"read-job-{job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if remote is not None:
            await asyncio.sleep(0)  # each task hands its job over before the batches go
            await remote.flush()
        return sum(started)

    def _claim(self, job: DueJob) -> None:
        self._meters.add(job.meter_pk)
        self._by_gateway[job.gateway_id] += 1
        if self.remote is not None:
            self.remote.take(job.site)
        stats = self.stats
        stats.started += 1
        stats.peak_sessions = max(stats.peak_sessions, self.in_flight)
        stats.peak_by_gateway[job.gateway_id] = max(
            stats.peak_by_gateway[job.gateway_id], self._by_gateway[job.gateway_id]
        )

    def _release(self, job: DueJob) -> None:
        self._meters.discard(job.meter_pk)
        self._by_gateway[job.gateway_id] -= 1
        if self.remote is not None:
            self.remote.give_back(job.site)

    async def _run(self, job: DueJob) -> None:
        if self.remote is not None:
            await self._run_remote(self.remote, job)
            return
        assert self.runner is not None
        structlog.contextvars.bind_contextvars(job_id=job.id, meter_id=job.meter_id)
        try:
            task = asyncio.current_task()
            assert task is not None
            started = self.jobs.clock()
            try:
                self._in_session.add(task)
                outcome = await self.runner(job)
            except asyncio.CancelledError:
                # stopped at a deadline (``collect --timeout``, ``serve`` shutting down): the
                # attempt is recorded as timed out, so the job is not left running
                log.warning("session cancelled at the deadline")
                task.uncancel()
                outcome = AttemptOutcome(
                    started,
                    self.jobs.clock(),
                    False,
                    FailureCategory.RESPONSE_TIMEOUT,
                    "response_timeout: session cancelled at the collection's deadline",
                )
            except Exception as exc:  # a bug in a runner must not stop the dispatcher
                log.exception("read runner raised", error=str(exc))
                now = self.jobs.clock()
                outcome = AttemptOutcome(
                    now, now, False, FailureCategory.INTERNAL, f"internal: {exc!r}"
                )
            finally:
                self._in_session.discard(task)
            finished = await self._finish(job, outcome)
            outcome_name = "succeeded" if outcome.succeeded else str(outcome.category)
            self._ended(job, outcome.succeeded, finished.counts_against_gateway, outcome_name)
        finally:
            self._release(job)
            self._wakeup.set()
            structlog.contextvars.unbind_contextvars("job_id", "meter_id")

    async def _run_remote(self, remote: RemoteSessions, job: DueJob) -> None:
        """The job on a worker: sent, then followed until the worker (or a lease running out)
        ends it."""
        task = asyncio.current_task()
        assert task is not None
        try:
            self._in_session.add(task)
            try:
                end = await remote.run(job)
            finally:
                self._in_session.discard(task)
            if end is LEFT:
                return
            outcome_name = "succeeded" if end.succeeded else str(end.category)
            if end.state is JobState.QUEUED:
                outcome_name = "requeued"
            self._ended(job, end.succeeded, end.counts_against_gateway, outcome_name)
        finally:
            self._release(job)
            self._wakeup.set()

    def _ended(self, job: DueJob, succeeded: bool, counts: bool, outcome: str) -> None:
        """A session ended: the gateway's breaker told, and the outcome counted."""
        if succeeded:
            self.breaker.record_success(job.gateway_id)
        elif counts and self.breaker.record_failure(job.gateway_id, self.jobs.clock()):
            log.warning("gateway paused after repeated failures", gateway_id=job.gateway_id)
        self.stats.finished += 1
        self.stats.outcomes[outcome] += 1

    async def _finish(self, job: DueJob, outcome: AttemptOutcome) -> Finished:
        """Record how a session ended; sessions ending together are recorded in one
        transaction."""
        finished = await self._recording.submit((job, outcome))
        assert finished is not None  # recorded here, not by a worker
        return finished

    async def run(self, stop: asyncio.Event, grace_s: float | None = None) -> None:
        """Dispatch until ``stop`` is set, then wait for the sessions under way: all of them,
        or for ``grace_s`` seconds, after which those still running are cancelled and their
        attempts recorded as ``response_timeout``."""
        await self._dispatch_until(stop)
        if self.remote is not None:  # sessions on workers go on without this coordinator
            self.remote.leave()
        await self.drain(grace_s)

    async def _dispatch_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.dispatch_once()
            self._wakeup.clear()
            waiters = [
                asyncio.ensure_future(self._wakeup.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            await asyncio.wait(
                waiters, timeout=self.limits.poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
            # let a burst of finishing sessions free their slots before the next pass
            await asyncio.sleep(self._settle_s)

    async def drain(self, grace_s: float | None = None) -> None:
        """Wait for the sessions under way; after ``grace_s`` seconds (None: no limit) cancel
        those still running. Each cancelled session records its attempt before it ends."""
        tasks = set(self._tasks)
        if not tasks:
            return
        if grace_s is None:
            await asyncio.gather(*tasks, return_exceptions=True)
            return
        if grace_s > 0:
            await asyncio.wait(tasks, timeout=grace_s)
        # only sessions still talking to their meter are cancelled; one recording its end
        # finishes on its own
        talking = [task for task in tasks if task in self._in_session and not task.done()]
        if talking:
            log.warning("cancelling sessions still running at the deadline", count=len(talking))
            for task in talking:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_until_finished(
        self, job_ids: Sequence[int], timeout_s: float | None = None, grace_s: float = 0.0
    ) -> bool:
        """Dispatch until every job in ``job_ids`` ended; False if ``timeout_s`` passed first.
        At the time-out, sessions still running after ``grace_s`` more seconds are cancelled
        and their attempts recorded, so none is left running."""
        stop = asyncio.Event()

        async def watch() -> bool:
            loop = asyncio.get_running_loop()
            checked = 0.0
            while True:
                # while sessions run, none of the jobs can be done: ask the store rarely
                if not self.in_flight or loop.time() - checked > 5.0:
                    checked = loop.time()
                    if await self._store(self.jobs.all_finished, job_ids):
                        return True
                await asyncio.sleep(self.limits.poll_interval_s)

        grace: float | None = None  # every job ended: the sessions of others may finish
        runner = asyncio.create_task(self._dispatch_until(stop))
        try:
            return await asyncio.wait_for(watch(), timeout_s)
        except TimeoutError:
            grace = grace_s
            return False
        finally:
            stop.set()
            await runner
            await self.drain(grace)

    def close(self) -> None:
        self._db.shutdown(wait=True)
