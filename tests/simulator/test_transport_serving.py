"""The simulator's listeners and pty lines, driven over real sockets and a real pty."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import serial  # pyserial
from dlms_cosem.hdlc import address, frames

from headend.domain.enums import Transport
from headend.simulator.hdlc import Control, Frame, FrameReader, Kind, ServerAddress
from headend.simulator.serve import BackgroundSimulator, Simulator, describe
from headend.simulator.spec import MeterSpec
from headend.simulator.wrapper import WrapperPdu, WrapperReader
from tests.ports import free_port, free_ports
from tests.simulator.transport_support import (
    FakeDevices,
    read_frames,
    read_wrapped,
    wrap,
)

pytestmark = pytest.mark.timeout(30)
CLIENT = address.HdlcAddress(16, None, "client")


def meter(n: int, transport: Transport, port: int, **kw: Any) -> MeterSpec:
    return MeterSpec(
        meter_id=f"M{n}",
        seed=n,
        profile="single_phase_residential",
        transport=transport,
        port=port,
        **kw,
    )


@pytest.fixture
def devices() -> FakeDevices:
    return FakeDevices()


def serving(specs: list[MeterSpec], devices: FakeDevices) -> BackgroundSimulator:
    return BackgroundSimulator(Simulator(specs, devices))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def test_the_wrapper_codec_pins_one_byte_string_both_ways() -> None:
    raw = bytes.fromhex("0001001000010003c00102")
    assert WrapperPdu(16, 1, b"\xc0\x01\x02").to_bytes() == raw
    assert WrapperPdu.from_bytes(raw) == WrapperPdu(16, 1, b"\xc0\x01\x02")


def test_the_wrapper_reader_waits_for_the_whole_apdu_whatever_the_tcp_segments() -> None:
    reader = WrapperReader()
    data = wrap(b"abc") + wrap(b"defg", destination=17)
    assert [p for i in range(len(data)) for p in reader.feed(data[i : i + 1])] == [
        WrapperPdu(16, 1, b"abc"),
        WrapperPdu(16, 17, b"defg"),
    ]


def test_a_meter_on_its_own_wrapper_port_answers_with_the_wports_swapped(
    devices: FakeDevices,
) -> None:
    port = free_port()
    with serving([meter(1, Transport.WRAPPER, port)], devices), connect(port) as sock:
        sock.sendall(wrap(b"hello"))
        assert read_wrapped(sock) == (1, 16, b"ok:hello")
        sock.sendall(wrap(b"big:3000"))
        assert len(read_wrapped(sock)[2]) == 3000


def test_one_wrapper_port_serves_several_logical_devices_by_destination_wport(
    devices: FakeDevices,
) -> None:
    port = free_port()
    specs = [
        meter(1, Transport.WRAPPER, port, server_logical=16),
        meter(2, Transport.WRAPPER, port, server_logical=17),
    ]
    with serving(specs, devices), connect(port) as sock:
        sock.sendall(
            wrap(b"a", destination=17) + wrap(b"b", destination=16) + wrap(b"c", destination=99)
        )
        assert read_wrapped(sock) == (17, 16, b"ok:a")
        assert read_wrapped(sock) == (16, 16, b"ok:b")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nobody has wPort 99
    assert devices.made["M2"].requests == [b"a"] and devices.made["M1"].requests == [b"b"]


def test_a_new_association_starts_after_the_last_one_was_released(devices: FakeDevices) -> None:
    port = free_port()
    with serving([meter(1, Transport.WRAPPER, port)], devices), connect(port) as sock:
        for apdu in (b"one", b"bye", b"two"):
            sock.sendall(wrap(apdu))
            read_wrapped(sock)
    assert devices.made["M1"].associations == 2


def snrm(physical: int) -> bytes:
    frame: bytes = frames.SetNormalResponseModeFrame(
        address.HdlcAddress(1, physical, "server"), CLIENT
    ).to_bytes()
    return frame


def info(physical: int, payload: bytes, ns: int = 0, nr: int = 0) -> bytes:
    server = address.HdlcAddress(1, physical, "server")
    frame: bytes = frames.InformationFrame(
        server,
        CLIENT,
        b"\xe6\xe6\x00" + payload,
        send_sequence_number=ns,
        receive_sequence_number=nr,
    ).to_bytes()
    return frame


def test_an_hdlc_bus_on_tcp_answers_each_meter_by_its_physical_address(
    devices: FakeDevices,
) -> None:
    port = free_port()
    specs = [
        meter(1, Transport.HDLC, port, server_physical=17),
        meter(2, Transport.HDLC, port, server_physical=18),
    ]
    with serving(specs, devices), connect(port) as sock:
        sock.sendall(snrm(99))  # nobody at 99: silence, as on a bus
        sock.sendall(snrm(18))
        [ua] = read_frames(sock, 1)
        assert ua.control.kind is Kind.UA and ua.server == ServerAddress(1, 18, 2)
        sock.sendall(info(17, b"x"))
        [dm] = read_frames(sock, 1)
        assert dm.control.kind is Kind.DM and dm.server.physical == 17
        sock.sendall(info(18, b"hello"))
        [answer] = read_frames(sock, 1)
        assert answer.info == b"\xe6\xe7\x00ok:hello"


def test_the_bus_handles_one_frame_exchange_at_a_time_across_connections(
    devices: FakeDevices,
) -> None:
    port = free_port()
    specs = [
        meter(1, Transport.HDLC, port, server_physical=17, latency_s=0.2),
        meter(2, Transport.HDLC, port, server_physical=18),
    ]
    with serving(specs, devices), connect(port) as slow, connect(port) as fast:
        slow.sendall(snrm(17))
        fast.sendall(snrm(18))
        fast.settimeout(0.15)
        with pytest.raises(TimeoutError):
            fast.recv(1)  # the line is busy with meter 17's exchange
        assert read_frames(slow, 1)[0].server.physical == 17
        assert read_frames(fast, 1)[0].server.physical == 18


def test_meters_on_a_pty_line_are_read_through_pyserial(
    devices: FakeDevices, tmp_path: object
) -> None:
    path = os.path.join(str(tmp_path), "line-0")
    specs = [
        meter(1, Transport.HDLC, 0, serial_device=path, server_physical=17),
        meter(2, Transport.HDLC, 0, serial_device=path, server_physical=18),
    ]
    with serving(specs, devices) as sim:
        assert sim.endpoints[0].address == path and os.path.islink(path)
        with serial.Serial(path, 9600, timeout=5) as port:
            port.write(snrm(18))
            reader = FrameReader()
            got: list[bytes] = []
            while not got:
                got = reader.feed(port.read(port.in_waiting or 1))
            ua = Frame.decode(got[0], from_client=False)
            assert ua.control == Control(Kind.UA) and ua.server.physical == 18
    assert not os.path.lexists(path)


def test_the_serving_line_names_every_endpoint_with_port_ranges(devices: FakeDevices) -> None:
    base = free_ports(2)
    specs = [meter(1, Transport.WRAPPER, base), meter(2, Transport.WRAPPER, base + 1)]
    with serving(specs, devices) as sim:
        line = describe(sim.endpoints)
    assert line == f"serving 2 meters; wrapper 2 meters on 127.0.0.1:{base}-{base + 1}"


def test_stopping_the_simulator_closes_the_connections_it_had(devices: FakeDevices) -> None:
    port = free_port()
    with serving([meter(1, Transport.WRAPPER, port)], devices):
        sock = connect(port)
        sock.sendall(wrap(b"x"))
        read_wrapped(sock)
    sock.settimeout(2)
    assert sock.recv(1) == b""
    sock.close()
