"""HDLC frames of IEC 62056-46 (frame format type 3), both directions, and a reader that
cuts a byte stream into frames **by their length field**.

A frame is ``7E | format(2) | destination | source | control | [HCS(2) | information] |
FCS(2) | 7E``. The format field carries the frame's length, so a frame ends where its length
says: a check-sequence byte that happens to be 0x7E (about one frame in 256) ends nothing.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass

from headend.protocol.errors import MalformedFrameError

FLAG = 0x7E

# control field values (poll/final bit set)
SNRM = 0x93
DISC = 0x53
UA = 0x73
DM = 0x1F
FRMR = 0x97
UI = 0x13
PF = 0x10

LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"


# CRC-16/X.25 is the bit-reflected CRC-16/CCITT with initial value and final XOR 0xFFFF. The
# standard library computes the unreflected CCITT CRC in C (binascii.crc_hqx); reflecting each
# input byte on the way in (bytes.translate, also in C) and the 16-bit result on the way out
# gives the same value as a byte-wise reflected table, about fifty times faster in CPython.
_REFLECT8 = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def fcs16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 as HDLC uses it (sent least significant byte first)."""
    crc = crc_hqx(bytes(data).translate(_REFLECT8), 0xFFFF)
    reflected = (_REFLECT8[crc & 0xFF] << 8) | _REFLECT8[crc >> 8]
    return reflected ^ 0xFFFF


def client_address(sap: int) -> bytes:
    if not 0 <= sap < 128:
        raise ValueError(f"client SAP {sap} is outside 0..127")
    return bytes(((sap << 1) | 1,))


def server_address(logical: int, physical: int | None) -> bytes:
    """One, two or four bytes: upper (logical) and lower (physical) HDLC address."""
    if physical is None:
        if not 0 <= logical < 128:
            raise ValueError(f"server logical address {logical} is outside 0..127")
        return bytes(((logical << 1) | 1,))
    if not (0 <= logical < 0x4000 and 0 <= physical < 0x4000):
        raise ValueError("HDLC server addresses are limited to 0..16383")
    if logical < 128 and physical < 128:
        return bytes((logical << 1, (physical << 1) | 1))
    return bytes(
        (
            (logical >> 7) << 1,
            (logical & 0x7F) << 1,
            (physical >> 7) << 1,
            ((physical & 0x7F) << 1) | 1,
        )
    )


def _address_length(data: bytes, pos: int, end: int) -> int:
    """The length of the address at ``pos``; it must end before ``end``."""
    for n in range(4):
        if pos + n >= end:
            break
        if data[pos + n] & 1:
            if n + 1 == 3:
                break
            return n + 1
    raise MalformedFrameError("HDLC address is not 1, 2 or 4 bytes long")


@dataclass(frozen=True, slots=True)
class Frame:
    destination: bytes  # encoded address
    source: bytes
    control: int
    information: bytes = b""
    segmented: bool = False

    # --- control field --------------------------------------------------------------------
    @property
    def is_information(self) -> bool:
        return not self.control & 0x01

    @property
    def is_rr(self) -> bool:
        return self.control & 0x0F == 0x01

    @property
    def kind(self) -> int:
        """The control byte with sequence numbers cleared and P/F set, for U-frames."""
        return self.control | PF

    @property
    def poll_final(self) -> bool:
        return bool(self.control & PF)

    @property
    def send_sequence(self) -> int:
        return (self.control >> 1) & 0x07

    @property
    def receive_sequence(self) -> int:
        return (self.control >> 5) & 0x07

    # --- codec ----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        has_info = bool(self.information)
        length = 2 + len(self.destination) + len(self.source) + 1 + 2
        if has_info:
            length += 2 + len(self.information)
        if length > 0x7FF:
            raise ValueError(f"HDLC frame of {length} bytes exceeds the 11-bit length")
        fmt = 0xA000 | (0x0800 if self.segmented else 0) | length
        header = fmt.to_bytes(2, "big") + self.destination + self.source + bytes((self.control,))
        body = header
        if has_info:
            body += fcs16(header).to_bytes(2, "little") + self.information
        return b"\x7e" + body + fcs16(body).to_bytes(2, "little") + b"\x7e"

    @classmethod
    def from_bytes(cls, data: bytes) -> Frame:
        """Decode one frame, with or without its flags, checking HCS and FCS."""
        if data[:1] == b"\x7e":  # with flags: a format field never starts with 0x7E
            if data[-1:] != b"\x7e":
                raise MalformedFrameError("HDLC frame lacks its closing flag")
            data = data[1:-1]
        if len(data) < 7 or data[0] & 0xF0 != 0xA0:
            raise MalformedFrameError("not an HDLC frame of format type 3")
        length = ((data[0] & 0x07) << 8) | data[1]
        if length != len(data):
            raise MalformedFrameError(f"HDLC frame says {length} bytes, has {len(data)}")
        if fcs16(data[:-2]) != int.from_bytes(data[-2:], "little"):
            raise MalformedFrameError("HDLC frame check sequence is wrong")
        pos = 2
        header_end = len(data) - 3  # the control byte and the FCS follow the addresses
        dest_len = _address_length(data, pos, header_end)
        destination = bytes(data[pos : pos + dest_len])
        pos += dest_len
        src_len = _address_length(data, pos, header_end)
        source = bytes(data[pos : pos + src_len])
        pos += src_len
        control = data[pos]
        pos += 1
        information = b""
        if len(data) - 2 > pos:
            if len(data) - 2 < pos + 2:
                raise MalformedFrameError("HDLC frame too short for its header check sequence")
            if fcs16(data[:pos]) != int.from_bytes(data[pos : pos + 2], "little"):
                raise MalformedFrameError("HDLC header check sequence is wrong")
            information = bytes(data[pos + 2 : -2])
        return cls(destination, source, control, information, bool(data[0] & 0x08))


