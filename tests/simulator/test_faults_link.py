"""Link faults and pacing, seen on the wire as a client sees a meter's."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import serial  # pyserial
from dlms_cosem.connection import XDlmsApduFactory
from dlms_cosem.hdlc import address, frames
from dlms_cosem.hdlc.exceptions import HdlcParsingError

from headend.domain.enums import Transport
from headend.simulator.faults import LinkPolicy
from headend.simulator.hdlc import Frame, FrameError, FrameReader, Kind
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import Fault, FaultKind, MeterSpec
from tests.ports import free_port
from tests.simulator.transport_support import FakeDevices, read_wrapped, wrap

pytestmark = pytest.mark.timeout(30)
CLIENT = address.HdlcAddress(16, None, "client")
SERVER = address.HdlcAddress(1, 17, "server")
SNRM = frames.SetNormalResponseModeFrame(SERVER, CLIENT).to_bytes()


def info(payload: bytes, ns: int) -> bytes:
    frame: bytes = frames.InformationFrame(
        SERVER, CLIENT, b"\xe6\xe6\x00" + payload,
        send_sequence_number=ns, receive_sequence_number=ns,
    ).to_bytes()  # fmt: skip
    return frame


def spec(transport: Transport, port: int, *faults: Fault, **kw: object) -> MeterSpec:
    return MeterSpec(
        meter_id="F1", seed=1, profile="single_phase_residential", transport=transport,
        port=port, faults=faults, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def serve(*specs: MeterSpec) -> BackgroundSimulator:
    return BackgroundSimulator(Simulator(list(specs), FakeDevices()))


def silent_for(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b"x"  # never: data or a close both end the silence
    except TimeoutError:
        return True


def raw_frames(sock: socket.socket, count: int) -> list[bytes]:
    reader, found = FrameReader(), list[bytes]()
    sock.settimeout(5)
    while len(found) < count:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        found += reader.feed(chunk)
    return found


def test_link_policy_reads_faults_and_pacing_from_the_spec() -> None:
    policy = LinkPolicy.for_meter(
        spec(Transport.HDLC, 1, Fault(FaultKind.SLOW), Fault(FaultKind.DROP, {"after_requests": 5}),
             latency_s=0.3, baud_rate=9600)
    )  # fmt: skip
    assert (policy.slow_s, policy.drop_after, policy.silent, policy.corrupt) == (
        30.0,
        5,
        False,
        False,
    )
    assert policy.answer_delay(96) == pytest.approx(0.3 + 30.0 + 0.1)


@pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])
def test_a_meter_that_never_answers_accepts_the_connection_and_stays_silent(
    transport: Transport,
) -> None:
    port = free_port()
    with (
        serve(spec(transport, port, Fault(FaultKind.NO_ANSWER))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(wrap(b"hello") if transport is Transport.WRAPPER else SNRM)
        assert silent_for(sock, 0.5)


def test_a_slow_meter_answers_only_after_its_delay() -> None:
    port = free_port()
    with (
        serve(spec(Transport.WRAPPER, port, Fault(FaultKind.SLOW, {"delay_s": 0.6}))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        began = time.monotonic()
        sock.sendall(wrap(b"hello"))
        assert silent_for(sock, 0.4)
        sock.settimeout(5)
        assert read_wrapped(sock)[2] == b"ok:hello"
        assert time.monotonic() - began >= 0.6


def test_a_dropping_wrapper_meter_closes_the_connection_on_the_request_past_its_limit() -> None:
    port = free_port()
    with (
        serve(spec(Transport.WRAPPER, port, Fault(FaultKind.DROP, {"after_requests": 2}))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        for apdu in (b"one", b"two"):
            sock.sendall(wrap(apdu))
            assert read_wrapped(sock)[2] == b"ok:" + apdu
        sock.sendall(wrap(b"three"))
        assert sock.recv(100) == b""  # closed, no answer


def test_a_dropping_hdlc_meter_behind_a_converter_closes_the_tcp_connection() -> None:
    port = free_port()
    with (
        serve(spec(Transport.HDLC, port, Fault(FaultKind.DROP, {"after_requests": 1}))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(SNRM)
        raw_frames(sock, 1)
        sock.sendall(info(b"one", 0))
        assert Frame.decode(raw_frames(sock, 1)[0], from_client=False).info.endswith(b"ok:one")
        sock.sendall(info(b"two", 1))
        assert sock.recv(100) == b""


def test_a_dropping_meter_on_a_serial_line_falls_silent_until_the_link_is_set_up_again(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "line")
    meter = spec(
        Transport.HDLC, 0, Fault(FaultKind.DROP, {"after_requests": 1}), serial_device=path
    )
    with serve(meter), serial.Serial(path, 9600, timeout=0.5) as line:
        reader = FrameReader()

        def frames_read() -> list[bytes]:
            return reader.feed(line.read(200))

        line.write(SNRM)
        assert len(frames_read()) == 1
        line.write(info(b"one", 0))
        assert len(frames_read()) == 1
        line.write(info(b"two", 1))
        assert frames_read() == []  # the meter went quiet mid-session
        line.write(SNRM)
        [ua] = frames_read()
        assert Frame.decode(ua, from_client=False).control.kind is Kind.UA


def test_bad_fcs_hdlc_answers_keep_their_length_and_fail_the_check() -> None:
    port = free_port()
    with (
        serve(spec(Transport.HDLC, port, Fault(FaultKind.BAD_FCS))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(SNRM)
        [ua] = raw_frames(sock, 1)
    with pytest.raises(FrameError, match="FCS"):
        Frame.decode(ua, from_client=False)
    with pytest.raises(HdlcParsingError, match="FCS"):
        frames.UnNumberedAcknowledgmentFrame.from_bytes(ua)


def test_bad_fcs_on_the_wrapper_garbles_the_apdu_so_no_client_can_decode_it() -> None:
    port = free_port()
    with (
        serve(spec(Transport.WRAPPER, port, Fault(FaultKind.BAD_FCS))),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(wrap(b"\xc0\x01"))
        _source, _destination, apdu = read_wrapped(sock)
    assert len(apdu) == len(b"ok:\xc0\x01") and apdu != b"ok:\xc0\x01"
    with pytest.raises(KeyError):
        XDlmsApduFactory.apdu_from_bytes(apdu)


def test_latency_delays_every_answer_of_a_meter() -> None:
    port = free_port()
    with (
        serve(spec(Transport.WRAPPER, port, latency_s=0.3)),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        for _ in range(2):
            sock.sendall(wrap(b"x"))
            assert silent_for(sock, 0.2)
            sock.settimeout(5)
            assert read_wrapped(sock)[2] == b"ok:x"


def test_a_serial_meters_answers_take_the_time_their_baud_rate_needs(tmp_path: Path) -> None:
    path = str(tmp_path / "line")
    with (
        serve(spec(Transport.HDLC, 0, serial_device=path, baud_rate=2400)),
        serial.Serial(path, 2400, timeout=5) as line,
    ):
        line.write(SNRM)
        assert len(line.read(33)) == 33  # the UA: about 0.14 s at 2,400 baud
        line.write(info(b"big:1000", 0))
        began = time.monotonic()
        line.read(1)
        elapsed = time.monotonic() - began
    assert elapsed >= 128 * 10 / 2400 * 0.9  # at least one full segment's worth
    assert os.path.exists(path) is False
