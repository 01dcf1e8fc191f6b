"""Whether the store answers, and how the background loops of ``serve`` fare, for
``/health``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from headend.store.queries.health import ping


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
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        loops: Callable[[], Sequence[LoopStatus]] = tuple,
    ) -> None:
        self.session_factory = session_factory
        self._loops = loops

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
