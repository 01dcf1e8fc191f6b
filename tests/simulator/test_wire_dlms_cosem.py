"""dlms-cosem's own blocking client reads the simulator over every transport and security level.

Over the TCP wrapper it uses ``BlockingTcpIO`` as it is. Over HDLC its receive looks for the
next 0x7E flag, which hangs on a frame whose check sequence ends in that byte (and one in 256
does); the IO handed to it here reads frames by their length field and otherwise behaves as
dlms-cosem's own. Every value read is compared with what the meter's data model holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dlms_cosem import cosem, enumerations, utils
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.exceptions import CommunicationError
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, SerialIO, TcpTransport
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)
from dlms_cosem.time import datetime_from_bytes

from headend.domain.enums import AuthLevel
from headend.domain.obis import Obis
from headend.profiles import DeviationSemantics, DeviceProfile, ProfileSpec, load_profile
from headend.simulator.devices import cosem_devices, link_parameters, meter_data
from headend.simulator.fleet import FleetOptions, generate_fleet
from headend.simulator.hdlc import FrameReader
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.ports import free_ports

pytestmark = pytest.mark.timeout(60)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 20, 10, 7, 30, tzinfo=ZONE).astimezone(UTC)
CLIENT_TITLE = b"HEADEND1"
CLOCK = cosem.Obis(0, 0, 1, 0, 0)
Iface = enumerations.CosemInterface
CASES = [
    (transport, auth)
    for transport in ("wrapper", "hdlc", "serial")
    for auth in (AuthLevel.NONE, AuthLevel.LLS, AuthLevel.HLS_GMAC)
]


class ByLength:
    """Hands dlms-cosem's HDLC receive whole frames, cut by their length field.

    Its frame search stops at every 0x7E inside a frame and asks for more bytes; each such
    stop gets an empty read, so that the search goes on to the real closing flag.
    """

    def __init__(self, read: Callable[[], bytes]) -> None:
        self._read = read
        self._reader = FrameReader()
        self._ready: deque[bytes] = deque()
        self._inner_flags = 0

    def next_frame(self) -> bytes:
        if self._inner_flags:
            self._inner_flags -= 1
            return b""
        while not self._ready:
            chunk = self._read()
            if not chunk:
                raise CommunicationError("the meter closed the connection")
            self._ready.extend(self._reader.feed(chunk))
        frame = self._ready.popleft()
        self._inner_flags = frame[1:-1].count(0x7E)
        return frame


class FramedTcpIO:
    """dlms-cosem's ``BlockingTcpIO``, its HDLC frames read by length."""

    def __init__(self, host: str, port: int, timeout: int = 10) -> None:
        self.io = BlockingTcpIO(host, port, timeout)
        self._framed: ByLength | None = None

    def connect(self) -> None:
        self.io.connect()
        sock = self.io.tcp_socket
        self._framed = ByLength(lambda: bytes(sock.recv(4096)))

    def disconnect(self) -> None:
        self.io.disconnect()

    def send(self, data: bytes) -> None:
        self.io.send(data)

    def recv(self, amount: int = 1) -> bytes:
        return bytes(self.io.recv(amount))

    def recv_until(self, end: bytes) -> bytes:
        assert self._framed is not None
        return self._framed.next_frame()


class FramedSerialIO:
    """dlms-cosem's ``SerialIO`` (pyserial), its HDLC frames read by length."""

    def __init__(self, port_name: str, baud_rate: int = 9600, timeout: int = 10) -> None:
        self.io = SerialIO(port_name, baud_rate, timeout)
        self._framed: ByLength | None = None

    def connect(self) -> None:
        self.io.connect()
        port = self.io.serial_port
        self._framed = ByLength(lambda: bytes(port.read(max(1, port.in_waiting))))

    def disconnect(self) -> None:
        self.io.disconnect()

    def send(self, data: bytes) -> None:
        self.io.send(data)

    def recv(self, amount: int = 1) -> bytes:
        return bytes(self.io.recv(amount))

    def recv_until(self, end: bytes) -> bytes:
        assert self._framed is not None
        return self._framed.next_frame()


