"""What sessions learned about meter models: one row per device profile, firmware and quirk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from headend.store.base import Base
from headend.store.types import UtcDateTime


class LearnedQuirk(Base):
    """A way meters of one device profile and firmware depart from the standard, found by a
    session (``get_with_list_unreliable``, ...); the next session of such a meter starts
    knowing it. ``firmware`` is empty while the meter's firmware is not known."""

    __tablename__ = "learned_quirks"
    __table_args__ = (UniqueConstraint("device_profile", "firmware", "quirk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_profile: Mapped[str] = mapped_column(String(64))
    firmware: Mapped[str] = mapped_column(String(64), default="")
    quirk: Mapped[str] = mapped_column(String(48))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))  # found on it first
    sessions: Mapped[int] = mapped_column(Integer, default=1)  # sessions that found it
