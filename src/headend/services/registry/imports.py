"""Importing and exporting the meter registry.

An import validates the whole file first; a file with any bad row changes nothing. A valid
file is applied in one transaction: new gateways, meters and secrets are added, changed ones
updated, identical ones left alone, so importing the same file twice is a no-op.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.registry_format import REGISTRY_COLUMNS
from headend.services.errors import Invalid
from headend.services.registry.rows import (
    OPTIONAL_COLUMNS,
    GatewayRecord,
    MeterRecord,
    ParsedRegistry,
    RowError,
    check_header,
    parse_registry,
)
from headend.services.validation.rollups import BEGINNING
from headend.store.models import Gateway, MeterSecret
from headend.store.repositories.registry import GATEWAY_FIELDS, METER_FIELDS, RegistryRepository
from headend.store.repositories.rollups import RollupRepository
from headend.store.secrets import MeterSecrets, SecretBox

Progress = Callable[[str, int, int], None]  # (phase, done, total)

_PROFILE = METER_FIELDS.index("device_profile")


class RegistryImportError(Invalid):
    """The file has bad rows; ``errors`` names each by line and field. Nothing was stored."""

    errors: list[RowError]  # type: ignore[assignment]

    def __init__(self, errors: list[RowError], source: str | None = None) -> None:
        lines = {e.line for e in errors if e.line}
        super().__init__(
            f"{len(errors)} problem(s) on {len(lines)} row(s); nothing was imported",
            errors=errors,
            source=source,
        )


@dataclass
class ImportSummary:
    rows: int = 0
    meters_added: int = 0
    meters_updated: int = 0
    meters_unchanged: int = 0
    gateways_added: int = 0
    gateways_updated: int = 0
    secrets_added: int = 0
    secrets_updated: int = 0
    changed_meter_ids: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


def _read_rows(text: TextIO) -> tuple[list[str] | None, list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(text)
    header = list(reader.fieldnames) if reader.fieldnames else None
    rows = []
    for values in reader:
        line = reader.line_num
        if None in values:  # more cells than columns
            extra = values.pop(None)
            values["__extra__"] = ";".join(str(v) for v in extra)
        rows.append((line, {k: v for k, v in values.items() if k is not None}))
    return header, rows


def _gateway_values(record: GatewayRecord) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in GATEWAY_FIELDS)


def _meter_values(record: MeterRecord, gateway_id: int, secret_id: int | None) -> dict[str, Any]:
    values = {name: getattr(record, name, None) for name in METER_FIELDS}
    values["gateway_id"] = gateway_id
    values["secret_id"] = secret_id
    return values


def import_registry(
    session_factory: sessionmaker[Session],
    source: Path | TextIO,
    box: SecretBox,
    known_profiles: frozenset[str],
    progress: Progress | None = None,
    audit: Callable[[Session, ImportSummary], None] | None = None,
) -> ImportSummary:
    """Check every row, then store the file in one transaction (``audit``, if given, writes
    its record in that transaction); refused with every problem listed and nothing stored."""
    name = str(source) if isinstance(source, Path) else None
    header, rows = _read_source(source)
    header_errors = check_header(header)
    if header_errors:
        raise RegistryImportError(header_errors, name)
    extra = [
        RowError(line, "row", "has more cells than the header has columns")
        for line, values in rows
        if "__extra__" in values
    ]
    summary = ImportSummary(rows=len(rows))
    with session_factory() as session, session.begin():
        repo = RegistryRepository(session)
        stored_gateways = {g.name: g for g in repo.gateways()}
        stored_records = {
            name: GatewayRecord(name, *(getattr(g, f) for f in GATEWAY_FIELDS))
            for name, g in stored_gateways.items()
        }
        stored_secrets = {s.name: s for s in repo.secrets()}
        parsed = parse_registry(rows, known_profiles, stored_records, frozenset(stored_secrets))
        errors = sorted(parsed.errors + extra)
        if errors:
            raise RegistryImportError(errors, name)
        if progress:
            progress("validated", len(rows), len(rows))
        gateway_ids = _store_gateways(repo, parsed, stored_gateways, stored_records, summary)
        secret_ids = _store_secrets(repo, parsed, stored_secrets, box, summary)
        _check_referenced_secrets(parsed.meters, parsed.secrets, stored_secrets, box, name)
        new_profile = _store_meters(repo, parsed, gateway_ids, secret_ids, summary, progress)
        # another profile may have another capture period: the rollups' time-of-use sums
        # (taken by interval start) are rebuilt
        RollupRepository(session).mark_stale(dict.fromkeys(new_profile, BEGINNING))
        if progress:
            progress("stored", len(rows), len(rows))
        if audit is not None:
            audit(session, summary)
    return summary


def _read_source(
    source: Path | TextIO,
) -> tuple[list[str] | None, list[tuple[int, dict[str, str]]]]:
    if not isinstance(source, Path):
        return _read_rows(source)
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            return _read_rows(handle)
    except UnicodeDecodeError as exc:
        raise RegistryImportError(
            [RowError(0, "file", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")],
            str(source),
        ) from exc


def _store_gateways(
    repo: RegistryRepository,
    parsed: ParsedRegistry,
    stored_gateways: dict[str, Gateway],
    stored_records: dict[str, GatewayRecord],
    summary: ImportSummary,
) -> dict[str, int]:
    """Add new gateways, update changed ones; the id of every gateway by name."""
    new_gateways, changed_gateways = [], []
    for name, gateway in parsed.gateways.items():
        values = dict(zip(GATEWAY_FIELDS, _gateway_values(gateway), strict=True))
        stored = stored_gateways.get(name)
        if stored is None:
            new_gateways.append({"name": name, **values})
        elif _gateway_values(stored_records[name]) != _gateway_values(gateway):
            changed_gateways.append({"id": stored.id, **values})
    repo.add_gateways(new_gateways)
    repo.update_gateways(changed_gateways)
    summary.gateways_added, summary.gateways_updated = len(new_gateways), len(changed_gateways)
    return {g.name: g.id for g in repo.gateways()}


def _store_secrets(
    repo: RegistryRepository,
    parsed: ParsedRegistry,
    stored_secrets: dict[str, MeterSecret],
    box: SecretBox,
    summary: ImportSummary,
) -> dict[str, int]:
    """Add new secrets, update changed ones (compared by content, since each seal uses a
    fresh nonce); the id of every secret by name."""
    new_secrets, changed_secrets = [], []
    for name, secrets in parsed.secrets.items():
        stored_secret = stored_secrets.get(name)
        if stored_secret is None:
            new_secrets.append({"name": name, "ciphertext": box.seal(name, secrets)})
        elif box.open(name, stored_secret.ciphertext) != secrets:
            changed_secrets.append({"id": stored_secret.id, "ciphertext": box.seal(name, secrets)})
    repo.add_secrets(new_secrets)
    repo.update_secrets(changed_secrets)
    summary.secrets_added, summary.secrets_updated = len(new_secrets), len(changed_secrets)
    return {s.name: s.id for s in repo.secrets()}


def _store_meters(
    repo: RegistryRepository,
    parsed: ParsedRegistry,
    gateway_ids: dict[str, int],
    secret_ids: dict[str, int],
    summary: ImportSummary,
    progress: Progress | None,
) -> list[int]:
    """Add new meters, update changed ones; the pks of those given another device profile."""
    stored_meters = repo.meter_rows()
    new_meters, changed_meters, new_profile = [], [], []
    for index, record in enumerate(parsed.meters, 1):
        secret_id = secret_ids[record.secret_ref] if record.secret_ref else None
        values = _meter_values(record, gateway_ids[record.gateway], secret_id)
        stored_meter = stored_meters.get(record.meter_id)
        if stored_meter is None:
            new_meters.append({"meter_id": record.meter_id, **values})
            summary.changed_meter_ids.append(record.meter_id)
        elif stored_meter[1] != tuple(values[name] for name in METER_FIELDS):
            changed_meters.append({"id": stored_meter[0], **values})
            summary.changed_meter_ids.append(record.meter_id)
            if stored_meter[1][_PROFILE] != values["device_profile"]:
                new_profile.append(stored_meter[0])
        if progress and index % 5000 == 0:
            progress("compared", index, len(parsed.meters))
    repo.add_meters(new_meters)
    repo.update_meters(changed_meters)
    summary.meters_added, summary.meters_updated = len(new_meters), len(changed_meters)
    summary.meters_unchanged = len(parsed.meters) - len(new_meters) - len(changed_meters)
    return new_profile


def _check_referenced_secrets(
    meters: list[MeterRecord],
    given: dict[str, MeterSecrets],
    stored: dict[str, Any],
    box: SecretBox,
    source: str | None = None,
) -> None:
    """A meter naming a stored secret must find in it what its authentication needs."""
    opened: dict[str, MeterSecrets] = {}
    errors = []
    for meter in meters:
        if meter.secret_ref is None or meter.secret_ref in given:
            continue
        secrets = opened.get(meter.secret_ref)
        if secrets is None:
            secrets = box.open(meter.secret_ref, stored[meter.secret_ref].ciphertext)
            opened[meter.secret_ref] = secrets
        if meter.auth == "lls" and not secrets.lls_password:
            errors.append(
                RowError(
                    meter.line, "secret_ref", f"secret {meter.secret_ref!r} holds no LLS password"
                )
            )
        if meter.auth == "hls_gmac" and not (
            secrets.hls_encryption_key and secrets.hls_authentication_key
        ):
            errors.append(
                RowError(meter.line, "secret_ref", f"secret {meter.secret_ref!r} holds no HLS keys")
            )
    if errors:
        raise RegistryImportError(errors, source)


def export_row(meter: Any, gateway: Any, secret_name: str | None) -> dict[str, str]:
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    return {
        "meter_id": meter.meter_id,
        "service_point": text(meter.service_point),
        "customer_ref": text(meter.customer_ref),
        "gateway": gateway.name,
        "gateway_kind": str(gateway.kind),
        "gateway_host": text(gateway.host),
        "gateway_port": text(gateway.port),
        "gateway_device": text(gateway.device),
        "gateway_baud_rate": text(gateway.baud_rate),
        "gateway_framing": text(gateway.framing),
        "gateway_max_sessions": text(gateway.max_sessions),
        "gateway_site": text(gateway.site),
        "transport": str(meter.transport),
        "client_sap": text(meter.client_sap),
        "server_logical": text(meter.server_logical),
        "server_physical": text(meter.server_physical),
        "auth": str(meter.auth),
        "secret_ref": text(secret_name),
        "lls_password": "",
        "hls_encryption_key": "",
        "hls_authentication_key": "",
        "device_profile": meter.device_profile,
        "ct_ratio": text(meter.ct_ratio.normalize()),
        "vt_ratio": text(meter.vt_ratio.normalize()),
        "install_date": text(meter.install_date),
        "removal_date": text(meter.removal_date),
        "status": str(meter.status),
        "tags": text(meter.tags),
        "extra_obis": text(meter.extra_obis),
    }


def export_registry(session_factory: sessionmaker[Session], out: TextIO) -> int:
    """Write every meter as a registry CSV row (secrets by reference only); return the count."""
    writer = csv.DictWriter(
        out, fieldnames=[*REGISTRY_COLUMNS, *OPTIONAL_COLUMNS], lineterminator="\n"
    )
    writer.writeheader()
    count = 0
    with session_factory() as session:
        for meter, gateway, secret_name in RegistryRepository(session).iter_meters_for_export():
            writer.writerow(export_row(meter, gateway, secret_name))
            count += 1
    return count


def registry_summary(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    with session_factory() as session:
        return RegistryRepository(session).counts()