def nine_meters(pty_dir: str) -> list[MeterSpec]:
    """One meter per transport and security level, both device profiles among them."""
    base = free_ports(4)  # three wrapper ports, one HDLC bus
    specs: list[MeterSpec] = []
    for kind, port in (("wrapper", base), ("hdlc", base + 3), ("serial", 0)):
        options = FleetOptions(
            meters=3, seed=11, transport=kind, auth="mixed", base_port=port or base,
            bus_size=3, pty_dir=pty_dir, today=date(2026, 11, 20),
        )  # fmt: skip
        for index, spec in enumerate(generate_fleet(options)):
            profile = "three_phase_tou" if (index + len(specs)) % 2 else "single_phase_residential"
            period = load_profile(profile).load_profile.capture_period_s
            specs.append(
                replace(spec, profile=profile, capture_period_s=period, meter_id=f"W{index}{kind}")
            )
    return specs


def kind_of(spec: MeterSpec) -> str:
    return "serial" if spec.serial_device else spec.transport.value


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, AuthLevel], MeterSpec]]:
    pty_dir = str(tmp_path_factory.mktemp("ptys"))
    for attempt in range(3):  # another process may take a probed port before we bind it
        specs = nine_meters(pty_dir)
        background = BackgroundSimulator(
            Simulator(specs, cosem_devices(now=lambda: NOW), link_parameters)
        )
        try:
            background.__enter__()
            break
        except OSError:
            if attempt == 2:
                raise
    try:
        yield {(kind_of(spec), spec.auth): spec for spec in specs}
    finally:
        background.__exit__(None, None, None)


def client_for(kind: str, spec: MeterSpec) -> DlmsClient:
    io: Any
    if kind == "wrapper":
        transport: Any = TcpTransport(16, spec.server_logical, BlockingTcpIO(spec.host, spec.port))
    elif kind == "hdlc":
        io = FramedTcpIO(spec.host, spec.port)
        transport = HdlcTransport(16, spec.server_logical, io, spec.server_physical)
    else:
        assert spec.serial_device is not None
        io = FramedSerialIO(spec.serial_device, 9600)
        transport = HdlcTransport(16, spec.server_logical, io, spec.server_physical)
    if spec.auth is AuthLevel.LLS:
        assert spec.password is not None
        return DlmsClient(transport, LowLevelSecurityAuthentication(spec.password.encode()))
    if spec.auth is AuthLevel.HLS_GMAC:
        assert spec.encryption_key and spec.authentication_key
        return DlmsClient(
            transport,
            HighLevelSecurityGmacAuthentication(challenge_length=32),
            encryption_key=bytes.fromhex(spec.encryption_key),
            authentication_key=bytes.fromhex(spec.authentication_key),
            client_system_title=CLIENT_TITLE,
        )
    return DlmsClient(transport, NoSecurityAuthentication())


def read_time(raw: bytes, semantics: DeviationSemantics) -> datetime:
    moment: datetime = datetime_from_bytes(raw)[0]
    if moment.tzinfo is None or semantics is DeviationSemantics.UNSPECIFIED:
        return moment.replace(tzinfo=ZONE)
    return moment


def range_of(start: datetime, end: datetime, semantics: DeviationSemantics) -> RangeDescriptor:
    clock = CaptureObject(cosem.CosemAttribute(Iface.CLOCK, CLOCK, 2))
    if semantics is DeviationSemantics.UNSPECIFIED:
        start, end = (t.astimezone(ZONE).replace(tzinfo=None) for t in (start, end))
    else:
        start, end = start.astimezone(ZONE), end.astimezone(ZONE)
    return RangeDescriptor(restricting_object=clock, from_value=start, to_value=end)


