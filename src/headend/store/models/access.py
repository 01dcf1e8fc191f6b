"""API keys (stored as a hash, with a role; revocable) and the audit trail of what they did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from headend.domain.enums import Role
from headend.store.base import Base, utcnow
from headend.store.models._columns import enum_type
from headend.store.types import UtcDateTime


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown in listings
    key_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(enum_type(Role))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, role={self.role!s})"


class AuditEvent(Base):
    """Who did what through the API or the command line: every command and edit."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # the API key's name, or "cli:<user>"
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))  # e.g. "read.request", "interval.edit"
    target: Mapped[str | None] = mapped_column(String(128))  # e.g. "meter:EM000123"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
