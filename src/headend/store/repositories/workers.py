"""Statements over the ``workers`` table: each worker process's heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from headend.store.base import table_of
from headend.store.models import Worker


class WorkerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def beat(
        self,
        name: str,
        sites: Sequence[str],
        capacity: int,
        sessions: int,
        finished: int,
        at: datetime,
    ) -> None:
        """The worker is alive at ``at``, running ``sessions``: its row made or brought up to
        date (a restarted worker of the same name starts afresh)."""
        values = {
            "sites": list(sites),
            "capacity": capacity,
            "sessions": sessions,
            "finished": finished,
            "seen_at": at,
            "stopped_at": None,
        }
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table_of(Worker)).values(name=name, started_at=at, **values)
        self.session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))

    def stopped(self, name: str, at: datetime) -> None:
        self.session.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(stopped_at=at, sessions=0, seen_at=at)
            .execution_options(synchronize_session=False)
        )

    def seen_since(self, since: datetime) -> list[Worker]:
        """Workers not stopped whose last heartbeat came at ``since`` or later, by name."""
        return list(
            self.session.scalars(
                select(Worker)
                .where(Worker.stopped_at.is_(None), Worker.seen_at >= since)
                .order_by(Worker.name)
            )
        )
