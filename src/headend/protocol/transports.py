"""DLMS transports: carry one APDU to the meter and its answer back.

* ``WrapperTransport``: the IEC 62056-47 TCP wrapper (8-byte header with the length).
* ``HdlcTransport``: IEC 62056-46 HDLC over any byte stream: a TCP connection to an RS485
  converter (multi-drop: the meter is chosen by its physical address) or a local serial port.
  SNRM/UA negotiates the information-field size and window; long APDUs are segmented; the
  link is closed with DISC.

Every step runs under its own timeout, and a timeout always fires: reads are awaited through
``asyncio.timeout`` and never block the loop. A whole session runs under a budget too
(``Timeouts.session``, enforced by ``MeterSession``). An answer is bounded in bytes as well:
``max_apdu`` (the PDU we proposed plus any tolerance the device profile grants) caps the
wrapper's declared length and the HDLC reassembly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from headend.protocol import hdlc
from headend.protocol.errors import (
    LinkSetupError,
    MalformedFrameError,
    ResponseTimeoutError,
    SessionDroppedError,
)
from headend.protocol.hdlc_link import HdlcLink
from headend.protocol.streams import ByteStream
from headend.protocol.wrapper import WrapperReader, header


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0  # TCP connect / opening a port
    link: float = 5.0  # HDLC SNRM -> UA
    response: float = 10.0  # one request -> its complete answer
    close: float = 2.0  # RLRQ and DISC, best-effort
    session: float = 600.0  # the whole session at most, however its steps go


class Transport(Protocol):
    async def open(self) -> None: ...

    async def exchange(self, apdu: bytes) -> bytes: ...

    async def close(self) -> None: ...


StreamOpener = Callable[[], Awaitable[ByteStream]]


class WrapperTransport:
    def __init__(
        self,
        opener: StreamOpener,
        client_sap: int,
        server_logical: int,
        timeouts: Timeouts,
        *,
        max_apdu: int = 0xFFFF,
    ) -> None:
        self._opener = opener
        self._client = client_sap
        self._server = server_logical
        self._timeouts = timeouts
        self._stream: ByteStream | None = None
        self._reader = WrapperReader(max_apdu)

    async def open(self) -> None:
        self._stream = await self._opener()

    async def exchange(self, apdu: bytes) -> bytes:
        stream = self._require()
        await stream.write(header(self._client, self._server, len(apdu)) + apdu)
        try:
            async with asyncio.timeout(self._timeouts.response):
                return await self._receive(stream)
        except TimeoutError as exc:
            raise ResponseTimeoutError(
                f"no complete answer within {self._timeouts.response}s"
            ) from exc

    async def _receive(self, stream: ByteStream) -> bytes:
        reader = self._reader
        while True:
            found = reader.next_apdu()
            if found is None:
                reader.feed(await stream.read())
            elif found.source == self._server and found.destination == self._client:
                return found.apdu
            # else: another association's answer on a shared connection

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()

    def _require(self) -> ByteStream:
        if self._stream is None:
            raise SessionDroppedError("the transport is not open")
        return self._stream


class HdlcTransport:
    def __init__(
        self,
        opener: StreamOpener,
        link: HdlcLink,
        timeouts: Timeouts,
    ) -> None:
        self._opener = opener
        self.link = link
        self._timeouts = timeouts
        self._stream: ByteStream | None = None
        self._reader = hdlc.FrameReader()

    async def open(self) -> None:
        self._stream = await self._opener()
        try:
            await self._stream.write(self.link.snrm())
            async with asyncio.timeout(self._timeouts.link):
                frame = await self._next_frame(self._stream)
            self.link.on_connect_answer(frame)
        except TimeoutError as exc:
            await self._stream.close()
            raise LinkSetupError(f"no UA to SNRM within {self._timeouts.link}s") from exc
        except BaseException:
            await self._stream.close()
            raise

    async def _next_frame(self, stream: ByteStream) -> hdlc.Frame:
        while True:
            raw = self._reader.next_frame()
            if raw is None:
                self._reader.feed(await stream.read())
                continue
            frame = hdlc.Frame.from_bytes(raw)
            if self.link.is_for_us(frame):
                return frame
            # a frame for another station on a multi-drop bus: not ours

    async def exchange(self, apdu: bytes) -> bytes:
        stream = self._require()
        try:
            async with asyncio.timeout(self._timeouts.response):
                windows = self.link.request_windows(apdu)
                for index, window in enumerate(windows):
                    await stream.write(b"".join(window))
                    if index < len(windows) - 1:
                        answer = self.link.on_frame(await self._next_frame(stream))
                        if not answer.window_acknowledged:
                            raise MalformedFrameError("expected RR after a window of segments")
                while True:
                    received = self.link.on_frame(await self._next_frame(stream))
                    if received.reply is not None:
                        await stream.write(received.reply)
                    if received.complete is not None:
                        return received.complete
        except TimeoutError as exc:
            raise ResponseTimeoutError(
                f"no complete answer within {self._timeouts.response}s"
            ) from exc

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            if not stream.is_closed:
                await stream.write(self.link.disc())
                async with asyncio.timeout(self._timeouts.close):
                    self.link.on_disconnect_answer(await self._next_frame(stream))
        except (TimeoutError, Exception):
            pass  # DISC is best-effort: the connection is closed either way
        finally:
            await stream.close()

    def _require(self) -> ByteStream:
        if self._stream is None:
            raise SessionDroppedError("the transport is not open")
        return self._stream
