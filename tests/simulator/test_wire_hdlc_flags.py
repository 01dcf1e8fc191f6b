"""A frame whose check sequence ends in 0x7E, on the wire to dlms-cosem's HDLC transport."""

from __future__ import annotations

import pytest
from dlms_cosem.exceptions import CommunicationError
from dlms_cosem.io import BlockingTcpIO, HdlcTransport

from headend.domain.enums import Transport
from headend.simulator.hdlc import LLC_RESPONSE, Control, Frame, Kind, ServerAddress
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.ports import free_ports
from tests.simulator.test_wire_dlms_cosem import FramedTcpIO
from tests.simulator.transport_support import FakeDevices

pytestmark = pytest.mark.timeout(30)


def request_answered_by_a_flag_ended_frame() -> bytes:
    """A request whose answer (first I-frame of a link) has 0x7E as its last FCS byte."""
    for n in range(1 << 16):
        request = b"x" + n.to_bytes(2, "big")
        answer = Frame(
            ServerAddress(1, 17, 2),
            16,
            Control(Kind.I, True, 0, 1),
            LLC_RESPONSE + b"ok:" + request,
        ).encode()
        if answer[-2] == 0x7E:
            return request
    raise AssertionError("no such request")  # pragma: no cover


def meter(port: int) -> MeterSpec:
    return MeterSpec(
        meter_id="X1", seed=1, profile="single_phase_residential", transport=Transport.HDLC,
        port=port,
    )  # fmt: skip


def test_dlms_cosems_transport_gets_the_whole_frame_when_read_by_length() -> None:
    port = free_ports(1)
    request = request_answered_by_a_flag_ended_frame()
    with BackgroundSimulator(Simulator([meter(port)], FakeDevices())):
        transport = HdlcTransport(16, 1, FramedTcpIO("127.0.0.1", port), 17)
        transport.connect()
        try:
            assert transport.send_request(request) == b"ok:" + request
        finally:
            transport.disconnect()


def test_dlms_cosems_own_io_stalls_on_that_frame_until_its_timeout() -> None:
    port = free_ports(1)
    request = request_answered_by_a_flag_ended_frame()
    with BackgroundSimulator(Simulator([meter(port)], FakeDevices())):
        io = BlockingTcpIO("127.0.0.1", port, timeout=1)
        transport = HdlcTransport(16, 1, io, 17)
        transport.connect()
        try:
            with pytest.raises(CommunicationError):
                transport.send_request(request)
        finally:
            io.disconnect()
