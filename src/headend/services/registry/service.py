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
from headend.services.collection.jobs import UnknownMeter
from headend.services.registry.imports import ImportSummary, export_row, import_registry
from headend.services.registry.rows import OPTIONAL_COLUMNS
from headend.store.models import Gateway, Meter
from headend.store.repositories.registry import RegistryRepository
from headend.store.secrets import SecretBox

SECRET_COLUMNS = ("lls_password", "hls_encryption_key", "hls_authentication_key")
COLUMNS = (*REGISTRY_COLUMNS, *OPTIONAL_COLUMNS)


def _public(row: dict[str, str]) -> dict[str, str]:
    """A registry row without the secret columns (secrets are never returned)."""
    return {k: v for k, v in row.items() if k not in SECRET_COLUMNS}


class RegistryService:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    @staticmethod
    def _rows(found: list[tuple[Meter, Gateway, str | None]]) -> list[dict[str, str]]:
        return [_public(export_row(m, g, s)) for m, g, s in found]

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

    def meter(self, meter_id: str) -> dict[str, str]:
        with self.session_factory() as session:
            rows = self._rows(RegistryRepository(session).listed_meter(meter_id))
        if not rows:
            raise UnknownMeter([meter_id])
        return rows[0]

    def put(
        self,
        meter_id: str,
        fields: Mapping[str, str | None],
        box: SecretBox,
        known_profiles: frozenset[str],
    ) -> ImportSummary:
        """Create or replace one meter from registry fields (as one CSV row would give them);
        refused with every problem listed (``RegistryImportError``) and nothing stored."""
        row = {name: "" for name in COLUMNS}
        row.update({k: "" if v is None else str(v) for k, v in fields.items()})
        row["meter_id"] = meter_id
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerow(row)
        text.seek(0)
        return import_registry(self.session_factory, text, box, known_profiles)

    def set_status(self, meter_id: str, status: MeterStatus) -> dict[str, str]:
        with self.session_factory() as session, session.begin():
            if not RegistryRepository(session).set_status(meter_id, status):
                raise UnknownMeter([meter_id])
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
                }
                for g in rows
            ]
