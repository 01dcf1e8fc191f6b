"""The TCP wrapper of IEC 62056-47, server side.

Every APDU travels behind an 8-byte header: version (1), source wPort, destination wPort and
the APDU's length, each an unsigned 16-bit big-endian number. A port serves one meter, or
several logical devices told apart by destination wPort (a data concentrator); an answer
swaps the two wPorts.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from headend.simulator.faults import DropLink, corrupt_apdu
from headend.simulator.meter import Meter, MeterSession

VERSION = 1
HEADER = struct.Struct(">HHHH")
HEADER_SIZE = HEADER.size
LOG = structlog.get_logger(__name__)


class WrapperError(ValueError):
    """Bytes that are not a wrapper frame (wrong version)."""


@dataclass(frozen=True, slots=True)
class WrapperPdu:
    source: int
    destination: int
    apdu: bytes

    def to_bytes(self) -> bytes:
        return HEADER.pack(VERSION, self.source, self.destination, len(self.apdu)) + self.apdu

    @classmethod
    def from_bytes(cls, data: bytes) -> WrapperPdu:
        if len(data) < HEADER_SIZE:
            raise WrapperError(f"a wrapper header is {HEADER_SIZE} bytes, got {len(data)}")
        version, source, destination, length = HEADER.unpack_from(data)
        if version != VERSION:
            raise WrapperError(f"wrapper version {version}, expected {VERSION}")
        if len(data) != HEADER_SIZE + length:
            raise WrapperError(f"the header says {length} APDU bytes, got {len(data) - 8}")
        return cls(source, destination, bytes(data[HEADER_SIZE:]))


class WrapperReader:
    """Cuts a TCP byte stream into wrapper PDUs by their length field."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[WrapperPdu]:
        buffer = self._buffer
        buffer += data
        out: list[WrapperPdu] = []
        while len(buffer) >= HEADER_SIZE:
            version, source, destination, length = HEADER.unpack_from(buffer)
            if version != VERSION:
                raise WrapperError(f"wrapper version {version}, expected {VERSION}")
            end = HEADER_SIZE + length
            if len(buffer) < end:
                break
            out.append(WrapperPdu(source, destination, bytes(buffer[HEADER_SIZE:end])))
            del buffer[:end]
        return out


class WrapperConnection(asyncio.Protocol):
    """One client connection to a wrapper port; one session per logical device addressed."""

    def __init__(
        self, meters: Mapping[int, Meter], live: set[asyncio.Transport] | None = None
    ) -> None:
        self._meters = meters
        self._live = live
        self._reader = WrapperReader()
        self._sessions: dict[int, MeterSession] = {}
        self._transport: asyncio.Transport | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._last_send_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._live is not None:
            self._live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._live is not None and self._transport is not None:
            self._live.discard(self._transport)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._sessions.clear()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            pdus = self._reader.feed(data)
        except WrapperError:
            self._close()
            return
        for pdu in pdus:
            if self._transport is None or self._transport.is_closing():
                return
            self._on_pdu(pdu)

    def _on_pdu(self, pdu: WrapperPdu) -> None:
        meter = self._meters.get(pdu.destination)
        if meter is None or meter.policy.silent:
            return
        session = self._sessions.get(pdu.destination)
        if session is None:
            session = self._sessions[pdu.destination] = meter.open()
        try:
            answer = session.request(pdu.apdu)
        except DropLink:
            self._close()
            return
        except Exception:  # a bug in the meter: it goes away, as a crashed meter does
            LOG.exception("simulated meter failed", meter_id=meter.spec.meter_id)
            self._close()
            return
        if answer is None:
            return
        if meter.policy.corrupt:
            answer = corrupt_apdu(answer)
        data = WrapperPdu(pdu.destination, pdu.source, answer).to_bytes()
        if meter.policy.paced:
            self._send_later(data, meter.policy.answer_delay(len(data)))
        elif self._transport is not None:
            self._transport.write(data)

    def _send_later(self, data: bytes, delay: float) -> None:
        loop = asyncio.get_running_loop()
        send_at = max(loop.time() + delay, self._last_send_at)
        self._last_send_at = send_at
        timer: asyncio.TimerHandle

        def send() -> None:
            self._timers.discard(timer)
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(data)

        timer = loop.call_at(send_at, send)
        self._timers.add(timer)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve_wrapper(
    host: str,
    port: int,
    meters: Mapping[int, Meter],
    *,
    backlog: int = 128,
    live: set[asyncio.Transport] | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` for the meters given by wPort (server logical address).

    ``live`` collects the open connections, so that whoever stops serving can close them.
    """
    loop = asyncio.get_running_loop()
    table = dict(meters)
    return await loop.create_server(
        lambda: WrapperConnection(table, live), host, port, backlog=backlog, reuse_address=True
    )
