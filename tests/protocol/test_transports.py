"""The transports over real sockets and a real pty, against the simulator's links."""

from __future__ import annotations

import pytest

from headend.domain.enums import Transport
from headend.protocol.target import MeterTarget, build_transport
from headend.protocol.transports import HdlcTransport
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.ports import free_port
from tests.protocol.support import open_fds, run
from tests.simulator.transport_support import FakeDevices

pytestmark = pytest.mark.timeout(30)


def spec(n: int, transport: Transport, port: int, **kw: object) -> MeterSpec:
    return MeterSpec(
        meter_id=f"M{n}",
        seed=n,
        profile="single_phase_residential",
        transport=transport,
        port=port,
        **kw,
    )  # type: ignore[arg-type]


async def exchange_all(target: MeterTarget, apdus: list[bytes]) -> list[bytes]:
    transport = build_transport(target)
    await transport.open()
    try:
        return [await transport.exchange(a) for a in apdus]
    finally:
        await transport.close()


def test_the_wrapper_transport_exchanges_apdus_of_any_size_within_the_pdu() -> None:
    port = free_port()
    with BackgroundSimulator(Simulator([spec(1, Transport.WRAPPER, port)], FakeDevices())):
        target = MeterTarget("M1", Transport.WRAPPER, "127.0.0.1", port, max_pdu=0xFFFF)
        answers = run(exchange_all(target, [b"hello", b"big:40000"]))
    assert answers[0] == b"ok:hello"
    assert answers[1] == bytes(i % 251 for i in range(40000))


def test_hdlc_over_tcp_negotiates_the_link_and_reassembles_long_answers() -> None:
    port = free_port()
    meters = [
        spec(1, Transport.HDLC, port, server_physical=17),
        spec(2, Transport.HDLC, port, server_physical=18),
    ]
    with BackgroundSimulator(Simulator(meters, FakeDevices())):
        target = MeterTarget(
            "M2",
            Transport.HDLC,
            "127.0.0.1",
            port,
            server_physical=18,
            hdlc_max_info=128,
            hdlc_window=1,
            max_pdu=4096,
        )
        answers = run(exchange_all(target, [b"x" * 700, b"big:3000", b"again"]))
    assert answers == [b"ok:" + b"x" * 700, bytes(i % 251 for i in range(3000)), b"ok:again"]


def test_hdlc_over_a_serial_pty_is_read_through_pyserial(tmp_path: object) -> None:
    device = f"{tmp_path}/ttyMETER"
    meters = [spec(1, Transport.HDLC, 0, serial_device=device, server_physical=17)]
    with BackgroundSimulator(Simulator(meters, FakeDevices())):
        target = MeterTarget("M1", Transport.HDLC, serial_device=device, server_physical=17)
        before = open_fds()
        answers = run(exchange_all(target, [b"hello", b"big:1000"]))
        assert open_fds() == before
    assert answers == [b"ok:hello", bytes(i % 251 for i in range(1000))]


def test_the_negotiated_information_field_is_used_for_the_answer() -> None:
    port = free_port()
    with BackgroundSimulator(Simulator([spec(1, Transport.HDLC, port)], FakeDevices())):
        target = MeterTarget(
            "M1",
            Transport.HDLC,
            "127.0.0.1",
            port,
            hdlc_max_info=512,
            hdlc_window=7,
            max_pdu=2048,
        )

        async def go() -> tuple[int, int]:
            transport = build_transport(target)
            assert isinstance(transport, HdlcTransport)
            await transport.open()
            try:
                await transport.exchange(b"big:2000")
                return (
                    transport.link.negotiated.max_info_receive,
                    transport.link.negotiated.window_receive,
                )
            finally:
                await transport.close()

        negotiated = run(go())
    assert negotiated[0] <= 512 and negotiated[0] >= 128
    assert 1 <= negotiated[1] <= 7
