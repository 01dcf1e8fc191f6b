"""COSEM data as a meter writes and reads it: A-XDR values, date-times, selective access.

dlms-cosem decodes values from the client's side; a server needs the other direction (encoding
every value it serves) and some decodings dlms-cosem lacks: selective access by entry (selector
2), and date-times read by the meter's own deviation semantics rather than returned naive. Values
are encoded straight to bytes by small functions, and decoded into ``Value`` trees that keep the
DLMS type tag so that a SET with the wrong type can be refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from headend.domain.obis import Obis, ObisError
from headend.profiles.model import DeviationSemantics


class DataError(ValueError):
    """Bytes are not the COSEM data they should be."""


# --- A-XDR tags ------------------------------------------------------------------------------

NULL, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING = 0, 1, 2, 3, 4
DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, OCTET_STRING, VISIBLE_STRING, UTF8_STRING = 5, 6, 9, 10, 12
INTEGER, LONG, UNSIGNED, LONG_UNSIGNED, LONG64, LONG64_UNSIGNED, ENUM = 15, 16, 17, 18, 20, 21, 22
DATE_TIME, DATE, TIME = 25, 26, 27

_FIXED = {
    BOOLEAN: (1, False),
    DOUBLE_LONG: (4, True),
    DOUBLE_LONG_UNSIGNED: (4, False),
    INTEGER: (1, True),
    LONG: (2, True),
    UNSIGNED: (1, False),
    LONG_UNSIGNED: (2, False),
    LONG64: (8, True),
    LONG64_UNSIGNED: (8, False),
    ENUM: (1, False),
}
_OPAQUE_FIXED = {DATE_TIME: 12, DATE: 5, TIME: 4}
_VARIABLE = (BIT_STRING, OCTET_STRING, VISIBLE_STRING, UTF8_STRING)


def encode_length(length: int) -> bytes:
    """A-XDR length: one byte below 128, else 0x80 + number of bytes, then the bytes."""
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def decode_length(data: bytes, pos: int) -> tuple[int, int]:
    try:
        first = data[pos]
        if first < 0x80:
            return first, pos + 1
        size = first & 0x7F
        if not 0 < size <= 4 or pos + 1 + size > len(data):
            raise DataError("bad A-XDR length")
        return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size
    except IndexError as exc:
        raise DataError("data ends inside a length") from exc


def _fixed(tag: int, value: int) -> bytes:
    size, signed = _FIXED[tag]
    try:
        return bytes((tag,)) + value.to_bytes(size, "big", signed=signed)
    except OverflowError as exc:
        raise DataError(f"{value} does not fit DLMS type {tag}") from exc


def null() -> bytes:
    return b"\x00"


def boolean(value: bool) -> bytes:
    return bytes((BOOLEAN, 0x01 if value else 0x00))


def integer(value: int) -> bytes:
    return _fixed(INTEGER, value)


def long(value: int) -> bytes:
    return _fixed(LONG, value)


def unsigned(value: int) -> bytes:
    return _fixed(UNSIGNED, value)


def long_unsigned(value: int) -> bytes:
    return _fixed(LONG_UNSIGNED, value)


def double_long_unsigned(value: int) -> bytes:
    return _fixed(DOUBLE_LONG_UNSIGNED, value)


def long64_unsigned(value: int) -> bytes:
    return _fixed(LONG64_UNSIGNED, value)


def enum(value: int) -> bytes:
    return _fixed(ENUM, value)


def octet_string(value: bytes) -> bytes:
    return bytes((OCTET_STRING,)) + encode_length(len(value)) + value


def visible_string(value: str) -> bytes:
    raw = value.encode("ascii")
    return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw


def structure(*items: bytes) -> bytes:
    return bytes((STRUCTURE,)) + encode_length(len(items)) + b"".join(items)


def array(items: list[bytes]) -> bytes:
    return bytes((ARRAY,)) + encode_length(len(items)) + b"".join(items)


@dataclass(frozen=True)
class Value:
    """A decoded COSEM value: its type tag and its content (``list[Value]`` for arrays and
    structures, ``int``/``bool`` for numbers, ``bytes`` for strings and date-times)."""

    tag: int
    content: object

    def as_int(self) -> int:
        if isinstance(self.content, bool) or not isinstance(self.content, int):
            raise DataError(f"expected an integer, got type {self.tag}")
        return self.content

    def as_bytes(self) -> bytes:
        if not isinstance(self.content, bytes):
            raise DataError(f"expected a string, got type {self.tag}")
        return self.content

    def items(self) -> list[Value]:
        if self.tag not in (ARRAY, STRUCTURE) or not isinstance(self.content, list):
            raise DataError(f"expected an array or structure, got type {self.tag}")
        return self.content


def decode(data: bytes, pos: int = 0) -> tuple[Value, int]:
    """Decode one value at ``pos``; returns it and the position after it."""
    if pos >= len(data):
        raise DataError("data ends where a value should start")
    tag = data[pos]
    pos += 1
    if tag == NULL:
        return Value(NULL, None), pos
    if tag in (ARRAY, STRUCTURE):
        count, pos = decode_length(data, pos)
        items: list[Value] = []
        for _ in range(count):
            item, pos = decode(data, pos)
            items.append(item)
        return Value(tag, items), pos
    if tag in _FIXED:
        size, signed = _FIXED[tag]
        if pos + size > len(data):
            raise DataError("data ends inside a value")
        number = int.from_bytes(data[pos : pos + size], "big", signed=signed)
        return Value(tag, bool(number) if tag == BOOLEAN else number), pos + size
    if tag in _OPAQUE_FIXED:
        size = _OPAQUE_FIXED[tag]
        if pos + size > len(data):
            raise DataError("data ends inside a value")
        return Value(tag, bytes(data[pos : pos + size])), pos + size
    if tag in _VARIABLE:
        length, pos = decode_length(data, pos)
        if tag == BIT_STRING:
            length = (length + 7) // 8
        if pos + length > len(data):
            raise DataError("data ends inside a string")
        return Value(tag, bytes(data[pos : pos + length])), pos + length
    raise DataError(f"unsupported DLMS data type {tag}")


# --- date-time (12 octets) --------------------------------------------------------------------

DEVIATION_UNSPECIFIED = -0x8000
CLOCK_STATUS_INVALID = 0x01
CLOCK_STATUS_DOUBTFUL = 0x02
CLOCK_STATUS_DST = 0x80


def encode_datetime(
    moment: datetime, zone: ZoneInfo, semantics: DeviationSemantics, status: int = 0
) -> bytes:
    """The 12-octet date-time of ``moment`` in local time of ``zone``."""
    local = moment.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if semantics is DeviationSemantics.MINUTES_TO_UTC:
        deviation = -minutes
    elif semantics is DeviationSemantics.MINUTES_FROM_UTC:
        deviation = minutes
    else:
        deviation = DEVIATION_UNSPECIFIED
    if local.dst():
        status |= CLOCK_STATUS_DST
    return (
        local.year.to_bytes(2, "big")
        + bytes((local.month, local.day, local.isoweekday()))
        + bytes((local.hour, local.minute, local.second, local.microsecond // 10000))
        + deviation.to_bytes(2, "big", signed=True)
        + bytes((status,))
    )


def decode_datetime(raw: bytes, zone: ZoneInfo, semantics: DeviationSemantics) -> datetime:
    """An aware UTC datetime from 12 octets, read with the meter's deviation semantics.

    Deviation 0x8000 means local time in ``zone``. An explicit deviation is read by the meter's
    semantics; a meter whose own semantics are ``unspecified`` reads it the Blue Book way.
    Wildcards (0xFF fields) are refused: a range bound must be a definite time.
    """
    if len(raw) != 12:
        raise DataError(f"a date-time is 12 octets, got {len(raw)}")
    year = int.from_bytes(raw[0:2], "big")
    month, day, hour, minute, second = raw[2], raw[3], raw[5], raw[6], raw[7]
    hundredths = 0 if raw[8] == 0xFF else raw[8]
    if year == 0xFFFF or 0xFF in (month, day, hour, minute, second):
        raise DataError("a date-time with unspecified fields is not a definite time")
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    try:
        local = datetime(year, month, day, hour, minute, second, hundredths * 10000)
    except ValueError as exc:
        raise DataError(f"not a valid date-time: {exc}") from exc
    if deviation == DEVIATION_UNSPECIFIED:
        return local.replace(tzinfo=zone).astimezone(UTC)
    if semantics is DeviationSemantics.MINUTES_FROM_UTC:
        return local.replace(tzinfo=UTC) - timedelta(minutes=deviation)
    return local.replace(tzinfo=UTC) + timedelta(minutes=deviation)


# --- selective access -------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureRef:
    """A capture object definition: class, logical name, attribute, data index."""

    class_id: int
    obis: Obis
    attribute: int
    data_index: int = 0

    def to_bytes(self) -> bytes:
        return structure(
            long_unsigned(self.class_id),
            octet_string(self.obis.to_bytes()),
            integer(self.attribute),
            long_unsigned(self.data_index),
        )

    @classmethod
    def from_value(cls, value: Value) -> CaptureRef:
        items = value.items()
        if len(items) != 4:
            raise DataError("a capture object definition has four elements")
        try:
            obis = Obis.from_bytes(items[1].as_bytes())
        except ObisError as exc:
            raise DataError(str(exc)) from exc
        return cls(
            class_id=items[0].as_int(),
            obis=obis,
            attribute=items[2].as_int(),
            data_index=items[3].as_int(),
        )


@dataclass(frozen=True)
class RangeSelector:
    """Selector 1, range_descriptor: rows whose restricting value is within from..to."""

    restricting: CaptureRef
    from_raw: bytes  # 12-octet date-times, read with the meter's deviation semantics
    to_raw: bytes
    selected: tuple[CaptureRef, ...] = ()

    SELECTOR = 1

    def to_bytes(self) -> bytes:
        return bytes((self.SELECTOR,)) + structure(
            self.restricting.to_bytes(),
            octet_string(self.from_raw),
            octet_string(self.to_raw),
            array([ref.to_bytes() for ref in self.selected]),
        )


@dataclass(frozen=True)
class EntrySelector:
    """Selector 2, entry_descriptor: entries and columns by number, from 1; 0 means the last."""

    from_entry: int
    to_entry: int = 0
    from_selected_value: int = 1
    to_selected_value: int = 0

    SELECTOR = 2

    def to_bytes(self) -> bytes:
        return bytes((self.SELECTOR,)) + structure(
            double_long_unsigned(self.from_entry),
            double_long_unsigned(self.to_entry),
            long_unsigned(self.from_selected_value),
            long_unsigned(self.to_selected_value),
        )


AccessSelector = RangeSelector | EntrySelector


@dataclass(frozen=True)
class UnknownSelector:
    """A selector this meter does not implement; the parameters are skipped."""

    selector: int


def decode_selector(data: bytes, pos: int) -> tuple[AccessSelector | UnknownSelector, int]:
    """Decode access_selector (one octet) and its parameters (one value)."""
    if pos >= len(data):
        raise DataError("access selection announced but absent")
    selector = data[pos]
    params, end = decode(data, pos + 1)
    if selector == RangeSelector.SELECTOR:
        items = params.items()
        if len(items) != 4:
            raise DataError("a range descriptor has four elements")
        bounds = []
        for bound in items[1:3]:
            if bound.tag not in (OCTET_STRING, DATE_TIME):
                raise DataError("a range bound must be a date-time")
            bounds.append(bound.as_bytes())
        selected = tuple(CaptureRef.from_value(item) for item in items[3].items())
        restricting = CaptureRef.from_value(items[0])
        return RangeSelector(restricting, bounds[0], bounds[1], selected), end
    if selector == EntrySelector.SELECTOR:
        items = params.items()
        if len(items) != 4:
            raise DataError("an entry descriptor has four elements")
        numbers = [item.as_int() for item in items]
        return EntrySelector(*numbers), end
    return UnknownSelector(selector), end
