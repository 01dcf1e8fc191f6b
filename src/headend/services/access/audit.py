"""The audit trail: every command and edit, with the name of the key that made it.

A use case that changes data takes the ``Actor`` who asks for the change and writes its
audit record (``write``) in the same transaction as the change: the record and the change
are stored together or not at all, whoever called the use case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import Role
from headend.services.clock import Clock, utcnow
from headend.store.repositories.access import AccessRepository


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a key's name and role, or a name such as ``cli``."""

    name: str
    role: Role | None = None


def write(
    session: Session,
    at: datetime,
    actor: Actor,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add the audit record of a change to the transaction that makes it."""
    AccessRepository(session).add_event(
        at,
        actor.name,
        None if actor.role is None else str(actor.role),
        action,
        target,
        detail or {},
    )


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

    def login(self, actor: Actor) -> None:
        """A dashboard login: it changes nothing else, so it is recorded on its own."""
        with self.session_factory() as session, session.begin():
            write(session, self.clock(), actor, "dashboard.login")

    def recent(self, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        with self.session_factory() as session:
            return [
                AuditEntry(e.at, e.actor, e.role, e.action, e.target, dict(e.detail))
                for e in AccessRepository(session).recent_events(limit, actor)
            ]
