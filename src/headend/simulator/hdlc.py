"""HDLC frames (IEC 62056-46) as a meter sees them: requests in, responses out.

dlms-cosem's frame classes are written from the client's side (a frame's destination is the
client, and SNRM and DISC cannot be decoded); this module decodes what a client sends to a
server station and encodes what the station answers. The bytes are the same as dlms-cosem's,
which the tests pin in both directions.

A frame on the wire::

    7E | format (2) | destination (1, 2, 4) | source | control | [HCS (2) | info] | FCS (2) | 7E

Frames are read by their length field, never by looking for the next 0x7E: the check
sequence and the information field may contain that byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

FLAG = 0x7E
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
MAX_FRAME_LENGTH = 0x7FF
DEFAULT_MAX_INFO = 128
DEFAULT_WINDOW = 1


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def check_sequence(data: bytes | bytearray | memoryview) -> bytes:
    """The HDLC check sequence (CRC-16/X.25) of ``data``, least significant byte first."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    crc ^= 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


class FrameError(ValueError):
    """Bytes that are not a well-formed HDLC frame (bad format, length, address or check)."""


class Kind(Enum):
    I = "I"  # noqa: E741
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"


_UNNUMBERED = {
    0x83: Kind.SNRM,
    0x43: Kind.DISC,
    0x63: Kind.UA,
    0x0F: Kind.DM,
    0x87: Kind.FRMR,
    0x03: Kind.UI,
}
_UNNUMBERED_CODE = {kind: code for code, kind in _UNNUMBERED.items()}


@dataclass(frozen=True, slots=True)
class Control:
    kind: Kind
    poll_final: bool = True
    ns: int = 0  # send sequence number (I frames)
    nr: int = 0  # receive sequence number (I and S frames)

    @classmethod
    def from_byte(cls, value: int) -> Control:
        pf = bool(value & 0x10)
        if value & 0x01 == 0:
            return cls(Kind.I, pf, (value >> 1) & 0x07, value >> 5)
        if value & 0x03 == 0x01:
            kind = {0x01: Kind.RR, 0x05: Kind.RNR}.get(value & 0x0F)
            if kind is None:
                raise FrameError(f"unsupported supervisory control byte 0x{value:02x}")
            return cls(kind, pf, 0, value >> 5)
        kind = _UNNUMBERED.get(value & 0xEF)
        if kind is None:
            raise FrameError(f"unknown control byte 0x{value:02x}")
        return cls(kind, pf)

    def to_byte(self) -> int:
        pf = 0x10 if self.poll_final else 0
        if self.kind is Kind.I:
            return (self.nr << 5) | pf | (self.ns << 1)
        if self.kind is Kind.RR:
            return (self.nr << 5) | pf | 0x01
        if self.kind is Kind.RNR:
            return (self.nr << 5) | pf | 0x05
        return _UNNUMBERED_CODE[self.kind] | pf


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """A server's HDLC address: upper (logical device) and lower (physical) parts.

    ``size`` is how many bytes it took on the wire (1, 2 or 4); an answer uses the same size.
    ``physical`` is None when the client sent a one-byte address.
    """

    logical: int
    physical: int | None
    size: int

    def to_bytes(self) -> bytes:
        if self.size == 1:
            return bytes(((self.logical << 1) | 1,))
        physical = self.physical or 0
        if self.size == 2:
            return bytes((self.logical << 1, (physical << 1) | 1))
        return bytes(
            (
                (self.logical >> 7) << 1,
                (self.logical & 0x7F) << 1,
                (physical >> 7) << 1,
                ((physical & 0x7F) << 1) | 1,
            )
        )


def _split_address(data: bytes | bytearray, start: int) -> tuple[bytes, int]:
    end = start
    while end < len(data) and not data[end] & 1:
        end += 1
        if end - start >= 4:
            raise FrameError("an HDLC address is longer than 4 bytes")
    if end >= len(data):
        raise FrameError("an HDLC address has no end mark")
    return bytes(data[start : end + 1]), end + 1


