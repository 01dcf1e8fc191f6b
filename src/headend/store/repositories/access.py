"""Statements over API keys and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from headend.store.models import ApiKey, AuditEvent


class AccessRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- API keys ---------------------------------------------------------------------------
    def key_exists(self, name: str) -> bool:
        return self.session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None

    def key(self, name: str) -> ApiKey | None:
        return self.session.scalar(select(ApiKey).where(ApiKey.name == name))

    def all_keys(self) -> list[ApiKey]:
        return list(self.session.scalars(select(ApiKey).order_by(ApiKey.name)))

    def key_by_prefix(self, prefix: str) -> Any:
        """(id, name, role, key_hash, revoked_at, last_used_at) of the key, or None."""
        return self.session.execute(
            select(
                ApiKey.id,
                ApiKey.name,
                ApiKey.role,
                ApiKey.key_hash,
                ApiKey.revoked_at,
                ApiKey.last_used_at,
            ).where(ApiKey.prefix == prefix)
        ).one_or_none()

    def mark_used(self, key_id: int, at: datetime) -> None:
        self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))

    # -- the audit trail --------------------------------------------------------------------
    def add_event(
        self,
        at: datetime,
        actor: str,
        role: str | None,
        action: str,
        target: str | None,
        detail: dict[str, Any],
    ) -> None:
        """Add an audit record to the transaction that makes the change it records."""
        self.session.add(
            AuditEvent(at=at, actor=actor, role=role, action=action, target=target, detail=detail)
        )

    def recent_events(self, limit: int, actor: str | None) -> list[AuditEvent]:
        """The newest events first, at most ``limit``; those of ``actor`` when given."""
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if actor is not None:
            stmt = stmt.where(AuditEvent.actor == actor)
        return list(self.session.scalars(stmt))
