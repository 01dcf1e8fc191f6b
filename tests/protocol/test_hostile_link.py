"""A hostile meter on the wire, over the TCP wrapper and HDLC: every session ends, within its
budget in time and bytes, under the category that points at the meter or the link."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc

import pytest

from headend.domain.enums import FailureCategory, Transport
from headend.domain.obis import Obis
from headend.protocol import hdlc
from headend.protocol.errors import ProtocolError
from headend.protocol.session import MeterSession
from headend.protocol.transports import Timeouts
from headend.protocol.xdlms import AttributeRef
from tests.protocol.hostile_link import (
    CLIENT,
    SERVER,
    HostileMeter,
    Line,
    endless_blocks,
    one_answer,
    ua,
)
from tests.protocol.support import run

BOTH = pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])
REGISTER = AttributeRef(3, Obis(1, 0, 1, 8, 0), 2)
MIB = 1024 * 1024


async def _failure(meter: HostileMeter, **fields: object) -> ProtocolError:
    async with meter:
        try:
            async with MeterSession(meter.target(**fields)) as session:
                await session.get(REGISTER)
        except ProtocolError as exc:
            return exc
    raise AssertionError("the session did not fail")


@BOTH
def test_an_endless_block_transfer_just_inside_the_step_timeout_ends_at_the_session_budget(
    transport: Transport,
) -> None:
    async def go() -> tuple[ProtocolError, float, bool]:
        meter = HostileMeter(transport, endless_blocks(100, delay=0.4))
        started = time.monotonic()
        async with meter:
            try:
                timeouts = Timeouts(connect=2, link=2, response=1.0, close=0.5, session=2.5)
                async with MeterSession(meter.target(timeouts=timeouts)) as session:
                    await session.get(REGISTER)
            except ProtocolError as exc:
                error = exc
            elapsed = time.monotonic() - started
            async with asyncio.timeout(2):
                await meter.closed.wait()  # the transport was closed: the slot is free
            return error, elapsed, meter.closed.is_set()

    error, elapsed, closed = run(go())
    assert error.category is FailureCategory.RESPONSE_TIMEOUT
    assert "budget" in str(error)
    assert 2.4 <= elapsed < 4.5
    assert closed


@BOTH
def test_an_endless_transfer_of_60_kb_blocks_after_a_1024_byte_pdu_is_refused_cheaply(
    transport: Transport,
) -> None:
    tracemalloc.start()
    try:
        error = run(_failure(HostileMeter(transport, endless_blocks(60_000)), max_pdu=1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.category is FailureCategory.MALFORMED_FRAME
    assert peak < 3 * MIB


@BOTH
def test_an_endless_transfer_of_blocks_within_the_pdu_is_refused_at_the_transfer_ceiling(
    transport: Transport,
) -> None:
    tracemalloc.start()
    try:
        meter = HostileMeter(transport, endless_blocks(1000))
        error = run(_failure(meter, max_pdu=1024, max_transfer_bytes=64 * 1024), limit=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.category is FailureCategory.DECODE_ERROR
    assert "block transfer runs past" in str(error)
    assert peak < 4 * MIB


@BOTH
def test_an_answer_larger_than_the_proposed_pdu_is_refused(transport: Transport) -> None:
    error = run(_failure(HostileMeter(transport, one_answer(2000)), max_pdu=1024))
    assert error.category is FailureCategory.MALFORMED_FRAME


@BOTH
def test_an_oversized_answer_is_taken_where_the_profile_grants_a_tolerance(
    transport: Transport,
) -> None:
    async def go() -> bytes:
        async with HostileMeter(transport, one_answer(1100)) as meter:
            target = meter.target(max_pdu=1024, pdu_tolerance=256)
            async with MeterSession(target) as session:
                return await session.get(REGISTER)

    assert len(run(go())) == 1104


def test_a_ua_negotiating_an_information_field_of_0_is_a_failed_link_setup() -> None:
    params = hdlc.LinkParameters(max_info_transmit=0, max_info_receive=0).to_bytes()
    meter = HostileMeter(Transport.HDLC, one_answer(10), ua=ua(params))
    error = run(_failure(meter))
    assert error.category is FailureCategory.LINK_SETUP_FAILED


def _ua_with_addresses_into_its_fcs() -> bytes:
    """A 7-byte frame whose destination address (no end bit in its own bytes) runs on into
    the check sequence, both of whose bytes read as address ends."""
    for third in range(0, 256, 2):
        frame = bytes((0xA0, 0x07, 0x02, 0x04, third))
        fcs = hdlc.fcs16(frame).to_bytes(2, "little")
        if fcs[0] & 1 and fcs[1] & 1:
            return b"\x7e" + frame + fcs + b"\x7e"
    raise AssertionError("no such frame")


def test_a_ua_whose_addresses_run_into_its_check_sequence_is_a_malformed_frame() -> None:
    meter = HostileMeter(Transport.HDLC, one_answer(10), ua=_ua_with_addresses_into_its_fcs())
    error = run(_failure(meter))
    assert error.category is FailureCategory.MALFORMED_FRAME


def test_an_hdlc_answer_that_never_ends_its_segmented_frame_is_capped() -> None:
    async def script(apdu: bytes, line: Line) -> None:
        await line.send_segment(hdlc.LLC_RESPONSE + b"\xc4\x01\xc1\x00", segmented=True)
        while True:
            await line._frame()  # the client's RR
            await line.send_segment(bytes(120), segmented=True)

    tracemalloc.start()
    try:
        error = run(_failure(HostileMeter(Transport.HDLC, script), max_pdu=1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.category is FailureCategory.MALFORMED_FRAME
    assert "runs past 1024 bytes" in str(error)
    assert peak < 2 * MIB


def test_the_hostile_meter_answers_as_hdlc_addresses_say() -> None:
    assert hdlc.Frame.from_bytes(ua(b"")).destination == CLIENT
    assert hdlc.Frame.from_bytes(ua(b"")).source == SERVER


def test_a_meter_flooding_the_link_waits_in_the_kernel_not_in_our_buffer() -> None:
    from headend.protocol.streams import HIGH_WATER, TcpStream

    async def go() -> tuple[int, int]:
        flooding: list[asyncio.Task[None]] = []

        async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            flooding.append(task)
            with contextlib.suppress(ConnectionError):
                for _ in range(64):
                    writer.write(bytes(256 * 1024))
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(flood, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await TcpStream.connect("127.0.0.1", port, 2)
        await asyncio.sleep(0.5)  # not reading: the meter goes on writing
        held = len(stream._receiver.buffer)
        got = len(await stream.read())
        await stream.close()
        for task in flooding:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server.close()
        await server.wait_closed()
        return held, got

    held, got = run(go())
    assert 0 < held <= HIGH_WATER + 256 * 1024
    assert got == held