def _server_address(raw: bytes) -> ServerAddress:
    if len(raw) == 1:
        return ServerAddress(raw[0] >> 1, None, 1)
    if len(raw) == 2:
        return ServerAddress(raw[0] >> 1, raw[1] >> 1, 2)
    if len(raw) == 4:
        upper = ((raw[0] >> 1) << 7) | (raw[1] >> 1)
        lower = ((raw[2] >> 1) << 7) | (raw[3] >> 1)
        return ServerAddress(upper, lower, 4)
    raise FrameError(f"a server address is 1, 2 or 4 bytes, got {len(raw)}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One HDLC frame from the server's point of view."""

    server: ServerAddress
    client: int  # client SAP, a one-byte address
    control: Control
    info: bytes = b""
    segmented: bool = False

    @classmethod
    def decode(cls, raw: bytes | bytearray, *, from_client: bool = True) -> Frame:
        """Decode a whole frame, both flags included, checking length, HCS and FCS."""
        if len(raw) < 9 or raw[0] != FLAG or raw[-1] != FLAG:
            raise FrameError("an HDLC frame starts and ends with 0x7E and has 9 bytes or more")
        if raw[1] & 0xF0 != 0xA0:
            raise FrameError(f"frame format 0x{raw[1]:02x} is not HDLC type 3")
        length = ((raw[1] & 0x07) << 8) | raw[2]
        if length + 2 != len(raw):
            raise FrameError(f"the length field says {length + 2} bytes, the frame has {len(raw)}")
        body = raw[1:-1]
        if check_sequence(body[:-2]) != body[-2:]:
            raise FrameError("frame check sequence (FCS) mismatch")
        first, position = _split_address(body, 2)
        second, position = _split_address(body, position)
        server_raw, client_raw = (first, second) if from_client else (second, first)
        if len(client_raw) != 1:
            raise FrameError("a client address is one byte")
        control = Control.from_byte(body[position])
        position += 1
        info = b""
        if position < len(body) - 2:
            if check_sequence(body[:position]) != body[position : position + 2]:
                raise FrameError("header check sequence (HCS) mismatch")
            info = bytes(body[position + 2 : -2])
        return cls(
            _server_address(server_raw),
            client_raw[0] >> 1,
            control,
            info,
            bool(raw[1] & 0x08),
        )

    def encode(self, *, from_server: bool = True) -> bytes:
        """Encode the frame with both flags; ``from_server`` puts the client first."""
        server = self.server.to_bytes()
        client = bytes(((self.client << 1) | 1,))
        addresses = client + server if from_server else server + client
        length = 2 + len(addresses) + 1 + 2 + (len(self.info) + 2 if self.info else 0)
        if length > MAX_FRAME_LENGTH:
            raise FrameError(f"frame of {length} bytes exceeds the 11-bit length field")
        first = 0xA0 | (0x08 if self.segmented else 0) | (length >> 8)
        header = bytes((first, length & 0xFF)) + addresses + bytes((self.control.to_byte(),))
        body = header + check_sequence(header) + self.info if self.info else header
        return b"\x7e" + body + check_sequence(body) + b"\x7e"


class FrameReader:
    """Cuts a byte stream into frames by their length field.

    Bytes before a flag are noise and skipped; two flags in a row are one separator; the
    closing flag of a frame may also open the next one.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        buffer = self._buffer
        while True:
            start = buffer.find(FLAG)
            if start < 0:
                buffer.clear()
                break
            if start:
                del buffer[:start]
            while len(buffer) > 1 and buffer[1] == FLAG:
                del buffer[0]
            if len(buffer) < 3:
                break
            if buffer[1] & 0xF0 != 0xA0:
                del buffer[0]
                continue
            total = (((buffer[1] & 0x07) << 8) | buffer[2]) + 2
            if total < 9:
                del buffer[0]
                continue
            if len(buffer) < total:
                break
            if buffer[total - 1] != FLAG:
                del buffer[0]
                continue
            frames.append(bytes(buffer[:total]))
            del buffer[: total - 1]  # the closing flag may open the next frame
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


@dataclass(frozen=True, slots=True)
class LinkParameters:
    """What a station transmits and receives at most: information field bytes and window."""

    max_info_tx: int = DEFAULT_MAX_INFO
    max_info_rx: int = DEFAULT_MAX_INFO
    window_tx: int = DEFAULT_WINDOW
    window_rx: int = DEFAULT_WINDOW

    def to_info(self) -> bytes:
        """The UA information field: format 0x81, group 0x80, the four parameters."""
        params = b"".join(
            bytes((pid, size)) + value.to_bytes(size, "big")
            for pid, size, value in (
                (0x05, _size(self.max_info_tx), self.max_info_tx),
                (0x06, _size(self.max_info_rx), self.max_info_rx),
                (0x07, 4, self.window_tx),
                (0x08, 4, self.window_rx),
            )
        )
        return bytes((0x81, 0x80, len(params))) + params

    @classmethod
    def from_info(cls, info: bytes) -> LinkParameters:
        """Parameters proposed in an SNRM, or the defaults where absent."""
        values = {0x05: DEFAULT_MAX_INFO, 0x06: DEFAULT_MAX_INFO, 0x07: 1, 0x08: 1}
        if len(info) >= 3 and info[0] == 0x81 and info[1] == 0x80:
            body, position = info[3 : 3 + info[2]], 0
            while position + 2 <= len(body):
                pid, size = body[position], body[position + 1]
                value = int.from_bytes(body[position + 2 : position + 2 + size], "big")
                if pid in values and size:
                    values[pid] = value
                position += 2 + size
        return cls(values[0x05], values[0x06], values[0x07], values[0x08])

    def agree(self, proposal: LinkParameters) -> LinkParameters:
        """What this station uses, given the client's proposal (its own point of view)."""
        return LinkParameters(
            max_info_tx=max(1, min(self.max_info_tx, proposal.max_info_rx)),
            max_info_rx=max(1, min(self.max_info_rx, proposal.max_info_tx)),
            window_tx=max(1, min(self.window_tx, proposal.window_rx, 7)),
            window_rx=max(1, min(self.window_rx, proposal.window_tx, 7)),
        )


def _size(value: int) -> int:
    return 1 if value < 0x100 else 2
