"""A fleet of simulated meters: generated from a seed, saved to and loaded from a JSON file.

The same seed and options give the same fleet: meter ids, data seeds, profiles, addresses,
secrets and faults. Meters are laid out as a utility's network is: over the TCP wrapper one
port per meter (or several logical devices per port), over HDLC on TCP buses of meters behind
one port, on serial lines buses behind one pty. History starts at the utility's local
midnight ``history_days`` before the day the fleet was made, and is saved with it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from headend.domain.enums import AuthLevel, Transport
from headend.domain.obis import Obis
from headend.profiles import load_profile
from headend.simulator.faultspec import FaultRequest
from headend.simulator.spec import Fault, FaultKind, MeterSpec, Quirk

FLEET_FORMAT = 1
SINGLE_PHASE = "single_phase_residential"
THREE_PHASE = "three_phase_tou"
PROFILES = (SINGLE_PHASE, THREE_PHASE)
TRANSPORT_CHOICES = ("wrapper", "hdlc", "serial", "mixed")
AUTH_CHOICES = ("none", "lls", "hls_gmac", "mixed")
FIRST_PHYSICAL_ADDRESS = 17
DEFAULT_PTY_DIR = "/tmp/headend-simulator"


class FleetError(ValueError):
    """Options or a fleet file that do not make a fleet; the message says why."""


@dataclass(frozen=True)
class FleetOptions:
    meters: int
    seed: int = 1
    transport: str = "wrapper"
    auth: str = "none"
    faults: Sequence[FaultRequest] = ()
    base_port: int = 20000
    host: str = "127.0.0.1"
    per_port: int = 1  # logical devices behind one wrapper port
    bus_size: int = 4  # meters on one HDLC bus (TCP or serial)
    pty_dir: str = DEFAULT_PTY_DIR
    latency_s: float = 0.0
    baud_rate: int | None = None  # paces HDLC meters (bus and serial) at this speed
    history_days: int = 40
    timezone: str = "Asia/Ho_Chi_Minh"
    today: date | None = None  # the day the fleet is made; None: today in ``timezone``


def generate_fleet(options: FleetOptions) -> list[MeterSpec]:
    _check(options)
    rng = random.Random(options.seed)
    zone = ZoneInfo(options.timezone)
    today = options.today or datetime.now(zone).date()
    epoch = datetime.combine(today - timedelta(days=options.history_days), time(), zone)
    epoch = epoch.astimezone(UTC)
    kinds = _transport_plan(options.meters, options.transport)
    periods = {name: load_profile(name).load_profile.capture_period_s for name in PROFILES}
    specs: list[MeterSpec] = []
    port = options.base_port
    line = 0
    position = 0  # place on the current port or bus
    for index, kind in enumerate(kinds):
        group = {"wrapper": options.per_port}.get(kind, options.bus_size)
        if index and (kind != kinds[index - 1] or position >= group):
            if kinds[index - 1] == "serial":
                line += 1
            else:
                port += 1
            position = 0
        profile = THREE_PHASE if index % 5 == 4 else SINGLE_PHASE
        spec = MeterSpec(
            meter_id=f"SIM{options.seed % 1000:03d}{index + 1:06d}",
            seed=rng.getrandbits(32),
            profile=profile,
            transport=Transport.WRAPPER if kind == "wrapper" else Transport.HDLC,
            port=0 if kind == "serial" else port,
            host=options.host,
            serial_device=f"{options.pty_dir}/line-{line:04d}" if kind == "serial" else None,
            server_logical=(1 if options.per_port == 1 else 16 + position)
            if kind == "wrapper"
            else 1,
            server_physical=FIRST_PHYSICAL_ADDRESS + position,
            system_title=f"4d4d4d{index + 1:010x}",
            capture_period_s=periods[profile],
            history_days=options.history_days,
            shape="business" if profile == THREE_PHASE else "household",
            latency_s=options.latency_s,
            baud_rate=options.baud_rate if kind != "wrapper" else None,
            epoch=epoch,
        )
        specs.append(_with_auth(spec, _auth_of(options.auth, index), rng))
        position += 1
    return _with_faults(specs, options.faults, rng)


def _check(options: FleetOptions) -> None:
    if options.meters < 1:
        raise FleetError("a fleet has at least one meter")
    if options.transport not in TRANSPORT_CHOICES:
        raise FleetError(f"transport {options.transport!r}: use one of {TRANSPORT_CHOICES}")
    if options.auth not in AUTH_CHOICES:
        raise FleetError(f"auth {options.auth!r}: use one of {AUTH_CHOICES}")
    if not 1 <= options.per_port <= 1000 or not 1 <= options.bus_size <= 100:
        raise FleetError("per-port is 1..1000 logical devices, bus-size 1..100 meters")
    if not 1024 <= options.base_port <= 65535:
        raise FleetError("the base port is 1024..65535")
    wanted = sum(request.meters(options.meters) for request in options.faults)
    if wanted > options.meters:
        raise FleetError(f"the faults ask for {wanted} meters, the fleet has {options.meters}")


def _transport_plan(meters: int, transport: str) -> list[str]:
    if transport != "mixed":
        return [transport] * meters
    hdlc = round(meters * 0.3)
    serial = round(meters * 0.1)
    if meters >= 3:
        hdlc, serial = max(hdlc, 1), max(serial, 1)
    wrapper = max(0, meters - hdlc - serial)
    return ["wrapper"] * wrapper + ["hdlc"] * hdlc + ["serial"] * (meters - wrapper - hdlc)


def _auth_of(auth: str, index: int) -> AuthLevel:
    if auth == "mixed":
        return (AuthLevel.NONE, AuthLevel.LLS, AuthLevel.HLS_GMAC)[index % 3]
    return AuthLevel(auth)


def _with_auth(spec: MeterSpec, auth: AuthLevel, rng: random.Random) -> MeterSpec:
    if auth is AuthLevel.LLS:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        password = "".join(rng.choice(alphabet) for _ in range(8))
        return replace(spec, auth=auth, password=password)
    if auth is AuthLevel.HLS_GMAC:
        return replace(
            spec,
            auth=auth,
            encryption_key=f"{rng.getrandbits(128):032x}",
            authentication_key=f"{rng.getrandbits(128):032x}",
        )
    return replace(spec, auth=AuthLevel.NONE)


def _with_faults(
    specs: list[MeterSpec], requests: Sequence[FaultRequest], rng: random.Random
) -> list[MeterSpec]:
    free = list(range(len(specs)))
    rng.shuffle(free)
    for request in requests:
        for _ in range(request.meters(len(specs))):
            index = free.pop()
            spec = specs[index]
            if request.kind is FaultKind.WRONG_IC and spec.auth is not AuthLevel.HLS_GMAC:
                spec = _with_auth(spec, AuthLevel.HLS_GMAC, rng)
            specs[index] = replace(spec, faults=(*spec.faults, request.fault()))
    return specs


# -- the fleet file -----------------------------------------------------------------------


def spec_to_json(spec: MeterSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["transport"] = spec.transport.value
    data["auth"] = spec.auth.value
    data["faults"] = [{"kind": f.kind.value, "params": dict(f.params)} for f in spec.faults]
    data["quirks"] = [quirk.value for quirk in spec.quirks]
    data["missing_objects"] = list(spec.missing_objects)
    data["epoch"] = spec.epoch.isoformat() if spec.epoch else None
    return data


def spec_from_json(data: dict[str, Any]) -> MeterSpec:
    values = dict(data)
    try:
        values["transport"] = Transport(values["transport"])
        values["auth"] = AuthLevel(values.get("auth", "none"))
        values["faults"] = tuple(
            Fault(FaultKind(f["kind"]), {k: float(v) for k, v in f.get("params", {}).items()})
            for f in values.get("faults", ())
        )
        values["quirks"] = tuple(Quirk(q) for q in values.get("quirks", ()))
        values["missing_objects"] = tuple(
            str(Obis.parse(text)) for text in values.get("missing_objects", ())
        )
        if not isinstance(values.get("firmware", ""), str):
            raise ValueError(f"firmware {values['firmware']!r} is not a string")
        epoch = values.get("epoch")
        values["epoch"] = datetime.fromisoformat(epoch) if epoch else None
        return MeterSpec(**values)
    except (KeyError, TypeError, ValueError) as exc:
        meter = data.get("meter_id", "?")
        raise FleetError(f"meter {meter}: {exc}") from exc


def save_fleet(path: Path | str, specs: Sequence[MeterSpec], *, seed: int | None = None) -> None:
    document = {
        "format": FLEET_FORMAT,
        "seed": seed,
        "meters": [spec_to_json(spec) for spec in specs],
    }
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def load_fleet(path: Path | str) -> list[MeterSpec]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FleetError(f"{path}: cannot read a fleet file: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FLEET_FORMAT:
        raise FleetError(f"{path}: not a fleet file of format {FLEET_FORMAT}")
    meters = document.get("meters")
    if not isinstance(meters, list) or not meters:
        raise FleetError(f"{path}: the fleet has no meters")
    specs = [spec_from_json(item) for item in meters]
    ids = [spec.meter_id for spec in specs]
    if len(set(ids)) != len(ids):
        raise FleetError(f"{path}: meter ids repeat")
    return specs
