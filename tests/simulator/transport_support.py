"""Helpers for the transport tests: a fake logical device and small blocking clients.

The fake implements the same ``Device``/``Association`` protocols as the COSEM server, so the
transports are tested with bytes alone: it answers ``b"ok:" + request``, ``big:N`` with N
bytes, and ``bye`` by releasing.
"""

from __future__ import annotations

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
