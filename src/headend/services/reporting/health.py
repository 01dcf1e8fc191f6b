"""Whether the store answers, for ``/health``."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from headend.store.queries.health import ping


class HealthService:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def database_answers(self) -> bool:
        """True when a round trip to the database succeeds; any failure is False."""
        try:
            with self.session_factory() as session:
                ping(session)
        except Exception:
            return False
        return True
