"""``headend worker``: meter sessions for the coordinator's batches, landed in the shared store.

One process: Celery's consumer with a pool of threads takes batches (one gateway's jobs) from
the queues of its sites; each thread hands its batch to one asyncio event loop, where the
sessions run side by side as they do in ``headend serve``, and waits until their outcomes are
stored; only then is the message acknowledged. Every ``BEAT_S`` the worker writes its heartbeat
(sites, capacity, sessions running) and extends the lease of every job it runs.

A job is run only if the worker can claim it: still running at the attempt it was sent for and
held by no other worker. A message redelivered after a worker died thus runs only the jobs the
dead worker had not begun; those it had begun go back to the queue when their lease runs out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import structlog

from headend.scheduling.celery_app import READ_BATCH, make_celery, queues_of
from headend.scheduling.remote import job_of
from headend.services.collection.jobs import JobService
from headend.services.collection.queue import DueJob
from headend.services.collection.runner import CollectionService
from headend.services.collection.workers import Workers

log = structlog.get_logger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SessionWorker:
    """The sessions side of a worker process: batches in, outcomes stored."""

    def __init__(
        self,
        jobs: JobService,
        collection: CollectionService,
        workers: Workers,
        *,
        name: str,
        sites: tuple[str, ...],
        capacity: int,
        lease_s: float,
    ) -> None:
        self.jobs, self.collection, self.workers = jobs, collection, workers
        self.name, self.sites, self.capacity, self.lease_s = name, sites, capacity, lease_s
        self.finished = 0
        self._running: set[int] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sessions", daemon=True)
        self._beating: concurrent.futures.Future[None] | None = None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self.workers.beat(self.name, self.sites, self.capacity, 0, 0)
        self._beating = asyncio.run_coroutine_threadsafe(self._beat(), self._loop)
        asyncio.run_coroutine_threadsafe(
            self.collection.land_spool_and_watch(), self._loop
        ).result()

    def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
        with contextlib.suppress(Exception):
            self.workers.stopped(self.name)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.workers.beat_s)
            try:
                running = list(self._running)
                await asyncio.to_thread(self.jobs.renew, self.name, running, self.lease_s)
                await asyncio.to_thread(
                    self.workers.beat,
                    self.name,
                    self.sites,
                    self.capacity,
                    len(running),
                    self.finished,
                )
            except Exception:
                log.exception("the heartbeat could not be stored")

    # -- batches ----------------------------------------------------------------------------
    def run_batch(self, messages: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Run one batch (from a Celery thread): returns when its outcomes are stored."""
        jobs: list[DueJob] = []
        for message in messages:
            try:
                jobs.append(job_of(message))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("a malformed job in a batch is skipped", error=str(exc))
        return asyncio.run_coroutine_threadsafe(self._run(jobs), self._loop).result()

    async def _run(self, jobs: list[DueJob]) -> dict[str, int]:
        claimed = await asyncio.to_thread(self.jobs.claim, jobs, self.name, self.lease_s)
        ids = [job.id for job in claimed]
        self._running.update(ids)
        try:
            outcomes = await asyncio.gather(*(self.collection.run(job) for job in claimed))
            ended = await asyncio.to_thread(
                self.jobs.finish_many, list(zip(claimed, outcomes, strict=True)), self.name
            )
        finally:
            self._running.difference_update(ids)
        self.finished += len(claimed)
        return {
            "sent": len(jobs),
            "ran": len(claimed),
            "ended": sum(1 for end in ended if end is not None),
        }


def run_worker(session_worker: SessionWorker, broker_url: str, loglevel: str = "WARNING") -> None:
    """Consume the worker's queues until SIGTERM or SIGINT (a warm shutdown: batches under way
    end first)."""
    app = make_celery(broker_url)

    @app.task(name=READ_BATCH)  # type: ignore[untyped-decorator]
    def read_batch(messages: list[dict[str, Any]]) -> dict[str, int]:
        return session_worker.run_batch(messages)

    session_worker.start()
    try:
        worker = app.Worker(
            hostname=f"headend@{session_worker.name}",
            pool="threads",
            concurrency=session_worker.capacity,
            queues=queues_of(session_worker.sites),
            loglevel=loglevel,
            quiet=True,
            without_gossip=True,
            without_mingle=True,
        )
        worker.start()
    finally:
        session_worker.stop()