def information_frame(
    destination: bytes,
    source: bytes,
    payload: bytes,
    *,
    send_sequence: int,
    receive_sequence: int,
    final: bool,
    segmented: bool,
) -> Frame:
    control = (receive_sequence << 5) | (PF if final else 0) | (send_sequence << 1)
    return Frame(destination, source, control, payload, segmented)


def receive_ready(destination: bytes, source: bytes, receive_sequence: int) -> Frame:
    return Frame(destination, source, 0x01 | PF | (receive_sequence << 5))


class FrameReader:
    """Cuts a byte stream into frames by the length in their format field.

    Bytes before an opening flag are skipped; the closing flag of one frame may be the
    opening flag of the next. A frame whose closing flag is not where its length puts it
    raises ``MalformedFrameError``.
    """

    MAX_BUFFER = 16 * 2048

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > self.MAX_BUFFER:
            self._buffer.clear()
            raise MalformedFrameError("HDLC receive buffer overflow without a frame")

    def next_frame(self) -> bytes | None:
        """The bytes of the next complete frame (without flags), or None if more are needed."""
        buf = self._buffer
        while True:
            start = buf.find(b"\x7e")
            if start < 0:
                buf.clear()
                return None
            if start:
                del buf[:start]
            while len(buf) >= 2 and buf[1] == FLAG:
                del buf[0]
            if len(buf) < 3:
                return None
            if buf[1] & 0xF0 != 0xA0:
                # a flag followed by something that is not a format field: resynchronise
                del buf[0]
                continue
            length = ((buf[1] & 0x07) << 8) | buf[2]
            if length < 7:
                del buf[0]
                raise MalformedFrameError(f"HDLC frame length {length} is too short")
            if len(buf) < length + 2:
                return None
            if buf[length + 1] != FLAG:
                del buf[: length + 1]
                raise MalformedFrameError("HDLC frame does not end where its length says")
            frame = bytes(buf[1 : length + 1])
            del buf[: length + 1]  # keep the closing flag: it may open the next frame
            return frame

    def clear(self) -> None:
        self._buffer.clear()


@dataclass(frozen=True, slots=True)
class LinkParameters:
    """HDLC parameters of IEC 62056-46 6.4.4.4.3.2, from the sender's point of view."""

    max_info_transmit: int = 128
    max_info_receive: int = 128
    window_transmit: int = 1
    window_receive: int = 1

    def to_bytes(self) -> bytes:
        def param(ident: int, value: int, width: int | None = None) -> bytes:
            size = width or (1 if value < 256 else 2)
            return bytes((ident, size)) + value.to_bytes(size, "big")

        body = (
            param(0x05, self.max_info_transmit)
            + param(0x06, self.max_info_receive)
            + param(0x07, self.window_transmit, 4)
            + param(0x08, self.window_receive, 4)
        )
        return b"\x81\x80" + bytes((len(body),)) + body

    @classmethod
    def from_bytes(cls, data: bytes, default: LinkParameters | None = None) -> LinkParameters:
        base = default or cls()
        if not data:
            return base
        if len(data) < 3 or data[0] != 0x81 or data[1] != 0x80:
            raise MalformedFrameError("HDLC parameter field has a wrong format or group id")
        values = {
            0x05: base.max_info_transmit,
            0x06: base.max_info_receive,
            0x07: base.window_transmit,
            0x08: base.window_receive,
        }
        pos, end = 3, min(len(data), 3 + data[2])
        while pos + 2 <= end:
            ident, size = data[pos], data[pos + 1]
            raw = data[pos + 2 : pos + 2 + size]
            if len(raw) != size:
                raise MalformedFrameError("HDLC parameter runs past the end")
            if ident in values:
                values[ident] = int.from_bytes(raw, "big")
            pos += 2 + size
        return cls(values[0x05], values[0x06], values[0x07], values[0x08])