@pytest.mark.parametrize(("kind", "auth"), CASES, ids=[f"{k}-{a.value}" for k, a in CASES])
def test_dlms_cosems_client_reads_clock_registers_and_profiles_equal_to_the_meters_data(
    fleet: dict[tuple[str, AuthLevel], MeterSpec], kind: str, auth: AuthLevel
) -> None:
    spec = fleet[(kind, auth)]
    profile = load_profile(spec.profile)
    semantics = profile.clock.deviation
    data = meter_data(spec)
    lp_start, lp_end = NOW - timedelta(hours=6), NOW
    bill_start, bill_end = NOW - timedelta(days=4), NOW

    with client_for(kind, spec).session() as client:
        clock_raw = utils.parse_as_dlms_data(
            client.get(cosem.CosemAttribute(Iface.CLOCK, CLOCK, 2))
        )
        registers = {}
        for obj in profile.objects:
            if obj.class_id == 3:
                attribute = cosem.CosemAttribute(
                    Iface.REGISTER, cosem.Obis(*obj.obis.to_bytes()), 2
                )
                value = utils.parse_as_dlms_data(client.get(attribute))
                scaler_unit = cosem.CosemAttribute(Iface.REGISTER, attribute.instance, 3)
                scaler, unit = utils.parse_as_dlms_data(client.get(scaler_unit))
                registers[obj.quantity.value] = (value, scaler, unit, obj)
        lp_obis = cosem.Obis(*profile.load_profile.obis.to_bytes())
        load = utils.parse_as_dlms_data(client.get(
            cosem.CosemAttribute(Iface.PROFILE_GENERIC, lp_obis, 2),
            access_descriptor=range_of(lp_start, lp_end, semantics),
        ))  # fmt: skip
        assert profile.billing_profile is not None
        bill_obis = cosem.Obis(*profile.billing_profile.obis.to_bytes())
        billing = utils.parse_as_dlms_data(client.get(
            cosem.CosemAttribute(Iface.PROFILE_GENERIC, bill_obis, 2),
            access_descriptor=range_of(bill_start, bill_end, semantics),
        ))  # fmt: skip

    assert read_time(clock_raw, semantics) == data.meter_time(NOW).replace(microsecond=0)

    expected_registers = data.registers(NOW)
    for quantity, (value, scaler, unit, obj) in registers.items():
        assert (scaler, unit) == (obj.scaler, obj.unit)
        assert Decimal(value).scaleb(scaler) == expected_registers[quantity], quantity

    expected_rows = [
        row for row in data.intervals(lp_start - timedelta(microseconds=1), lp_end, now=NOW)
        if lp_start <= row.end <= lp_end
    ]  # fmt: skip
    assert len(expected_rows) >= 12
    assert_rows(
        [named(row, profile, profile.load_profile, semantics) for row in load],
        [{"time": row.end, "status": row.status, **row.registers} for row in expected_rows],
    )

    expected_days = data.billing_rows(bill_start, bill_end, now=NOW)
    assert len(expected_days) >= 3
    assert profile.billing_profile is not None
    assert_rows(
        [named(row, profile, profile.billing_profile, semantics) for row in billing],
        [
            {
                "time": day.time, **day.registers,
                "max_demand": day.max_demand_w, "max_demand_time": day.max_demand_time,
            }
            for day in expected_days
        ],
    )  # fmt: skip


def assert_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Each row read equals the model's row in every column the buffer captures."""
    assert len(got) == len(expected)
    for read, truth in zip(got, expected, strict=True):
        assert {"time", "A+"} <= read.keys() <= truth.keys()
        assert read == {key: truth[key] for key in read}


CLOCK_OBIS = Obis(0, 0, 1, 0, 0)
STATUS_OBIS = Obis(0, 0, 96, 10, 1)


def named(
    row: list[Any], profile: DeviceProfile, buffer: ProfileSpec, semantics: DeviationSemantics
) -> dict[str, Any]:
    """A buffer row as quantity -> value in Wh (W, aware datetimes), by its capture objects."""
    out: dict[str, Any] = {}
    for value, capture in zip(row, buffer.capture_objects, strict=True):
        if capture.obis == CLOCK_OBIS:
            out["time"] = read_time(value, semantics)
        elif capture.obis == STATUS_OBIS:
            out["status"] = value
        else:
            obj = profile.object_by_obis(capture.obis)
            assert obj is not None and obj.scaler is not None
            if capture.attribute == 5:
                out[f"{obj.quantity.value}_time"] = read_time(value, semantics)
            else:
                out[obj.quantity.value] = value * 10**obj.scaler
    return out
