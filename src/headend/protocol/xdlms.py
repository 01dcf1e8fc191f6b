"""xDLMS service APDUs of logical-name referencing (IEC 62056-5-3), client side.

Requests are encoded, responses decoded, byte for byte; each codec is pinned by tests to
literal bytes in both directions. Selective access by range *and by entry* is encoded here
(dlms-cosem 25.1.0 cannot encode access by entry).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar

from headend.domain.obis import Obis
from headend.protocol import axdr
from headend.protocol.cosem_time import TimePolicy, encode_datetime
from headend.protocol.errors import DecodeError

P = ParamSpec("P")
R = TypeVar("R")
UINT32_MAX = 0xFFFF_FFFF

GET_REQUEST, SET_REQUEST, ACTION_REQUEST = 0xC0, 0xC1, 0xC3
GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE = 0xC4, 0xC5, 0xC7
EXCEPTION_RESPONSE, CONFIRMED_SERVICE_ERROR = 0xD8, 0x0E
NORMAL, NEXT, WITH_LIST = 1, 2, 3  # request types; WITH_BLOCK = 2 for responses

EXCEPTION_SERVICE_ERRORS = {
    1: "operation-not-possible",
    2: "service-not-supported",
    3: "other-reason",
    4: "pdu-too-long",
    5: "deciphering-error",
    6: "invocation-counter-error",
}


@dataclass(frozen=True, slots=True)
class AttributeRef:
    class_id: int
    obis: Obis
    attribute: int

    def to_bytes(self) -> bytes:
        return self.class_id.to_bytes(2, "big") + self.obis.to_bytes() + bytes((self.attribute,))


@dataclass(frozen=True, slots=True)
class MethodRef:
    class_id: int
    obis: Obis
    method: int

    def to_bytes(self) -> bytes:
        return self.class_id.to_bytes(2, "big") + self.obis.to_bytes() + bytes((self.method,))


# --- selective access ---------------------------------------------------------------------


def capture_object_definition(ref: AttributeRef, data_index: int = 0) -> bytes:
    return axdr.structure(
        axdr.long_unsigned(ref.class_id),
        axdr.octet_string(ref.obis.to_bytes()),
        axdr.integer(ref.attribute),
        axdr.long_unsigned(data_index),
    )


def range_access(
    restricting: AttributeRef,
    start: datetime,
    end: datetime,
    policy: TimePolicy,
    *,
    east_minutes: int | None = None,
) -> bytes:
    """Selector 1, range_descriptor: entries whose restricting value is in [start, end]."""
    return bytes((1,)) + axdr.structure(
        capture_object_definition(restricting),
        axdr.octet_string(encode_datetime(start, policy, east_minutes=east_minutes)),
        axdr.octet_string(encode_datetime(end, policy, east_minutes=east_minutes)),
        axdr.array(),
    )


def entry_access(
    from_entry: int, to_entry: int = 0, first_column: int = 1, last_column: int = 0
) -> bytes:
    """Selector 2, entry_descriptor: entries ``from_entry..to_entry`` (1-based, 0 = last)."""
    if from_entry < 1:
        raise ValueError("entries are numbered from 1")
    if max(from_entry, to_entry) > UINT32_MAX or min(to_entry, first_column, last_column) < 0:
        raise ValueError("entry numbers are unsigned 32-bit values")
    if max(first_column, last_column) > 0xFFFF:
        raise ValueError("column numbers are unsigned 16-bit values")
    return bytes((2,)) + axdr.structure(
        axdr.double_long_unsigned(from_entry),
        axdr.double_long_unsigned(to_entry),
        axdr.long_unsigned(first_column),
        axdr.long_unsigned(last_column),
    )


# --- requests -----------------------------------------------------------------------------


def get_request(invoke: int, ref: AttributeRef, access: bytes | None = None) -> bytes:
    selection = b"\x01" + access if access else b"\x00"
    return bytes((GET_REQUEST, NORMAL, invoke)) + ref.to_bytes() + selection


def get_request_next(invoke: int, block_number: int) -> bytes:
    return bytes((GET_REQUEST, NEXT, invoke)) + block_number.to_bytes(4, "big")


def get_request_with_list(invoke: int, refs: list[tuple[AttributeRef, bytes | None]]) -> bytes:
    out = bytearray((GET_REQUEST, WITH_LIST, invoke))
    out += axdr.encode_length(len(refs))
    for ref, access in refs:
        out += ref.to_bytes() + (b"\x01" + access if access else b"\x00")
    return bytes(out)


def set_request(invoke: int, ref: AttributeRef, data: bytes) -> bytes:
    return bytes((SET_REQUEST, NORMAL, invoke)) + ref.to_bytes() + b"\x00" + data


def action_request(invoke: int, ref: MethodRef, data: bytes | None) -> bytes:
    params = b"\x01" + data if data is not None else b"\x00"
    return bytes((ACTION_REQUEST, NORMAL, invoke)) + ref.to_bytes() + params


# --- responses ----------------------------------------------------------------------------


def _meter_bytes(parse: Callable[P, R]) -> Callable[P, R]:
    """A parser of a meter's answer: whatever the bytes, a value or a ``DecodeError``."""

    @functools.wraps(parse)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return parse(*args, **kwargs)
        except DecodeError:
            raise
        except (IndexError, ValueError, RecursionError) as exc:
            raise DecodeError(
                f"truncated or invalid {parse.__name__.removeprefix('parse_')}: "
                f"{type(exc).__name__}"
            ) from exc

    return guarded


