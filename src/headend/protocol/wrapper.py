"""The IEC 62056-47 TCP wrapper, sans I/O: an 8-byte header (version, source, destination,
length) before each APDU.

``WrapperReader`` cuts a byte stream into APDUs by the header's length. A meter is untrusted:
a header declaring more than ``max_apdu`` bytes (the PDU we proposed plus any tolerance its
device profile grants) is refused as soon as the header is read, before its body is awaited
or buffered.
"""

from __future__ import annotations

from dataclasses import dataclass

from headend.protocol.errors import MalformedFrameError

WRAPPER_VERSION = 1
HEADER = 8


def header(source: int, destination: int, length: int) -> bytes:
    return (
        WRAPPER_VERSION.to_bytes(2, "big")
        + source.to_bytes(2, "big")
        + destination.to_bytes(2, "big")
        + length.to_bytes(2, "big")
    )


@dataclass(frozen=True, slots=True)
class WrapperApdu:
    source: int
    destination: int
    apdu: bytes


class WrapperReader:
    def __init__(self, max_apdu: int = 0xFFFF) -> None:
        self.max_apdu = max_apdu
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_apdu(self) -> WrapperApdu | None:
        """The next complete APDU, or None if more bytes are needed."""
        buf = self._buffer
        if len(buf) < HEADER:
            return None
        version = int.from_bytes(buf[0:2], "big")
        if version != WRAPPER_VERSION:
            buf.clear()
            raise MalformedFrameError(f"wrapper version {version}, expected {WRAPPER_VERSION}")
        length = int.from_bytes(buf[6:8], "big")
        if length > self.max_apdu:
            buf.clear()
            raise MalformedFrameError(
                f"wrapper header declares {length} bytes, more than the {self.max_apdu} "
                "the meter may send"
            )
        if len(buf) < HEADER + length:
            return None
        found = WrapperApdu(
            int.from_bytes(buf[2:4], "big"),
            int.from_bytes(buf[4:6], "big"),
            bytes(buf[HEADER : HEADER + length]),
        )
        del buf[: HEADER + length]
        return found

    def clear(self) -> None:
        self._buffer.clear()
