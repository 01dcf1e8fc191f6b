"""A scripted hostile meter on 127.0.0.1, over the TCP wrapper or HDLC, for the bounds tests.

It accepts one association (AARE accepted, the PDU it states), answers RLRQ and DISC, and
hands every other request APDU to a script: ``async def script(apdu, line)``, which answers
with ``line.send(apdu)`` (framed for the transport: one wrapper frame, or HDLC I-frames of
128 bytes, each segment waiting for the client's RR) or with raw bytes (``line.send_raw``).
The HDLC answer to SNRM can be replaced by raw bytes (``ua``). Everything crosses a real
socket, so the client's transports, reassembly and timeouts all run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType

from headend.domain.enums import Transport
from headend.protocol import hdlc
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts
from headend.protocol.wrapper import WrapperReader, header
from headend.simulator.association import (
    Diagnostic,
    aare,
    initiate_response,
    rlre,
    server_conformance,
)

CLIENT = hdlc.client_address(16)
SERVER = hdlc.server_address(1, 17)
INFO = 128

Script = Callable[[bytes, "Line"], Awaitable[None]]


def ua(information: bytes, *, destination: bytes = CLIENT, source: bytes = SERVER) -> bytes:
    return hdlc.Frame(destination, source, hdlc.UA, information).to_bytes()


def get_block(number: int, data: bytes, *, last: bool = False, invoke: int = 0xC1) -> bytes:
    """A GET-Response-With-Datablock carrying ``data`` raw."""
    length = len(data)
    if length < 0x80:
        encoded = bytes((length,))
    else:
        size = (length.bit_length() + 7) // 8
        encoded = bytes((0x80 | size,)) + length.to_bytes(size, "big")
    return (
        bytes((0xC4, 0x02, invoke, 1 if last else 0))
        + number.to_bytes(4, "big")
        + b"\x00"
        + encoded
        + data
    )


def invoke_of(apdu: bytes) -> int:
    return apdu[2]


def block_asked(apdu: bytes) -> int | None:
    """The block number a GET-Request-Next acknowledges, or None for another request."""
    if apdu[:2] == b"\xc0\x02":
        return int.from_bytes(apdu[3:7], "big")
    return None


def endless_blocks(size: int, delay: float = 0.0) -> Script:
    """Answer every request with the next block of ``size`` bytes of a transfer that never
    ends, each after ``delay`` seconds."""

    async def script(apdu: bytes, line: Line) -> None:
        asked = block_asked(apdu)
        if delay:
            await asyncio.sleep(delay)
        await line.send(get_block((asked or 0) + 1, bytes(size), invoke=invoke_of(apdu)))

    return script


def one_answer(size: int) -> Script:
    """Answer every request with one GET response holding an octet string of ``size`` bytes."""

    async def script(apdu: bytes, line: Line) -> None:
        value = b"\x09\x82" + size.to_bytes(2, "big") + bytes(size)
        await line.send(b"\xc4\x01" + bytes((invoke_of(apdu),)) + b"\x00" + value)

    return script


class Line:
    """One client connection seen from the meter."""

    def __init__(
        self,
        transport: Transport,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.transport = transport
        self._reader = reader
        self._writer = writer
        self._wrapper = WrapperReader()
        self._frames = hdlc.FrameReader()
        self._send_seq = 0
        self._recv_seq = 0

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def send(self, apdu: bytes) -> None:
        if self.transport is Transport.WRAPPER:
            await self.send_raw(header(1, 16, len(apdu)) + apdu)
            return
        payload = hdlc.LLC_RESPONSE + apdu
        chunks = [payload[i : i + INFO] for i in range(0, len(payload), INFO)]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await self.send_segment(chunk, segmented=not last)
            if not last:
                await self._frame()  # the client's RR

    async def send_segment(self, chunk: bytes, *, segmented: bool) -> None:
        frame = hdlc.information_frame(
            CLIENT,
            SERVER,
            chunk,
            send_sequence=self._send_seq,
            receive_sequence=self._recv_seq,
            final=True,
            segmented=segmented,
        )
        self._send_seq = (self._send_seq + 1) % 8
        await self.send_raw(frame.to_bytes())

    async def _frame(self) -> hdlc.Frame:
        while True:
            raw = self._frames.next_frame()
            if raw is not None:
                return hdlc.Frame.from_bytes(raw)
            data = await self._reader.read(65536)
            if not data:
                raise EOFError
            self._frames.feed(data)

    async def request(self, ua_answer: bytes | None) -> bytes | None:
        """The next request APDU; link frames (SNRM, DISC) are answered here."""
        if self.transport is Transport.WRAPPER:
            while True:
                found = self._wrapper.next_apdu()
                if found is not None:
                    return found.apdu
                data = await self._reader.read(65536)
                if not data:
                    raise EOFError
                self._wrapper.feed(data)
        assembled = b""
        while True:
            frame = await self._frame()
            if frame.kind == hdlc.SNRM:
                await self.send_raw(ua_answer or ua(hdlc.LinkParameters().to_bytes()))
                self._send_seq = self._recv_seq = 0
            elif frame.kind == hdlc.DISC:
                await self.send_raw(ua(b""))
                return None
            elif frame.is_information:
                self._recv_seq = (self._recv_seq + 1) % 8
                assembled += frame.information
                if not frame.segmented:
                    return assembled[len(hdlc.LLC_REQUEST) :]
                # a long request comes in segments, each acknowledged before the next
                await self.send_raw(hdlc.receive_ready(CLIENT, SERVER, self._recv_seq).to_bytes())


class HostileMeter:
    """``async with HostileMeter(Transport.HDLC, script) as meter``: ``meter.target(...)``."""

    def __init__(
        self,
        transport: Transport,
        script: Script,
        *,
        ua: bytes | None = None,
        server_max_pdu: int = 1024,
    ) -> None:
        self.transport = transport
        self.script = script
        self.ua = ua
        self.server_max_pdu = server_max_pdu
        self.port = 0
        self.closed = asyncio.Event()  # the client closed its connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def target(self, **fields: object) -> MeterTarget:
        fields.setdefault("timeouts", Timeouts(connect=2, link=2, response=2, close=0.5))
        return MeterTarget(
            "hostile",
            self.transport,
            "127.0.0.1",
            self.port,
            **fields,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> HostileMeter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        line = Line(self.transport, reader, writer)
        try:
            while True:
                apdu = await line.request(self.ua)
                if apdu is None:
                    continue
                if apdu[:1] == b"\x60":  # AARQ
                    conformance = server_conformance(True, False)
                    user = initiate_response(conformance, self.server_max_pdu)
                    await line.send(
                        aare(
                            accepted=True,
                            diagnostic=Diagnostic.NULL,
                            ciphered_context=False,
                            user_information=user,
                        )
                    )
                elif apdu[:1] == b"\x62":  # RLRQ
                    await line.send(rlre())
                else:
                    await self.script(apdu, line)
        except (EOFError, ConnectionError):
            self.closed.set()
        finally:
            self._tasks.discard(task)
            writer.close()


@contextlib.contextmanager
def in_background(meter: HostileMeter, start_timeout: float = 10.0) -> Iterator[HostileMeter]:
    """Serve ``meter`` from a thread with its own event loop, for a client in another process
    (``headend probe``, ``headend collect``); ``meter.port`` is set on entry."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(meter.__aenter__(), loop).result(start_timeout)
        try:
            yield meter
        finally:
            closing = asyncio.run_coroutine_threadsafe(meter.__aexit__(None, None, None), loop)
            with contextlib.suppress(Exception):
                closing.result(start_timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(start_timeout)
        if not loop.is_running():
            loop.close()
