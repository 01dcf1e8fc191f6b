"""Byte streams under the DLMS transports: a TCP connection and a local serial port.

Both read in chunks (whatever the kernel has, up to 64 KiB), never byte by byte; a TCP
connection stops reading from the kernel once it holds ``HIGH_WATER`` bytes nobody took. The end of
the stream (the peer closed, the pty hung up) raises ``SessionDroppedError`` at once and stops
watching the descriptor, so a closed peer can never make a reader spin.

The serial port is opened with pyserial (which sets speed and 8N1/7E1 framing) in
non-blocking mode and then watched with the event loop's ``add_reader`` on its descriptor.
That costs no thread per port, lets ``asyncio.timeout`` and cancellation act on a read
exactly as on a socket, and keeps one code path for reads. It needs a POSIX descriptor, which
is what the head-end runs on (Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Protocol

from headend.domain.enums import SerialFraming
from headend.protocol.errors import (
    ConnectTimeoutError,
    SessionDroppedError,
    UnreachableError,
    translate,
)

CHUNK = 65536
# Bytes a socket holds for us before it stops reading from the kernel (flow control): a meter
# that floods the link waits in its own buffers, not in ours.
HIGH_WATER = 4 * CHUNK


class ByteStream(Protocol):
    async def read(self) -> bytes:
        """Whatever bytes have arrived (at least one); waits for some."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    @property
    def is_closed(self) -> bool: ...


@dataclass
class Traffic:
    """Bytes a session wrote and read, for the attempt's record."""

    sent: int = 0
    received: int = 0


class CountingStream:
    """A ``ByteStream`` that counts what passes through it into a ``Traffic``."""

    def __init__(self, inner: ByteStream, traffic: Traffic) -> None:
        self._inner = inner
        self._traffic = traffic

    async def read(self) -> bytes:
        data = await self._inner.read()
        self._traffic.received += len(data)
        return data

    async def write(self, data: bytes) -> None:
        await self._inner.write(data)
        self._traffic.sent += len(data)

    async def close(self) -> None:
        await self._inner.close()

    @property
    def is_closed(self) -> bool:
        return self._inner.is_closed


class _Receiver(asyncio.Protocol):
    """Collects what a socket receives and wakes one waiting reader."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.ended = False
        self.reason: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def taken(self) -> None:
        """The reader took the buffer: read from the socket again."""
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.reason = exc
        self._wake()


class TcpStream:
    def __init__(self, transport: asyncio.Transport, receiver: _Receiver, peer: str) -> None:
        self._transport = transport
        self._receiver = receiver
        self.peer = peer

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float) -> TcpStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, receiver = await loop.create_connection(_Receiver, host, port)
        except TimeoutError as exc:
            raise ConnectTimeoutError(f"no TCP connection to {host}:{port} in {timeout}s") from exc
        except OSError as exc:
            raise UnreachableError(
                f"cannot connect to {host}:{port}: {exc.strerror or exc}"
            ) from exc
        assert isinstance(transport, asyncio.Transport)
        return cls(transport, receiver, f"{host}:{port}")

    async def read(self) -> bytes:
        receiver = self._receiver
        while not receiver.buffer:
            if receiver.ended:
                raise SessionDroppedError(f"{self.peer} closed the connection")
            receiver.waiter = asyncio.get_running_loop().create_future()
            try:
                await receiver.waiter
            finally:
                receiver.waiter = None
        data = bytes(receiver.buffer)
        receiver.buffer.clear()
        receiver.taken()
        return data

    async def write(self, data: bytes) -> None:
        if self._transport.is_closing() or self._receiver.ended:
            raise SessionDroppedError(f"{self.peer} closed the connection")
        self._transport.write(data)

    async def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    @property
    def is_closed(self) -> bool:
        return self._transport.is_closing()


_FRAMING = {
    SerialFraming.F8N1: (8, "N", 1),
    SerialFraming.F7E1: (7, "E", 1),
}


class SerialStream:
    """A local serial port (or pty) read through the event loop."""

    def __init__(self, port: object, fd: int, name: str) -> None:
        self._port = port
        self._fd = fd
        self.name = name
        self._buffer = bytearray()
        self._ended = False
        self._reason: str | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        asyncio.get_running_loop().add_reader(fd, self._readable)

    @classmethod
    async def open(
        cls, device: str, baud: int = 9600, framing: SerialFraming = SerialFraming.F8N1
    ) -> SerialStream:
        import serial  # pyserial

        bytesize, parity, stopbits = _FRAMING[SerialFraming(framing)]
        try:
            port = serial.Serial(
                port=device,
                baudrate=baud,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise UnreachableError(f"cannot open serial port {device}: {exc}") from exc
        return cls(port, port.fileno(), device)

    def _stop_watching(self) -> None:
        if not self._closed:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._fd)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the other end of a pty hung up
            data = b""
            self._reason = exc.strerror
        if data:
            self._buffer += data
        else:
            self._ended = True
            self._stop_watching()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        while not self._buffer:
            if self._ended or self._closed:
                raise SessionDroppedError(
                    f"serial port {self.name} hung up"
                    + (f" ({self._reason})" if self._reason else "")
                )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def write(self, data: bytes) -> None:
        if self._ended or self._closed:
            raise SessionDroppedError(f"serial port {self.name} hung up")
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        while view:
            try:
                written = os.write(self._fd, view)
                view = view[written:]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self._fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self._fd)
            except OSError as exc:
                raise translate(exc, stage="write") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._stop_watching()
        self._closed = True
        close = getattr(self._port, "close", None)
        if close is not None:
            close()

    @property
    def is_closed(self) -> bool:
        return self._closed
