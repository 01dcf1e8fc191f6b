"""A small simulated fleet on loopback for the session tests, and the truth it serves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from headend.domain.enums import AuthLevel, Transport
from headend.domain.obis import Obis
from headend.profiles import load_profile
from headend.protocol.plan import ReadSpec
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts
from headend.services.collection.readspec import read_spec_from_profile
from headend.simulator.consumption import MeterData
from headend.simulator.devices import cosem_devices, link_parameters, meter_data
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import Fault, FaultKind, MeterSpec

PASSWORD = "lls-pass-1234"
EK = "000102030405060708090a0b0c0d0e0f"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
# a fixed meter time, 7.5 minutes past a quarter hour, so that a read never straddles an
# interval end and the truth at that instant is the truth of the whole session
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
NOW = NOW.replace(minute=(NOW.minute // 15) * 15) + timedelta(minutes=7, seconds=30)


def secrets(auth: AuthLevel) -> dict[str, object]:
    if auth is AuthLevel.LLS:
        return {"password": PASSWORD}
    if auth is AuthLevel.HLS_GMAC:
        return {"encryption_key": EK, "authentication_key": AK}
    return {}


def meter(
    meter_id: str,
    transport: Transport,
    port: int,
    auth: AuthLevel = AuthLevel.NONE,
    *,
    profile: str = "single_phase_residential",
    physical: int = 17,
    logical: int = 1,
    serial_device: str | None = None,
    faults: tuple[Fault, ...] = (),
    seed: int = 11,
    profiles: Path | None = None,
) -> MeterSpec:
    """A simulated meter of ``profile`` (from the folder ``profiles``, else the shipped one),
    capturing its load profile at the profile's period."""
    return MeterSpec(
        meter_id=meter_id,
        seed=seed,
        profile=profile,
        capture_period_s=load_profile(profile, profiles).load_profile.capture_period_s,
        transport=transport,
        port=port,
        serial_device=serial_device,
        server_physical=physical,
        server_logical=logical,
        auth=auth,
        faults=faults,
        **secrets(auth),  # type: ignore[arg-type]
    )


def target_for(spec: MeterSpec, address: str, *, timeout: float = 5.0, **kw: object) -> MeterTarget:
    host, _, port = address.rpartition(":")
    serial = spec.serial_device
    fields: dict[str, object] = {
        "meter_id": spec.meter_id,
        "transport": spec.transport,
        "host": None if serial else host,
        "port": None if serial else int(port),
        "serial_device": serial,
        "server_logical": spec.server_logical,
        "server_physical": spec.server_physical,
        "auth": spec.auth,
        "password": spec.password,
        "encryption_key": spec.encryption_key,
        "authentication_key": spec.authentication_key,
        "timeouts": Timeouts(connect=timeout, link=timeout, response=timeout, close=1.0),
    }
    fields.update(kw)
    return MeterTarget(**fields)  # type: ignore[arg-type]


@dataclass
class Fleet:
    sim: BackgroundSimulator
    specs: dict[str, MeterSpec]
    profiles: Path | None = None  # the folder of the meters' device profiles; None: shipped

    def target(self, meter_id: str, **kw: object) -> MeterTarget:
        spec = self.specs[meter_id]
        endpoint = self.sim.endpoint_of(meter_id)
        return target_for(spec, endpoint.address if endpoint.kind != "serial" else ":0", **kw)

    def read_spec(self, meter_id: str) -> ReadSpec:
        return read_spec_from_profile(load_profile(self.specs[meter_id].profile, self.profiles))

    def data(self, meter_id: str) -> MeterData:
        return meter_data(self.specs[meter_id], profiles=self.profiles)


@contextmanager
def serving(
    specs: list[MeterSpec], now: datetime | None = NOW, profiles: Path | None = None
) -> Iterator[Fleet]:
    """Serve ``specs`` on loopback, the meters built from the profiles of the folder
    ``profiles`` (None: the shipped ones)."""
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    devices = cosem_devices(now=clock, profiles=profiles)
    sim = BackgroundSimulator(Simulator(specs, devices, lambda s: link_parameters(s, profiles)))
    with sim:
        yield Fleet(sim, {s.meter_id: s for s in specs}, profiles)


def expected_register(profile_name: str, data: MeterData, obis: Obis, at: datetime) -> Decimal:
    """What a register shows at ``at``: the truth, truncated to the register's resolution."""
    obj = load_profile(profile_name).object_by_obis(obis)
    assert obj is not None and obj.scaler is not None
    if obj.quantity.value == "max_demand":
        value = data.max_demand(at)[0]
    else:
        value = data.registers(at)[obj.quantity.value]
    step = 10**obj.scaler
    return Decimal(value // step * step) if obj.scaler >= 0 else Decimal(value)


def quantity_of(profile_name: str, obis: Obis) -> str:
    obj = load_profile(profile_name).object_by_obis(obis)
    assert obj is not None
    return obj.quantity.value


def with_fault(spec: MeterSpec, kind: FaultKind, **params: float) -> MeterSpec:
    return replace(spec, faults=(Fault(kind, dict(params)),))
