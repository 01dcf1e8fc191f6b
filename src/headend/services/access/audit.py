"""The audit trail: every command and edit, with the name of the key that made it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headend.services.collection.jobs import Clock, utcnow
from headend.store.models import AuditEvent
from headend.store.repositories.access import AccessRepository


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


class AuditService:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock = utcnow) -> None:
        self.session_factory = session_factory
        self.clock = clock

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        role: str | None = None,
    ) -> None:
        with self.session_factory() as session, session.begin():
            session.add(
                AuditEvent(
                    at=self.clock(),
                    actor=actor,
                    role=role,
                    action=action,
                    target=target,
                    detail=detail or {},
                )
            )

    def recent(self, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        with self.session_factory() as session:
            return [
                AuditEntry(e.at, e.actor, e.role, e.action, e.target, dict(e.detail))
                for e in AccessRepository(session).recent_events(limit, actor)
            ]
