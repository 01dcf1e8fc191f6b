"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2), both directions.

Decoding gives plain Python values: ``None`` (null-data, dont-care), ``bool``, ``int``,
``float``, ``bytes`` (octet-string, and date-time/date/time in their 12/5/4-byte form),
``str`` (visible-string, utf8-string), ``list`` (array), ``tuple`` (structure) and
:class:`BitString`. Encoding is done with one small function per type, so that what goes on
the wire is always the type the meter expects (``long_unsigned(8)`` is not
``double_long_unsigned(8)``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from headend.protocol.errors import DecodeError


@dataclass(frozen=True, slots=True)
class BitString:
    length: int  # in bits
    value: bytes

    def bit(self, n: int) -> bool:
        """Bit ``n`` counted from the first (most significant) bit sent."""
        return bool(self.value[n // 8] & (0x80 >> (n % 8)))


Value: TypeAlias = (
    "bool | int | float | bytes | str | BitString | list[Value] | tuple[Value, ...] | None"
)

NULL, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING = 0, 1, 2, 3, 4
DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, OCTET_STRING, VISIBLE_STRING, UTF8_STRING = 5, 6, 9, 10, 12
BCD, INTEGER, LONG, UNSIGNED, LONG_UNSIGNED, COMPACT_ARRAY = 13, 15, 16, 17, 18, 19
LONG64, LONG64_UNSIGNED, ENUM, FLOAT32, FLOAT64 = 20, 21, 22, 23, 24
DATE_TIME, DATE, TIME, DONT_CARE = 25, 26, 27, 255

# fixed-size types: tag -> (size, struct format)
_FIXED: dict[int, tuple[int, str]] = {
    DOUBLE_LONG: (4, ">i"),
    DOUBLE_LONG_UNSIGNED: (4, ">I"),
    INTEGER: (1, ">b"),
    LONG: (2, ">h"),
    UNSIGNED: (1, ">B"),
    LONG_UNSIGNED: (2, ">H"),
    LONG64: (8, ">q"),
    LONG64_UNSIGNED: (8, ">Q"),
    ENUM: (1, ">B"),
    FLOAT32: (4, ">f"),
    FLOAT64: (8, ">d"),
    BCD: (1, ">B"),
}
_OPAQUE_FIXED = {DATE_TIME: 12, DATE: 5, TIME: 4}


# Bounds on what a meter may send (STYLE 14: checked before anything is allocated).
# COSEM data nests a few levels deep (a profile buffer: array of structures of values; a
# capture object list: array of structures); 16 levels is far past any real object and far
# below the interpreter's recursion limit.
MAX_DEPTH = 16
# An empty array is two bytes on the wire and a Python list of 56 bytes or more: at most one
# array or structure per this many bytes received, so hostile data costs the heap a bounded
# multiple of its size (real data holds far fewer: a profile row or a capture object is a
# structure of 14 bytes or more). Small values may nest up to MAX_DEPTH containers besides.
BYTES_PER_CONTAINER = 4


def decode_length(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a variable-length quantity at ``pos``; return (length, next position)."""
    if pos >= len(data):
        raise DecodeError("A-XDR length prefix runs past the end")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > len(data):
        raise DecodeError(f"bad A-XDR length prefix 0x{first:02x}")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


_UNPACK: dict[int, tuple[int, Callable[[bytes, int], tuple[Any, ...]]]] = {
    tag: (size, struct.Struct(fmt).unpack_from) for tag, (size, fmt) in _FIXED.items()
}


def _decode_at(data: bytes, n: int, pos: int, depth: int, budget: list[int]) -> tuple[Value, int]:
    if pos >= n:
        raise DecodeError("A-XDR data runs past the end")
    tag = data[pos]
    pos += 1
    fixed = _UNPACK.get(tag)
    if fixed is not None:
        width, unpack = fixed
        end = pos + width
        if end > n:
            raise DecodeError(f"A-XDR value of tag {tag} runs past the end")
        value: Value = unpack(data, pos)[0]
        return value, end
    if tag in (STRUCTURE, ARRAY):
        if depth >= MAX_DEPTH:
            raise DecodeError(f"A-XDR data nests deeper than {MAX_DEPTH} levels")
        budget[0] -= 1
        if budget[0] < 0:
            raise DecodeError(
                f"A-XDR data holds more than one array or structure per {BYTES_PER_CONTAINER} bytes"
            )
        count = data[pos]  # past the end: IndexError, a DecodeError in decode_prefix
        if count < 0x80:
            pos += 1
        else:
            count, pos = decode_length(data, pos)
        # every element takes at least one byte (its tag): a count the bytes left cannot
        # hold is refused before a list of that size is built
        if count > n - pos:
            raise DecodeError(
                f"A-XDR {'structure' if tag == STRUCTURE else 'array'} claims {count} "
                f"elements with {n - pos} bytes left"
            )
        items: list[Value] = []
        append = items.append
        for _ in range(count):
            item, pos = _decode_at(data, n, pos, depth + 1, budget)
            append(item)
        return (tuple(items) if tag == STRUCTURE else items), pos
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        length, pos = decode_length(data, pos)
        end = pos + length
        if end > n:
            raise DecodeError("A-XDR string runs past the end")
        raw = data[pos:end]
        if tag == OCTET_STRING:
            return raw, end
        return raw.decode("utf-8" if tag == UTF8_STRING else "latin-1"), end
    if tag in (NULL, DONT_CARE):
        return None, pos
    if tag == BOOLEAN:
        if pos >= n:
            raise DecodeError("A-XDR boolean runs past the end")
        return data[pos] != 0, pos + 1
    if tag in _OPAQUE_FIXED:
        end = pos + _OPAQUE_FIXED[tag]
        if end > n:
            raise DecodeError("A-XDR date/time runs past the end")
        return data[pos:end], end
    if tag == BIT_STRING:
        bits, pos = decode_length(data, pos)
        end = pos + (bits + 7) // 8
        if end > n:
            raise DecodeError("A-XDR bit-string runs past the end")
        return BitString(bits, data[pos:end]), end
    raise DecodeError(f"unsupported A-XDR data tag {tag}")


def decode(data: bytes) -> Value:
    """Decode exactly one value; trailing bytes are an error."""
    value, end = decode_prefix(data)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} unexpected bytes after an A-XDR value")
    return value


def decode_prefix(data: bytes, pos: int = 0) -> tuple[Value, int]:
    """Decode one value starting at ``pos``; return it and the position after it.

    Nothing but ``DecodeError`` leaves: nesting is bounded by ``MAX_DEPTH`` and every count
    and length is checked against the bytes left before anything is allocated."""
    try:
        raw = bytes(data)
        return _decode_at(
            raw, len(raw), pos, 0, [MAX_DEPTH + (len(raw) - pos) // BYTES_PER_CONTAINER]
        )
    except DecodeError:
        raise
    except (IndexError, struct.error, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise DecodeError(f"truncated or invalid A-XDR data: {type(exc).__name__}") from exc


# --- encoding -------------------------------------------------------------------------------


def null() -> bytes:
    return b"\x00"


def structure(*items: bytes) -> bytes:
    return bytes((STRUCTURE,)) + encode_length(len(items)) + b"".join(items)


def array(*items: bytes) -> bytes:
    return bytes((ARRAY,)) + encode_length(len(items)) + b"".join(items)


def boolean(value: bool) -> bytes:
    return bytes((BOOLEAN, 0xFF if value else 0x00))


def octet_string(value: bytes) -> bytes:
    return bytes((OCTET_STRING,)) + encode_length(len(value)) + value


def visible_string(value: str) -> bytes:
    raw = value.encode("latin-1")
    return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw


def _fixed(tag: int, value: int | float) -> bytes:
    return bytes((tag,)) + struct.pack(_FIXED[tag][1], value)


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