@dataclass(frozen=True, slots=True)
class Result:
    """A value (A-XDR bytes) or a data-access-result code."""

    data: bytes | None = None
    error: int | None = None


@dataclass(frozen=True, slots=True)
class Block:
    last: bool
    number: int
    raw: bytes = b""
    error: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceFailure:
    """An exception-response or confirmed-service-error instead of the expected answer."""

    kind: str  # "exception" or "confirmed-service-error"
    code: int
    text: str


def _check(apdu: bytes, tag: int, invoke: int | None) -> None:
    if len(apdu) < 3:
        raise DecodeError(f"APDU of {len(apdu)} bytes is too short")
    if apdu[0] != tag:
        raise DecodeError(f"expected APDU tag 0x{tag:02x}, got 0x{apdu[0]:02x}")
    if invoke is not None and apdu[2] & 0x0F != invoke & 0x0F:
        raise DecodeError(f"answer to invoke id {apdu[2] & 0x0F}, expected {invoke & 0x0F}")


def service_failure(apdu: bytes) -> ServiceFailure | None:
    """Recognise an exception-response or a confirmed-service-error."""
    if apdu[:1] == bytes((EXCEPTION_RESPONSE,)) and len(apdu) >= 3:
        text = EXCEPTION_SERVICE_ERRORS.get(apdu[2], f"service-error {apdu[2]}")
        return ServiceFailure("exception", apdu[2], text)
    if apdu[:1] == bytes((CONFIRMED_SERVICE_ERROR,)) and len(apdu) >= 4:
        return ServiceFailure(
            "confirmed-service-error", apdu[3], f"service {apdu[1]}, error {apdu[2]}/{apdu[3]}"
        )
    return None


def _value_length(apdu: bytes, pos: int) -> int:
    """Position after the A-XDR value starting at ``pos``."""
    return axdr.decode_prefix(apdu, pos)[1]


@_meter_bytes
def parse_get_response(apdu: bytes, invoke: int | None) -> Result | Block | list[Result]:
    _check(apdu, GET_RESPONSE, invoke)
    kind = apdu[1]
    if kind == NORMAL:
        if apdu[3] == 0:
            end = _value_length(apdu, 4)
            if end != len(apdu):
                raise DecodeError("trailing bytes after a GET response value")
            return Result(data=apdu[4:])
        return Result(error=apdu[4])
    if kind == 2:  # with data block
        last = apdu[3] != 0
        number = int.from_bytes(apdu[4:8], "big")
        if apdu[8] == 0:
            length, pos = axdr.decode_length(apdu, 9)
            raw = apdu[pos : pos + length]
            if len(raw) != length:
                raise DecodeError("GET data block is shorter than its length")
            return Block(last, number, raw)
        return Block(last, number, error=apdu[9])
    if kind == WITH_LIST:
        count, pos = axdr.decode_length(apdu, 3)
        return parse_result_list(apdu, pos, count)
    raise DecodeError(f"unknown GET response type {kind}")


@_meter_bytes
def parse_result_list(data: bytes, pos: int, count: int | None = None) -> list[Result]:
    """A sequence of Get-Data-Result; ``count`` is read from ``data`` when None."""
    if count is None:
        count, pos = axdr.decode_length(data, pos)
    if count > (len(data) - pos) // 2:  # a result is at least two bytes
        raise DecodeError(f"a GET response list claims {count} results in {len(data) - pos} bytes")
    results: list[Result] = []
    for _ in range(count):
        choice = data[pos]
        if choice == 0:
            end = _value_length(data, pos + 1)
            results.append(Result(data=data[pos + 1 : end]))
            pos = end
        else:
            if pos + 1 >= len(data):
                raise DecodeError("a GET response list runs past the end")
            results.append(Result(error=data[pos + 1]))
            pos += 2
    if pos != len(data):
        raise DecodeError("trailing bytes after a GET response list")
    return results


@_meter_bytes
def parse_set_response(apdu: bytes, invoke: int | None) -> int:
    _check(apdu, SET_RESPONSE, invoke)
    if apdu[1] != NORMAL:
        raise DecodeError(f"unexpected SET response type {apdu[1]}")
    return apdu[3]


@_meter_bytes
def parse_action_response(apdu: bytes, invoke: int | None) -> tuple[int, Result | None]:
    """The action-result code and, if the meter sent one, the return parameter."""
    _check(apdu, ACTION_RESPONSE, invoke)
    if apdu[1] != NORMAL:
        raise DecodeError(f"unexpected ACTION response type {apdu[1]}")
    status = apdu[3]
    if len(apdu) <= 4 or apdu[4] == 0:
        return status, None
    if apdu[5] == 0:
        end = _value_length(apdu, 6)
        return status, Result(data=apdu[6:end])
    return status, Result(error=apdu[6])
