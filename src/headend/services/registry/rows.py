"""The meter registry CSV: its layout and the validation of every row, without any I/O.

One row per meter. Gateway columns describe the meter's gateway; meters that share a gateway
repeat its name (and either repeat its details identically or leave them empty). Secret columns
hold an LLS password or HLS keys; they are encrypted on import and never exported: an export
names the stored secret in ``secret_ref`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import TypeVar

from headend.domain.enums import AuthLevel, GatewayKind, MeterStatus, SerialFraming, Transport
from headend.domain.registry_format import REGISTRY_COLUMNS, SITE_NAME, parse_extra_objects
from headend.store.secrets import MeterSecrets

OPTIONAL_COLUMNS: tuple[str, ...] = ("extra_obis",)
# registry columns a file may leave out, read as empty: files written before they were added
# still import
LATER_COLUMNS: tuple[str, ...] = ("gateway_site",)
GATEWAY_DETAIL_COLUMNS = (
    "gateway_kind",
    "gateway_host",
    "gateway_port",
    "gateway_device",
    "gateway_baud_rate",
    "gateway_framing",
    "gateway_max_sessions",
    "gateway_site",
)
SECRET_COLUMNS = ("lls_password", "hls_encryption_key", "hls_authentication_key")
BAUD_RATES = frozenset({300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")
_SECRET_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_TAG = re.compile(r"^[A-Za-z0-9_.:\-]{1,32}$")
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, order=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "header"
        return f"{where}, {self.field}: {self.message}"


@dataclass(frozen=True)
class GatewayRecord:
    name: str
    kind: GatewayKind
    host: str | None = None
    port: int | None = None
    device: str | None = None
    baud_rate: int | None = None
    framing: SerialFraming | None = None
    max_sessions: int = 1
    site: str | None = None  # the collector site whose workers read it; None: no site


@dataclass(frozen=True)
class MeterRecord:
    line: int
    meter_id: str
    service_point: str | None
    customer_ref: str | None
    gateway: str
    transport: Transport
    client_sap: int
    server_logical: int
    server_physical: int | None
    auth: AuthLevel
    secret_ref: str | None  # the stored secret's name; None when auth is none
    secrets: MeterSecrets | None = field(repr=False)  # values given in this row, if any
    device_profile: str = ""
    extra_obis: str | None = None
    ct_ratio: Decimal = Decimal(1)
    vt_ratio: Decimal = Decimal(1)
    install_date: date | None = None
    removal_date: date | None = None
    status: MeterStatus = MeterStatus.ACTIVE
    tags: str | None = None


@dataclass
class ParsedRegistry:
    gateways: dict[str, GatewayRecord] = field(default_factory=dict)
    meters: list[MeterRecord] = field(default_factory=list)
    secrets: dict[str, MeterSecrets] = field(default_factory=dict, repr=False)
    errors: list[RowError] = field(default_factory=list)


class _Row:
    """One CSV row being validated; collects its errors instead of stopping at the first."""

    def __init__(self, line: int, values: Mapping[str, str], errors: list[RowError]) -> None:
        self.line = line
        self.values = values
        self.errors = errors

    def error(self, column: str, message: str) -> None:
        self.errors.append(RowError(self.line, column, message))

    def text(self, column: str) -> str | None:
        value = (self.values.get(column) or "").strip()
        return value or None

    def required(self, column: str) -> str | None:
        value = self.text(column)
        if value is None:
            self.error(column, "is required")
        return value

    def integer(self, column: str, low: int, high: int, default: int | None = None) -> int | None:
        raw = self.text(column)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.error(column, f"must be a whole number from {low} to {high}, got {raw!r}")
            return None
        if not low <= value <= high:
            self.error(column, f"must be from {low} to {high}, got {value}")
            return None
        return value

    def choice(self, column: str, enum_cls: type[E], default: E | None = None) -> E | None:
        raw = self.text(column)
        if raw is None:
            if default is None:
                self.error(column, f"is required; one of {_options(enum_cls)}")
            return default
        try:
            return enum_cls(raw.lower() if raw.lower() in _values(enum_cls) else raw)
        except ValueError:
            self.error(column, f"must be one of {_options(enum_cls)}, got {raw!r}")
            return None

    def decimal(self, column: str, default: Decimal) -> Decimal | None:
        raw = self.text(column)
        if raw is None:
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.error(column, f"must be a decimal number such as 200 or 0.5, got {raw!r}")
            return None
        if not value.is_finite() or value <= 0 or value >= Decimal(100_000_000):
            self.error(column, f"must be a positive number below 100000000, got {raw!r}")
            return None
        return value

    def day(self, column: str) -> date | None:
        raw = self.text(column)
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.error(column, f"must be a date as YYYY-MM-DD, got {raw!r}")
            return None


@cache
def _values(enum_cls: type[StrEnum]) -> frozenset[str]:
    return frozenset(m.value for m in enum_cls)


def _options(enum_cls: type[StrEnum]) -> str:
    return ", ".join(m.value for m in enum_cls)


def check_header(header: list[str] | None) -> list[RowError]:
    if not header:
        return [RowError(0, "header", "the file is empty; the first line must name the columns")]
    errors = []
    names = [h.strip() for h in header]
    missing = [c for c in REGISTRY_COLUMNS if c not in names and c not in LATER_COLUMNS]
    unknown = [c for c in names if c not in REGISTRY_COLUMNS and c not in OPTIONAL_COLUMNS]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if missing:
        errors.append(RowError(0, "header", f"missing columns: {', '.join(missing)}"))
    if unknown:
        errors.append(RowError(0, "header", f"unknown columns: {', '.join(unknown)}"))
    if duplicated:
        errors.append(RowError(0, "header", f"repeated columns: {', '.join(duplicated)}"))
    return errors


def _gateway(row: _Row, name: str) -> GatewayRecord | None:
    """The gateway described by a row, or None when the row only names it."""
    if all(row.text(c) is None for c in GATEWAY_DETAIL_COLUMNS):
        return None
    kind = row.choice("gateway_kind", GatewayKind)
    if kind is None:
        return None
    sessions = row.integer("gateway_max_sessions", 1, 10_000, default=1)
    site = _site(row)
    if kind is GatewayKind.SERIAL:
        device = row.required("gateway_device")
        baud = row.integer("gateway_baud_rate", 300, 115_200, default=9600)
        if baud is not None and baud not in BAUD_RATES:
            row.error("gateway_baud_rate", f"must be a standard rate ({sorted(BAUD_RATES)})")
        framing = row.choice("gateway_framing", SerialFraming, default=SerialFraming.F8N1)
        for column in ("gateway_host", "gateway_port"):
            if row.text(column) is not None:
                row.error(column, "applies to TCP gateways only; leave it empty for serial")
        if sessions is not None and sessions != 1:
            row.error("gateway_max_sessions", "a serial port carries one session at a time: 1")
        if device is None or baud is None or framing is None or sessions is None:
            return None
        return GatewayRecord(name, kind, device=device, baud_rate=baud, framing=framing, site=site)
    host = row.required("gateway_host")
    port = row.integer("gateway_port", 1, 65_535)
    if row.text("gateway_port") is None:
        row.error("gateway_port", "is required for a TCP gateway")
    for column in ("gateway_device", "gateway_baud_rate", "gateway_framing"):
        if row.text(column) is not None:
            row.error(column, "applies to serial gateways only; leave it empty for TCP")
    if kind is GatewayKind.TCP_SERIAL and sessions is not None and sessions != 1:
        row.error("gateway_max_sessions", "an RS485 bus carries one session at a time: 1")
    if host is None or port is None or sessions is None:
        return None
    return GatewayRecord(name, kind, host=host, port=port, max_sessions=sessions, site=site)


def _site(row: _Row) -> str | None:
    """The ``gateway_site`` column: empty for a gateway of no site. A bad name is reported
    and read as no site, so the gateway stays described and its meters' rows are not refused
    as well for naming an unknown gateway."""
    site = row.text("gateway_site")
    if site is not None and not SITE_NAME.match(site):
        row.error(
            "gateway_site",
            f"must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit "
            f"(the NAME of headend worker --site NAME), got {site!r}",
        )
        return None
    return site


def _secrets(row: _Row, auth: AuthLevel | None) -> MeterSecrets | None:
    password = row.text("lls_password")
    ekey, akey = row.text("hls_encryption_key"), row.text("hls_authentication_key")
    for column, value in (("hls_encryption_key", ekey), ("hls_authentication_key", akey)):
        if value is not None and not _HEX32.match(value):
            row.error(column, "must be 32 hexadecimal digits (a 16-byte AES key)")
    if password is not None and not 1 <= len(password.encode()) <= 32:
        row.error("lls_password", "must be 1 to 32 bytes long")
    if auth is AuthLevel.NONE:
        for column, value in (
            ("lls_password", password),
            ("hls_encryption_key", ekey),
            ("hls_authentication_key", akey),
        ):
            if value is not None:
                row.error(column, "is set but auth is none; remove it or set auth")
        return None
    if auth is AuthLevel.LLS and (ekey or akey):
        row.error("auth", "HLS keys are given but auth is lls; use hls_gmac or remove the keys")
    if auth is AuthLevel.HLS_GMAC and password is not None:
        row.error("lls_password", "is set but auth is hls_gmac; HLS-GMAC uses keys")
    if password is None and ekey is None and akey is None:
        return None
    if auth is AuthLevel.HLS_GMAC and (ekey is None) != (akey is None):
        missing = "hls_encryption_key" if ekey is None else "hls_authentication_key"
        row.error(missing, "HLS-GMAC needs both keys")
    return MeterSecrets(
        lls_password=password if auth is AuthLevel.LLS else None,
        hls_encryption_key=bytes.fromhex(ekey) if ekey and _HEX32.match(ekey) else None,
        hls_authentication_key=bytes.fromhex(akey) if akey and _HEX32.match(akey) else None,
    )


def _meter(row: _Row, known_profiles: frozenset[str]) -> MeterRecord | None:
    meter_id = row.required("meter_id")
    if meter_id is not None and not _ID.match(meter_id):
        row.error("meter_id", "must be 1-32 letters, digits, '.', '_' or '-'")
    gateway = row.required("gateway")
    if gateway is not None and not _ID.match(gateway):
        row.error("gateway", "must be 1-32 letters, digits, '.', '_' or '-'")
    transport = row.choice("transport", Transport)
    client_sap = row.integer("client_sap", 1, 127, default=16)
    server_logical = row.integer("server_logical", 0, 16_383, default=1)
    server_physical = row.integer("server_physical", 1, 16_383)
    if transport is Transport.HDLC and row.text("server_physical") is None:
        row.error("server_physical", "is required for HDLC (the meter's physical address)")
    if transport is Transport.WRAPPER and row.text("server_physical") is not None:
        row.error("server_physical", "applies to HDLC only; leave it empty for the wrapper")
    auth = row.choice("auth", AuthLevel, default=AuthLevel.NONE)
    secret_ref = row.text("secret_ref")
    if secret_ref is not None and not _SECRET_REF.match(secret_ref):
        row.error("secret_ref", "must be 1-64 letters, digits, ':', '.', '_' or '-'")
    secrets = _secrets(row, auth)
    if auth is AuthLevel.NONE and secret_ref is not None:
        row.error("secret_ref", "is set but auth is none")
    if auth not in (None, AuthLevel.NONE) and secrets is None and secret_ref is None:
        needed = "lls_password" if auth is AuthLevel.LLS else "hls_encryption_key"
        row.error(needed, f"auth {auth} needs a secret: give it here or name one in secret_ref")
    profile = row.required("device_profile")
    if profile is not None and profile not in known_profiles:
        row.error(
            "device_profile",
            f"unknown device profile {profile!r}; known: {', '.join(sorted(known_profiles))}",
        )
    extra = row.text("extra_obis")
    if extra is not None:
        try:
            parse_extra_objects(extra)
        except ValueError as exc:
            row.error("extra_obis", str(exc))
    ct_ratio = row.decimal("ct_ratio", Decimal(1))
    vt_ratio = row.decimal("vt_ratio", Decimal(1))
    installed, removed = row.day("install_date"), row.day("removal_date")
    if installed and removed and removed < installed:
        row.error("removal_date", f"{removed} is before the install date {installed}")
    status = row.choice("status", MeterStatus, default=MeterStatus.ACTIVE)
    tags = row.text("tags")
    if tags is not None:
        for tag in tags.split(";"):
            if not _TAG.match(tag):
                row.error("tags", f"tag {tag!r} must be 1-32 letters, digits, '.', '_', ':' or '-'")
    if (
        meter_id is None
        or gateway is None
        or transport is None
        or client_sap is None
        or server_logical is None
        or auth is None
        or profile is None
        or ct_ratio is None
        or vt_ratio is None
        or status is None
    ):
        return None
    if secret_ref is None and secrets is not None:
        secret_ref = f"meter:{meter_id}"
    return MeterRecord(
        line=row.line,
        meter_id=meter_id,
        service_point=row.text("service_point"),
        customer_ref=row.text("customer_ref"),
        gateway=gateway,
        transport=transport,
        client_sap=client_sap,
        server_logical=server_logical,
        server_physical=server_physical if transport is Transport.HDLC else None,
        auth=auth,
        secret_ref=secret_ref,
        secrets=secrets,
        device_profile=profile,
        extra_obis=extra,
        ct_ratio=ct_ratio,
        vt_ratio=vt_ratio,
        install_date=installed,
        removal_date=removed,
        status=status,
        tags=tags,
    )


def parse_registry(
    rows: Iterable[tuple[int, Mapping[str, str]]],
    known_profiles: frozenset[str],
    stored_gateways: Mapping[str, GatewayRecord],
    stored_secret_refs: frozenset[str],
) -> ParsedRegistry:
    """Validate every row and the rows together; ``errors`` lists every problem found."""
    result = ParsedRegistry()
    first_line: dict[str, int] = {}
    gateway_line: dict[str, int] = {}
    address_line: dict[tuple[str, int | None, int, int], int] = {}
    secret_line: dict[str, int] = {}
    for line, values in rows:
        row = _Row(line, values, result.errors)
        meter = _meter(row, known_profiles)
        name = row.text("gateway")
        described = _gateway(row, name) if name else None
        if name and described is not None:
            known = result.gateways.get(name)
            if known is None:
                result.gateways[name] = described
                gateway_line[name] = line
            elif known != described:
                row.error(
                    "gateway",
                    f"gateway {name!r} is described differently on line {gateway_line[name]}",
                )
        if meter is None:
            continue
        if meter.meter_id in first_line:
            row.error(
                "meter_id", f"{meter.meter_id} already appears on line {first_line[meter.meter_id]}"
            )
            continue
        first_line[meter.meter_id] = line
        address = (meter.gateway, meter.server_physical, meter.server_logical, meter.client_sap)
        if address in address_line:
            row.error(
                "server_logical" if meter.server_physical is None else "server_physical",
                f"gateway {meter.gateway} already has a meter at this address "
                f"(line {address_line[address]})",
            )
        address_line[address] = line
        if meter.secrets is not None and meter.secret_ref is not None:
            known_secret = result.secrets.get(meter.secret_ref)
            if known_secret is None:
                result.secrets[meter.secret_ref] = meter.secrets
                secret_line[meter.secret_ref] = line
            elif known_secret != meter.secrets:
                row.error(
                    "secret_ref",
                    f"secret {meter.secret_ref!r} is given different values on line "
                    f"{secret_line[meter.secret_ref]}",
                )
        result.meters.append(meter)
    for meter in result.meters:
        if meter.gateway not in result.gateways and meter.gateway not in stored_gateways:
            result.errors.append(
                RowError(
                    meter.line,
                    "gateway",
                    f"unknown gateway {meter.gateway!r}: describe it "
                    "with the gateway_* columns on one of its rows",
                )
            )
        gateway = result.gateways.get(meter.gateway) or stored_gateways.get(meter.gateway)
        if (
            gateway is not None
            and gateway.kind is not GatewayKind.TCP
            and meter.transport is not Transport.HDLC
        ):
            result.errors.append(
                RowError(
                    meter.line,
                    "transport",
                    f"gateway {meter.gateway} is {gateway.kind}: its meters speak HDLC",
                )
            )
        if (
            meter.secret_ref is not None
            and meter.secret_ref not in result.secrets
            and meter.secret_ref not in stored_secret_refs
        ):
            result.errors.append(
                RowError(meter.line, "secret_ref", f"no stored secret named {meter.secret_ref!r}")
            )
    result.errors.sort()
    return result
