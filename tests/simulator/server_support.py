"""Helpers for the COSEM server tests: a meter, and dlms-cosem's own client pumped in memory.

dlms-cosem's ``DlmsClient`` runs over a transport that hands each request APDU to an
``AssociationSession`` and returns its answer, so every test exercises the client's codecs and
state machine against the server's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dlms_cosem import cosem as dlms_cosem_objects
from dlms_cosem import enumerations
from dlms_cosem.client import DlmsClient
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)

from headend.domain.enums import AuthLevel, Transport
from headend.domain.obis import Obis
from headend.profiles import DeviceProfile, load_profile
from headend.simulator import cosem
from headend.simulator.consumption import MeterData
from headend.simulator.server import AssociationSession, LogicalDevice
from headend.simulator.spec import Fault, FaultKind, MeterSpec

NOW = datetime(2026, 11, 27, 10, 7, 30, tzinfo=UTC)
EK = "000102030405060708090a0b0c0d0e0f"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
PASSWORD = "12345678"
CLIENT_TITLE = b"HEA\x00\x00\x00\x00\x01"


def make_spec(
    profile: str = "single_phase_residential",
    auth: AuthLevel = AuthLevel.NONE,
    faults: tuple[Fault, ...] = (),
    **changes: Any,
) -> MeterSpec:
    capture = 1800 if profile == "three_phase_tou" else 900
    spec = MeterSpec(
        meter_id="SIM00000042",
        seed=42,
        profile=profile,
        transport=Transport.WRAPPER,
        port=4059,
        auth=auth,
        password=PASSWORD if auth is AuthLevel.LLS else None,
        encryption_key=EK if auth is AuthLevel.HLS_GMAC else None,
        authentication_key=AK if auth is AuthLevel.HLS_GMAC else None,
        capture_period_s=capture,
        history_days=10,
        faults=faults,
        epoch=datetime(2026, 11, 17, tzinfo=UTC),  # history_days before NOW
    )
    return replace(spec, **changes)


@dataclass
class Meter:
    spec: MeterSpec
    profile: DeviceProfile
    data: MeterData
    device: LogicalDevice
    clock: list[datetime] = field(default_factory=lambda: [NOW])

    def now(self) -> datetime:
        return self.clock[0]


def make_meter(spec: MeterSpec | None = None) -> Meter:
    spec = spec or make_spec()
    profile = load_profile(spec.profile)
    data = MeterData(spec, resolution_wh=profile.register_resolution_wh)
    holder: list[datetime] = [NOW]
    device = LogicalDevice(spec, data, profile, lambda: holder[0])
    return Meter(spec, profile, data, device, holder)


class SessionTransport:
    """A dlms-cosem transport whose far end is an ``AssociationSession`` in memory."""

    def __init__(self, session: AssociationSession) -> None:
        self.session = session
        self.client_logical_address = 16
        self.server_logical_address = 1
        self.timeout = 1
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def send_request(self, bytes_to_send: bytes) -> bytes:
        self.sent.append(bytes_to_send)
        answer = self.session.handle(bytes_to_send)
        if answer is None:
            raise TimeoutError("the meter did not answer")
        self.received.append(answer)
        return answer


def make_client(
    meter: Meter,
    auth: AuthLevel | None = None,
    *,
    password: str | None = None,
    encryption_key: str | None = None,
    authentication_key: str | None = None,
    max_pdu_size: int = 65535,
    client_invocation_counter: int = 1,
    session: AssociationSession | None = None,
) -> tuple[DlmsClient, SessionTransport]:
    auth = auth or meter.spec.auth
    transport = SessionTransport(session or meter.device.new_association())
    authentication: Any
    ek = ak = None
    if auth is AuthLevel.LLS:
        authentication = LowLevelSecurityAuthentication(
            (password if password is not None else PASSWORD).encode()
        )
    elif auth is AuthLevel.HLS_GMAC:
        authentication = HighLevelSecurityGmacAuthentication(challenge_length=16)
        ek = bytes.fromhex(encryption_key or EK)
        ak = bytes.fromhex(authentication_key or AK)
    else:
        authentication = NoSecurityAuthentication()
    client = DlmsClient(
        transport=transport,
        authentication=authentication,
        encryption_key=ek,
        authentication_key=ak,
        client_system_title=CLIENT_TITLE,
        max_pdu_size=max_pdu_size,
        client_initial_invocation_counter=client_invocation_counter,
    )
    return client, transport


def attribute(class_id: int, obis: str, index: int) -> Any:
    return dlms_cosem_objects.CosemAttribute(
        interface=enumerations.CosemInterface(class_id),
        instance=dlms_cosem_objects.Obis.from_bytes(Obis.parse(obis).to_bytes()),
        attribute=index,
    )


def method(class_id: int, obis: str, index: int) -> Any:
    return dlms_cosem_objects.CosemMethod(
        interface=enumerations.CosemInterface(class_id),
        instance=dlms_cosem_objects.Obis.from_bytes(Obis.parse(obis).to_bytes()),
        method=index,
    )


def value(data: bytes) -> cosem.Value:
    decoded, end = cosem.decode(data)
    assert end == len(data)
    return decoded


def scaled(decoded: cosem.Value, scaler: int) -> int:
    """A register's raw value back in Wh."""
    return int(decoded.as_int() * 10**scaler)


def drift(seconds: float) -> Fault:
    return Fault(FaultKind.CLOCK_DRIFT, {"seconds": seconds})
