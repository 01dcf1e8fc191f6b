"""Quirks learned per device profile and firmware: kept when a read lands, handed to the
next session of any meter of that model (``MeterTarget.known_quirks``) so it does not pay
for them again, and listed for operators.

A session learns a quirk by paying for it once (a GET-with-list it had to retry item by item,
a selective access the meter refused); :mod:`headend.protocol.session` names them. The key
is the meter's device profile and firmware: the firmware the read reported (the profile's
``firmware`` object), else the one stored for the meter (``meters.firmware``, kept from its
last read that reported one). The firmware is empty while no read has said which it is, so
until then a quirk is kept for the whole profile, and a meter whose firmware is not known
starts knowing what any firmware of its profile has.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headend.store.repositories.quirks import LearnedQuirkRow, QuirksRepository


def remember_learned(
    session: Session, meter_pk: int, learned: Iterable[str], at: datetime, firmware: str = ""
) -> None:
    """Keep what a session of meter ``meter_pk`` learned, in the caller's transaction."""
    quirks = sorted(set(learned))
    if not quirks:
        return
    repo = QuirksRepository(session)
    profile = repo.device_profile_of(meter_pk)
    if profile is not None:
        repo.record(profile, firmware, quirks, meter_pk, at)


def known_quirks(
    session: Session, models: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], frozenset[str]]:
    """What earlier sessions learned of each (device profile, firmware), in the caller's
    transaction."""
    return QuirksRepository(session).known(models)


class LearnedQuirks:
    """The operators' view: what was learned of which model, first on which meter."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def listing(self, device_profile: str | None = None) -> list[LearnedQuirkRow]:
        with self.session_factory() as session:
            return QuirksRepository(session).listing(device_profile)

    def as_json(self, device_profile: str | None = None) -> list[dict[str, Any]]:
        """``listing`` as JSON-ready rows (times in ISO 8601, UTC)."""
        return [
            {
                "device_profile": row.device_profile,
                "firmware": row.firmware or None,
                "quirk": row.quirk,
                "first_seen_at": row.first_seen_at.isoformat(),
                "last_seen_at": row.last_seen_at.isoformat(),
                "first_meter": row.first_meter,
                "sessions": row.sessions,
            }
            for row in self.listing(device_profile)
        ]
