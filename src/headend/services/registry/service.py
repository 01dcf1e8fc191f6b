"""The meter registry one meter at a time, as the API edits it.

A meter is described by the same fields as a row of the registry CSV, and a change goes
through the same checks as an import: one rule for what a valid meter is, wherever it
comes from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import MeterStatus
from headend.domain.registry_format import REGISTRY_COLUMNS
from headend.services.access import audit
from headend.services.access.audit import Actor
from headend.services.clock import Clock, utcnow
from headend.services.errors import UnknownMeter
from headend.services.registry.imports import ImportSummary, export_row, import_registry
from headend.services.registry.rows import OPTIONAL_COLUMNS
from headend.store.models import Gateway, Meter
from headend.store.repositories.registry import RegistryRepository
from headend.store.secrets import SecretBox

SECRET_COLUMNS = ("lls_password", "hls_encryption_key", "hls_authentication_key")
COLUMNS = (*REGISTRY_COLUMNS, *OPTIONAL_COLUMNS)
# shown with a meter, not part of the registry CSV: the firmware its last read reported
READ_ONLY = ("firmware",)


def _public(row: dict[str, str]) -> dict[str, str]:
    """A registry row without the secret columns (secrets are never returned)."""
    return {k: v for k, v in row.items() if k not in SECRET_COLUMNS}


class RegistryService:
    """``box`` and ``known_profiles`` are what ``put`` checks and encrypts a meter with."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        box: SecretBox | None = None,
        known_profiles: frozenset[str] = frozenset(),
        clock: Clock = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.box = box
        self.known_profiles = known_profiles
        self.clock = clock

    @staticmethod
    def _rows(found: list[tuple[Meter, Gateway, str | None]]) -> list[dict[str, str]]:
        return [{**_public(export_row(m, g, s)), "firmware": m.firmware or ""} for m, g, s in found]

    def meters(
        self,
        *,
        after: str | None = None,
        limit: int = 500,
        gateway: str | None = None,
        device_profile: str | None = None,
        status: MeterStatus | None = None,
    ) -> list[dict[str, str]]:
        """Meters ordered by id, from after ``after`` (a cursor), at most ``limit``."""
        with self.session_factory() as session:
            repo = RegistryRepository(session)
            return self._rows(repo.listed_meters(after, limit, gateway, device_profile, status))

    def find(self, meter_id: str) -> dict[str, str] | None:
        """One meter's registry entry, or None when there is no such meter."""
        with self.session_factory() as session:
            rows = self._rows(RegistryRepository(session).listed_meter(meter_id))
        return rows[0] if rows else None

    def meter(self, meter_id: str) -> dict[str, str]:
        found = self.find(meter_id)
        if found is None:
            raise UnknownMeter([meter_id])
        return found

    def put(
        self,
        meter_id: str,
        fields: Mapping[str, str | None],
        *,
        actor: Actor,
    ) -> ImportSummary:
        """Create or replace one meter from registry fields (as one CSV row would give them);
        refused with every problem listed (``RegistryImportError``) and nothing stored. A
        read-only field (``READ_ONLY``: what the meter reported) is not written.
        Audited as ``meter.put`` (secrets shown as ``***``)."""
        if self.box is None:
            raise ValueError("RegistryService.put needs the SecretBox it was built without")
        box = self.box
        row = {name: "" for name in COLUMNS}
        row.update(
            {k: "" if v is None else str(v) for k, v in fields.items() if k not in READ_ONLY}
        )
        row["meter_id"] = meter_id
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerow(row)
        text.seek(0)

        def audited(session: Session, summary: ImportSummary) -> None:
            shown = {k: ("***" if k in SECRET_COLUMNS and v else v) for k, v in fields.items()}
            detail = {"fields": shown, **summary.as_dict()}
            audit.write(session, self.clock(), actor, "meter.put", f"meter:{meter_id}", detail)

        return import_registry(self.session_factory, text, box, self.known_profiles, audit=audited)

    def set_status(
        self,
        meter_id: str,
        status: MeterStatus,
        *,
        actor: Actor,
    ) -> dict[str, str]:
        """Change a meter's status; audited as ``meter.deactivate`` for a deactivation,
        ``meter.status`` otherwise."""
        with self.session_factory() as session, session.begin():
            if not RegistryRepository(session).set_status(meter_id, status):
                raise UnknownMeter([meter_id])
            action = "meter.deactivate" if status is MeterStatus.INACTIVE else "meter.status"
            audit.write(session, self.clock(), actor, action, f"meter:{meter_id}")
        return self.meter(meter_id)

    def gateways(self) -> list[dict[str, Any]]:
        with self.session_factory() as session:
            rows = RegistryRepository(session).gateways_by_name()
            return [
                {
                    "name": g.name,
                    "kind": str(g.kind),
                    "host": g.host,
                    "port": g.port,
                    "device": g.device,
                    "max_sessions": g.max_sessions,
                    "site": g.site,
                }
                for g in rows
            ]
