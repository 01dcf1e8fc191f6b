"""Sessions on workers: the dispatcher's jobs sent through Celery, their ends read back from
the store (``HEADEND_EXECUTOR=celery``).

The dispatcher still decides what may start, within the global, per-gateway and per-meter
limits and within what the live workers of each site can run (their heartbeats say). What it
starts is leased (``HEADEND_JOB_LEASE_S``) and sent, grouped by gateway, to the queue of the
gateway's site. The worker that claims a job extends the lease while the session runs and
stores the outcome; this side learns of the end by reading the jobs' states, and queues again
any running job whose lease ran out (its worker died, or the message was never taken).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.domain.jobs import RETRY_RULES
from headend.services.collection.jobs import ON_DEMAND_PRIORITY, AttemptOutcome, JobService
from headend.services.collection.queue import DueJob
from headend.services.collection.workers import Workers

log = structlog.get_logger(__name__)
# send([(queue, jobs), ...]): one message per pair, each carrying one gateway's batch
Send = Callable[[Sequence[tuple[str, list[dict[str, Any]]]]], None]
QueueOf = Callable[[str | None, bool], str]
CAPACITY_EVERY_S = 1.0
SETTLE_S = 0.1
READ_EVERY_S = 5.0  # the job states read although the workers announce each end


class Listener(Protocol):
    """Announcements of job ends (``store.notices.EndsListener``)."""

    def connect(self) -> None: ...

    def wait(self, timeout_s: float) -> list[tuple[int, str, str | None]]: ...


@dataclass(frozen=True)
class RemoteEnd:
    """How a job sent to a worker ended, as the store tells it."""

    state: JobState
    category: FailureCategory | None

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.SUCCEEDED

    @property
    def counts_against_gateway(self) -> bool:
        ended_badly = self.state in (JobState.FAILED, JobState.RETRY_WAIT)
        return bool(
            ended_badly and self.category and RETRY_RULES[self.category].counts_against_gateway
        )


LEFT = RemoteEnd(JobState.RUNNING, None)  # the coordinator stopped; the worker ends the job


def job_message(job: DueJob) -> dict[str, Any]:
    """A due job as a message carries it (JSON)."""
    return {
        "id": job.id,
        "meter_pk": job.meter_pk,
        "meter_id": job.meter_id,
        "gateway_id": job.gateway_id,
        "gateway_sessions": job.gateway_sessions,
        "kind": str(job.kind),
        "params": job.params,
        "priority": job.priority,
        "attempts": job.attempts,
        "deadline": job.deadline.isoformat() if job.deadline else None,
        "state": str(job.state),
        "site": job.site,
    }


def job_of(message: dict[str, Any]) -> DueJob:
    """The due job a message carries; raises ``KeyError``/``ValueError`` on a malformed one."""
    deadline = message["deadline"]
    return DueJob(
        id=int(message["id"]),
        meter_pk=int(message["meter_pk"]),
        meter_id=str(message["meter_id"]),
        gateway_id=int(message["gateway_id"]),
        gateway_sessions=int(message["gateway_sessions"]),
        kind=ReadKind(message["kind"]),
        params=dict(message["params"]),
        priority=int(message["priority"]),
        attempts=int(message["attempts"]),
        deadline=datetime.fromisoformat(deadline) if deadline else None,
        state=JobState(message["state"]),
        site=message.get("site"),
    )


class RemoteSessions:
    def __init__(
        self,
        jobs: JobService,
        workers: Workers,
        send: Send,
        queue_of: QueueOf,
        lease_s: float,
        poll_s: float = 0.5,
        listener: Listener | None = None,
    ) -> None:
        self.jobs, self.workers, self._send, self._queue_of = jobs, workers, send, queue_of
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._listener = listener
        self._listening = False
        # the dispatcher's pause after each pass: a slot waits this long at most, and each
        # pass (a query, a statement, a message per gateway) serves the ends of that while
        self.settle_s = SETTLE_S
        self._capacity: dict[str | None, int] = {}
        self._by_site: dict[str | None, int] = defaultdict(int)
        self._unsent: list[DueJob] = []
        self._waiting: dict[int, tuple[DueJob, asyncio.Future[RemoteEnd]]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._capacity_at = self._swept_at = float("-inf")

    # -- what may start --------------------------------------------------------------------
    async def refresh(self) -> None:
        """Before each dispatch pass: the live workers' capacity by site (read again once a
        second at most), and the running jobs whose lease ran out queued again (every quarter
        lease), whoever started them."""
        now = asyncio.get_running_loop().time()
        if self._listener is not None and not self._listening:
            try:
                await asyncio.to_thread(self._listener.connect)
                self._listening = True
            except Exception as exc:
                log.warning(
                    "cannot listen for job ends; reading job states instead", error=str(exc)
                )
        if now - self._capacity_at >= CAPACITY_EVERY_S:
            self._capacity_at = now
            self._capacity = await asyncio.to_thread(self.workers.capacity_by_site)
        if now - self._swept_at >= self.lease_s / 4:
            self._swept_at = now
            requeued = await asyncio.to_thread(self.jobs.requeue_expired)
            if requeued:
                log.warning("jobs queued again: their lease ran out", count=len(requeued))

    def room_for(self, site: str | None) -> bool:
        return self._by_site[site] < self._capacity.get(site, 0)

    def take(self, site: str | None) -> None:
        self._by_site[site] += 1

    def give_back(self, site: str | None) -> None:
        self._by_site[site] -= 1

    # -- sending and waiting ---------------------------------------------------------------
    async def run(self, job: DueJob) -> RemoteEnd:
        """Send the job (with the others of its gateway started in the same pass, at
        ``flush``) and wait until a worker ends it. Cancelled (``collect --timeout``), the
        attempt is recorded as timed out unless the worker ended it first."""
        future: asyncio.Future[RemoteEnd] = asyncio.get_running_loop().create_future()
        self._waiting[job.id] = (job, future)
        self._unsent.append(job)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="remote-sessions")
        try:
            return await future
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return await asyncio.to_thread(self._give_up, job)
        finally:
            self._waiting.pop(job.id, None)

    async def flush(self) -> int:
        """Send the jobs started since the last flush, one message per gateway and kind of
        queue (on-demand or bulk); how many messages."""
        if not self._unsent:
            return 0
        batches: dict[tuple[int, bool], list[DueJob]] = defaultdict(list)
        for job in self._unsent:
            batches[(job.gateway_id, job.priority <= ON_DEMAND_PRIORITY)].append(job)
        self._unsent = []
        messages = [
            (self._queue_of(jobs[0].site, on_demand), [job_message(job) for job in jobs])
            for (_, on_demand), jobs in batches.items()
        ]
        await asyncio.to_thread(self._send, messages)
        return len(messages)

    def leave(self) -> None:
        """The coordinator stops: jobs sent stay with their workers, which end them."""
        for _, future in list(self._waiting.values()):
            if not future.done():
                future.set_result(LEFT)

    async def _watch(self) -> None:
        """While jobs are out, learn which of them no longer run: those have ended (or gone
        back to the queue). The workers announce each end (``store.notices``); the states of
        all jobs out are read as well every ``READ_EVERY_S``, or every ``poll_s`` while no
        announcement can be heard. None of the jobs can be started again meanwhile: the
        dispatcher keeps its meter busy until its end is seen here."""
        loop = asyncio.get_running_loop()
        read_at = loop.time()
        while self._waiting:
            listener = self._listener if self._listening else None
            if listener is None:
                await asyncio.sleep(self.poll_s)
            else:
                try:
                    heard = await asyncio.to_thread(listener.wait, self.poll_s)
                except Exception as exc:
                    log.warning("listening for job ends failed", error=str(exc))
                    self._listening = False
                    heard = []
                for job_id, state, category in heard:
                    self._ended(
                        job_id, JobState(state), FailureCategory(category) if category else None
                    )
                if loop.time() - read_at < READ_EVERY_S:
                    continue
            read_at = loop.time()
            try:
                states = await asyncio.to_thread(self.jobs.states, list(self._waiting), True)
            except Exception:
                log.exception("reading the states of jobs sent to workers failed")
                continue
            for job_id, state, _, category in states:
                self._ended(job_id, state, category)

    def _ended(self, job_id: int, state: JobState, category: FailureCategory | None) -> None:
        held = self._waiting.get(job_id)
        if held is not None and state is not JobState.RUNNING and not held[1].done():
            held[1].set_result(RemoteEnd(state, category))

    def _give_up(self, job: DueJob) -> RemoteEnd:
        now = self.jobs.clock()
        outcome = AttemptOutcome(
            now,
            now,
            False,
            FailureCategory.RESPONSE_TIMEOUT,
            "response_timeout: the collection's deadline passed while a worker ran the session",
        )
        finished = self.jobs.finish_many([(job, outcome)], if_running=True)[0]
        if finished is None:  # the worker ended it first
            for job_id, state, _, category in self.jobs.states([job.id]):
                if job_id == job.id:
                    return RemoteEnd(state, category)
            return LEFT
        return RemoteEnd(finished.state, FailureCategory.RESPONSE_TIMEOUT)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
