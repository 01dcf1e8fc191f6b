"""``headend probe``: read one meter now, for a field technician; needs no store.

It reads the clock, the profile's registers and the load profile for a period, and prints a
table or JSON (``meter``, ``clock``, ``registers`` by OBIS, ``load_profile`` rows). The device
profile only says what to try: the load profile is read with the capture objects and capture
period the meter has, and where these differ from the profile the output says so
(``profile_differences``); an object the meter lacks is listed as unavailable. Exit status 0
when the session succeeded, whatever the meter lacked; otherwise one line naming the failure
category (``internal`` for a bug of ours, its traceback in the log on stderr).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
import typer

from headend.cli.meter_options import (
    Auth,
    AuthenticationKey,
    ClientAddress,
    EncryptionKey,
    InvocationCounter,
    MaxPdu,
    Password,
    Port,
    ServerAddress,
    SystemTitle,
    Timeout,
    meter_target,
)
from headend.cli.output import emit_json
from headend.config import load_settings
from headend.domain.enums import AuthLevel, SerialFraming, Transport
from headend.domain.quality import Flag
from headend.domain.readings import MeterRead
from headend.logs import configure_logging
from headend.profiles import ProfileError, load_profile
from headend.protocol.collect import Collection, collect
from headend.protocol.definitions import LOAD_PROFILE, differences
from headend.protocol.errors import ProtocolError
from headend.protocol.plan import ReadSpec
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget
from headend.services.collection.readspec import proposed_by, read_spec_from_profile

log = structlog.get_logger(__name__)
NUMERIC_CLASSES = (3, 4, 5)  # register, extended register, demand register: a channel


def _number(value: Decimal) -> str:
    """A Decimal as the API writes one: a decimal string, exact and never in exponent form
    (``"236908494"``, ``"236.908494"``), not a JSON number a float would round."""
    return format(value, "f")


def _iso(at: datetime) -> str:
    return at.isoformat()


def _flags(flags: Flag) -> list[str]:
    return [f.name.lower() for f in Flag if f and f in flags and f.name]


def read_to_json(read: MeterRead, meta: dict[str, Any], spec: ReadSpec) -> dict[str, Any]:
    registers: dict[str, Any] = {}
    for obj in spec.registers:
        key = str(obj.obis)
        if obj.obis in read.registers:
            reg = read.registers[obj.obis]
            entry: dict[str, Any] = {"value": _number(reg.value), "unit": reg.unit}
            if reg.captured_at is not None:
                entry["captured_at"] = _iso(reg.captured_at)
            registers[key] = entry
        elif obj.obis in read.data:
            registers[key] = {"value": read.data[obj.obis].value, "unit": None}
        elif obj.obis in read.unavailable:
            missing = read.unavailable[obj.obis]
            registers[key] = {
                "value": None,
                "unit": None,
                "unavailable": missing.reason,
                "detail": missing.detail,
            }
    clock = None
    if read.clock is not None:
        c = read.clock
        clock = {
            "time": _iso(c.meter_time),
            "system_time": _iso(c.system_time),
            "drift_s": round(c.drift_s, 3),
            "deviation_min": c.deviation_min,
            "offset_assumed": c.offset_assumed,
            "status": c.status.bits,
        }
    rows = []
    if read.load_profile is not None:
        for row in read.load_profile.rows:
            rows.append(
                {
                    "interval_end": _iso(row.interval_end),
                    "status": row.status,
                    "flags": _flags(row.flags),
                    "values": {str(k): _number(v) for k, v in row.values.items()},
                }
            )
    out: dict[str, Any] = {
        "meter": {"serial_number": read.serial_number, "firmware": read.firmware, **meta},
        "clock": clock,
        "registers": registers,
        "load_profile": rows,
    }
    lp = spec.load_profile
    differs: list[str] = []
    if read.load_profile is not None:
        got = read.load_profile
        out["meter"]["capture_period_s"] = got.capture_period_s
        out["meter"]["load_profile_access"] = got.access
        out["meter"]["load_profile_columns"] = [
            {"obis": str(c.obis), "class_id": c.class_id, "attribute": c.attribute, "unit": c.unit}
            for c in got.columns
        ]
        if lp is not None:
            differs = differences(LOAD_PROFILE, spec.model, lp, got.columns, got.capture_period_s)
    out["meter"]["profile_differences"] = differs
    if lp is not None and lp.obis in read.unavailable:
        out["meter"]["load_profile_unavailable"] = read.unavailable[lp.obis].reason
    out["meter"]["quirks_learned"] = list(read.learned)
    return out


def _table(doc: dict[str, Any]) -> str:
    lines = [f"meter      {doc['meter'].get('serial_number')}  ({doc['meter'].get('profile')})"]
    if doc["meter"].get("firmware"):
        lines.append(f"firmware   {doc['meter']['firmware']}")
    if doc["clock"]:
        c = doc["clock"]
        lines.append(
            f"clock      {c['time']}  drift {c['drift_s']:+.1f}s  status 0x{c['status']:02x}"
        )
    lines.append("registers")
    for obis, reg in doc["registers"].items():
        shown = reg.get("unavailable") and f"unavailable ({reg['unavailable']})"
        lines.append(f"  {obis:<16} {shown or reg['value']} {reg.get('unit') or ''}".rstrip())
    if doc["meter"].get("quirks_learned"):
        lines.append(f"quirks     {', '.join(doc['meter']['quirks_learned'])}")
    for line in doc["meter"].get("profile_differences", ()):
        lines.append(f"differs    {line}")
    columns = doc["meter"].get("load_profile_columns")
    if columns is not None:
        channels = ", ".join(
            f"{c['obis']} {c['unit']}" if c["unit"] else c["obis"]
            for c in columns
            if c["class_id"] in NUMERIC_CLASSES and c["attribute"] == 2
        )
        period = doc["meter"]["capture_period_s"]
        lines.append(f"load profile every {period} s, channels: {channels}")
    elif doc["meter"].get("load_profile_unavailable"):
        lines.append(f"load profile unavailable ({doc['meter']['load_profile_unavailable']})")
    lines.append(f"load profile: {len(doc['load_profile'])} rows")
    for row in doc["load_profile"]:
        values = "  ".join(f"{k}={v}" for k, v in row["values"].items())
        lines.append(f"  {row['interval_end']}  status {row['status']}  {values}")
    return "\n".join(lines)


async def run_probe(
    target: MeterTarget, spec: ReadSpec, start: datetime, end: datetime, first_counter: int = 1
) -> MeterRead:
    counters = MemoryCounterStore(first=first_counter)
    async with MeterSession(target, counters=counters, release=spec.supports_release) as session:
        what = Collection(start=start, end=end, as_the_meter_defines=True)
        return await collect(session, spec, what, DefinitionCache())


def _parse_time(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    """Add the ``probe`` command to ``app``."""

    @app.command()
    def probe(
        host: str = typer.Option("127.0.0.1", "--host", help="Meter, modem or converter host."),
        port: Port = 4059,
        transport: Transport = typer.Option(Transport.WRAPPER, "--transport"),
        serial_port: str | None = typer.Option(
            None, "--serial-port", help="Local serial device (HDLC)."
        ),
        baud: int = typer.Option(9600, "--baud"),
        framing: SerialFraming = typer.Option(SerialFraming.F8N1, "--framing"),
        client_address: ClientAddress = 16,
        server_address: ServerAddress = 1,
        physical_address: int | None = typer.Option(
            17, "--physical-address", help="HDLC physical address."
        ),
        auth: Auth = AuthLevel.NONE,
        password: Password = None,
        encryption_key: EncryptionKey = None,
        authentication_key: AuthenticationKey = None,
        invocation_counter: InvocationCounter = 1,
        system_title: SystemTitle = "4845414445000001",
        profile: str = typer.Option("single_phase_residential", "--profile"),
        start: str | None = typer.Option(None, "--from", help="ISO 8601; default a day ago."),
        end: str | None = typer.Option(None, "--to", help="ISO 8601; default now."),
        max_pdu: MaxPdu = 1024,
        timeout: Timeout = 10.0,
        budget: float = typer.Option(
            600.0, "--budget", min=1.0, help="Seconds the whole session may take at most."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Read clock, registers and load profile from one meter and print them."""
        folder = load_settings().profiles_dir  # a bad setting stops here, named (exit 2)
        try:
            device = load_profile(profile, folder)
            spec = read_spec_from_profile(device)
            now = datetime.now(UTC)
            t_end = _parse_time(end, now)
            t_start = _parse_time(start, t_end - timedelta(days=1))
            target = meter_target(
                host=host,
                port=port,
                transport=transport,
                physical_address=physical_address,
                client_address=client_address,
                server_address=server_address,
                auth=auth,
                password=password,
                encryption_key=encryption_key,
                authentication_key=authentication_key,
                system_title=system_title,
                max_pdu=max_pdu,
                timeout=timeout,
                budget=budget,
                serial_device=serial_port,
                baud_rate=baud,
                framing=framing,
            )
            target = proposed_by(target, device.quirks)  # as collection proposes
            read = asyncio.run(run_probe(target, spec, t_start, t_end, invocation_counter))
        except ProtocolError as exc:
            typer.echo(f"headend probe: {exc.one_line()}", err=True)
            raise typer.Exit(1) from None
        except (ProfileError, ValueError) as exc:
            typer.echo(f"headend probe: configuration: {' '.join(str(exc).split())}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:  # a bug of ours: one line here, the traceback in the log
            if not structlog.is_configured():
                configure_logging()  # the traceback goes to stderr, never to stdout
            log.exception("probe failed on an internal error")
            typer.echo(f"headend probe: internal: {' '.join(repr(exc).split())}", err=True)
            raise typer.Exit(1) from None
        meta = {
            "host": serial_port or host,
            "port": None if serial_port else port,
            "transport": "hdlc" if serial_port else transport.value,
            "server_address": server_address,
            "physical_address": physical_address,
            "auth": auth.value,
            "profile": device.name,
            "from": _iso(t_start),
            "to": _iso(t_end),
        }
        doc = read_to_json(read, meta, spec)
        if as_json:
            emit_json(doc, indent=2, ensure_ascii=False)
        else:
            typer.echo(_table(doc))
