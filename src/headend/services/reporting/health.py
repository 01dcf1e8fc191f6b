"""Whether the store answers, how the background loops of ``serve`` fare, and which workers
run meter sessions, for ``/health`` and the dashboard's workers page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from headend.services.collection.workers import Workers, WorkerStatus
from headend.store.queries.health import ping

# this process's part in collection: "leader" runs the scheduler and the dispatcher, "standby"
# waits to take over from the leading coordinator (the Celery executor)
CoordinatorRole = Literal["leader", "standby"]
# workers not heard from for this long are no longer listed: a lost worker stays in view for a
# day, so the operators see it went, then leaves room for those that replaced it
RECENT_WORKERS = timedelta(hours=24)


@dataclass
class LoopStatus:
    """A supervised background loop (VEE and rollups, the dispatcher): how often it crashed
    and was restarted, and the last error."""

    name: str
    running: bool = False
    crashes: int = 0
    last_error: str | None = None
    last_crash_at: datetime | None = None


class HealthService:
    """``workers``: the heartbeats of the Celery executor's workers; None with the local
    executor, whose sessions run in the serving process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        loops: Callable[[], Sequence[LoopStatus]] = tuple,
        workers: Workers | None = None,
    ) -> None:
        self.session_factory = session_factory
        self._loops = loops
        self._workers = workers

    def database_answers(self) -> bool:
        """True when a round trip to the database succeeds; any failure is False."""
        try:
            with self.session_factory() as session:
                ping(session)
        except Exception:
            return False
        return True

    def loops(self) -> list[LoopStatus]:
        """The background loops this process supervises (none outside ``serve``)."""
        return list(self._loops())

    def workers(self, recent: timedelta = RECENT_WORKERS) -> list[WorkerStatus]:
        """The workers not stopped and heard from within ``recent``, the alive ones first
        (as the dispatcher counts them), then by
        name; none with the local executor. A worker lost without stopping stays listed, not
        alive, until ``recent`` has passed, so its loss shows."""
        if self._workers is None:
            return []
        return self._workers.recent(recent)
