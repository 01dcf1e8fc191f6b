"""Workers' heartbeats, as the coordinator, ``/health`` and the dashboard see them.

A ``headend worker`` process beats every few seconds; one not heard from for
``MISSED_BEATS`` beats is taken for dead: the coordinator sends its sites no more work, and the
jobs it held are queued again when their leases run out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from headend.services.clock import Clock, utcnow
from headend.store.models import Worker
from headend.store.repositories.workers import WorkerRepository

BEAT_S = 2.0  # a worker's heartbeat, and how often it extends the leases of its jobs
MISSED_BEATS = 5  # beats missed before a worker counts as dead


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    sites: tuple[str, ...]  # (): the gateways that belong to no site
    capacity: int
    sessions: int
    finished: int
    started_at: datetime
    seen_at: datetime
    alive: bool


class Workers:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock = utcnow,
        beat_s: float = BEAT_S,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.beat_s = beat_s

    def beat(
        self, name: str, sites: Sequence[str], capacity: int, sessions: int, finished: int
    ) -> None:
        with self.session_factory() as session, session.begin():
            WorkerRepository(session).beat(name, sites, capacity, sessions, finished, self.clock())

    def stopped(self, name: str) -> None:
        with self.session_factory() as session, session.begin():
            WorkerRepository(session).stopped(name, self.clock())

    def _since(self) -> datetime:
        return self.clock() - timedelta(seconds=self.beat_s * MISSED_BEATS)

    def alive(self) -> list[WorkerStatus]:
        """Workers heard from lately and not stopped."""
        with self.session_factory() as session:
            rows = WorkerRepository(session).seen_since(self._since())
            return [self._status(row, True) for row in rows]

    def recent(self, within: timedelta) -> list[WorkerStatus]:
        """Workers not stopped and heard from within ``within``: the alive ones first, then
        those lost (heard from, but not lately), each group by name."""
        now = self.clock()
        alive_since = self._since()
        with self.session_factory() as session:
            rows = WorkerRepository(session).seen_since(now - within)
            found = [self._status(row, row.seen_at >= alive_since) for row in rows]
        return sorted(found, key=lambda worker: (not worker.alive, worker.name))

    def capacity_by_site(self) -> dict[str | None, int]:
        """Sessions the live workers can run at once, by site (None: gateways of no site).
        A worker serving several sites counts for each."""
        capacity: dict[str | None, int] = defaultdict(int)
        for worker in self.alive():
            for site in worker.sites or (None,):
                capacity[site] += worker.capacity
        return dict(capacity)

    @staticmethod
    def _status(row: Worker, alive: bool) -> WorkerStatus:
        return WorkerStatus(
            row.name,
            tuple(row.sites or ()),
            row.capacity,
            row.sessions,
            row.finished,
            row.started_at,
            row.seen_at,
            alive,
        )
