"""Helpers for the transport tests: a fake logical device and small blocking clients.

The fake implements the same ``Device``/``Association`` protocols as the COSEM server, so the
transports are tested with bytes alone: it answers ``b"ok:" + request``, ``big:N`` with N
bytes, and ``bye`` by releasing.
"""

from __future__ import annotations

import random
import socket
import struct
import time

from headend.simulator.hdlc import Frame, FrameReader
from headend.simulator.spec import MeterSpec


class FakeAssociation:
    def __init__(self, device: FakeDevice) -> None:
        self.device = device
        self.released = False

    def handle(self, apdu: bytes) -> bytes | None:
        self.device.requests.append(apdu)
        if apdu.startswith(b"big:"):
            size = int(apdu[4:])
            return bytes(i % 251 for i in range(size))
        if apdu == b"bye":
            self.released = True
            return b"bye"
        if apdu == b"mute":
            return None
        return b"ok:" + apdu


class FakeDevice:
    def __init__(self, spec: MeterSpec) -> None:
        self.spec = spec
        self.requests: list[bytes] = []
        self.associations = 0

    def new_association(self) -> FakeAssociation:
        self.associations += 1
        return FakeAssociation(self)


class FakeDevices:
    """A device source that keeps the devices it made, by meter id."""

    def __init__(self) -> None:
        self.made: dict[str, FakeDevice] = {}

    def __call__(self, spec: MeterSpec) -> FakeDevice:
        device = self.made[spec.meter_id] = FakeDevice(spec)
        return device


def wrap(apdu: bytes, source: int = 16, destination: int = 1) -> bytes:
    return struct.pack(">HHHH", 1, source, destination, len(apdu)) + apdu


def read_wrapped(sock: socket.socket) -> tuple[int, int, bytes]:
    header = read_exactly(sock, 8)
    _version, source, destination, length = struct.unpack(">HHHH", header)
    return source, destination, read_exactly(sock, length)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_frames(sock: socket.socket, count: int, timeout: float = 5.0) -> list[Frame]:
    """Read ``count`` HDLC frames (decoded from the client's side) by their length."""
    reader = FrameReader()
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        frames += reader.feed(chunk)
    return [Frame.decode(raw, from_client=False) for raw in frames]


_PORT_CHOICE = random.SystemRandom()  # not the global generator, which tests seed


def free_ports(size: int, first: int = 20000, last: int = 60999) -> int:
    """The first of ``size`` consecutive ports free on 127.0.0.1 (they may be taken after).

    The search starts at a random port of the range and wraps around, so that test runs side
    by side seldom reach for the same ports at once. A port is probed as the simulator and the
    API bind theirs, with SO_REUSEADDR: a port whose last connections linger in TIME_WAIT is
    free for them, and the probe must not count it as taken.
    """
    span = last - first - size + 2
    if span < 1:
        raise RuntimeError(f"no {size} consecutive ports in {first}..{last}")
    base = first + _PORT_CHOICE.randrange(span)
    scanned = 0
    while scanned < span:
        held: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                held.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            skip = port + 1 - base
            scanned += skip
            base = first + (base + skip - first) % span
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {size} consecutive free ports in {first}..{last}")
