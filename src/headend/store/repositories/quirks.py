"""Statements over learned quirks: what sessions found about a device profile and firmware."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from headend.store.base import table_of
from headend.store.models import LearnedQuirk, Meter


@dataclass(frozen=True, slots=True)
class LearnedQuirkRow:
    device_profile: str
    firmware: str  # empty: not known
    quirk: str
    first_seen_at: datetime
    last_seen_at: datetime
    first_meter: str  # the registry id of the meter it was first found on
    sessions: int  # sessions that found it


class QuirksRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self, device_profile: str, firmware: str, quirks: Iterable[str], meter_pk: int, at: datetime
    ) -> None:
        """Each of ``quirks`` found on meter ``meter_pk`` at ``at``: a new row, or the known
        row seen once more (last seen, sessions). Safe against a concurrent first finding."""
        for quirk in sorted(set(quirks)):
            if self._seen_again(device_profile, firmware, quirk, at):
                continue
            values = {
                "device_profile": device_profile,
                "firmware": firmware,
                "quirk": quirk,
                "first_seen_at": at,
                "last_seen_at": at,
                "first_meter_id": meter_pk,
                "sessions": 1,
            }
            dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = self.session.execute(
                dialect.insert(table_of(LearnedQuirk))
                .values(values)
                .on_conflict_do_nothing(index_elements=["device_profile", "firmware", "quirk"])
            )
            if not getattr(inserted, "rowcount", 1):  # another session inserted it first
                self._seen_again(device_profile, firmware, quirk, at)

    def _seen_again(self, device_profile: str, firmware: str, quirk: str, at: datetime) -> bool:
        done = self.session.execute(
            update(LearnedQuirk)
            .where(
                LearnedQuirk.device_profile == device_profile,
                LearnedQuirk.firmware == firmware,
                LearnedQuirk.quirk == quirk,
            )
            .values(sessions=LearnedQuirk.sessions + 1, last_seen_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(done, "rowcount", 0))

    def known(self, models: Iterable[tuple[str, str]]) -> dict[tuple[str, str], frozenset[str]]:
        """The quirks known of each (device profile, firmware) asked for (empty if none); for
        a firmware not known (empty), those of every firmware of the profile."""
        wanted = set(models)
        found: dict[tuple[str, str], set[str]] = {key: set() for key in wanted}
        profiles = sorted({profile for profile, _ in wanted})
        if profiles:
            rows = self.session.execute(
                select(
                    LearnedQuirk.device_profile, LearnedQuirk.firmware, LearnedQuirk.quirk
                ).where(LearnedQuirk.device_profile.in_(profiles))
            )
            for profile, firmware, quirk in rows:
                for key in ((profile, firmware), (profile, "")):
                    if key in found:
                        found[key].add(quirk)
        return {key: frozenset(quirks) for key, quirks in found.items()}

    def listing(self, device_profile: str | None = None) -> list[LearnedQuirkRow]:
        """Every learned quirk (of one device profile), by profile, firmware and quirk."""
        stmt = (
            select(LearnedQuirk, Meter.meter_id)
            .join(Meter, LearnedQuirk.first_meter_id == Meter.id)
            .order_by(LearnedQuirk.device_profile, LearnedQuirk.firmware, LearnedQuirk.quirk)
        )
        if device_profile is not None:
            stmt = stmt.where(LearnedQuirk.device_profile == device_profile)
        return [
            LearnedQuirkRow(
                row.device_profile,
                row.firmware,
                row.quirk,
                row.first_seen_at,
                row.last_seen_at,
                meter_id,
                row.sessions,
            )
            for row, meter_id in self.session.execute(stmt)
        ]

    def device_profile_of(self, meter_pk: int) -> str | None:
        return self.session.scalar(select(Meter.device_profile).where(Meter.id == meter_pk))
