"""xDLMS APDUs from the server's side: requests decoded, responses encoded.

dlms-cosem's xDLMS classes are written for a client: several cannot encode what a server sends
(``GetResponseNormal.to_bytes`` fails, a general-glo-cipher longer than 255 octets is cut, an
exception response cannot carry an invocation counter above 255) or decode what a client sends
(the conformance of an InitiateRequest is read one octet short; GET with an entry descriptor is
refused). This module is the server's half of those codecs, byte-compatible with dlms-cosem's
client half, which the tests pin both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlms_cosem.protocol.xdlms.conformance import Conformance

from headend.domain.obis import Obis
from headend.simulator.cosem import (
    AccessSelector,
    DataError,
    UnknownSelector,
    Value,
    decode,
    decode_length,
    decode_selector,
    encode_length,
)

GET_REQUEST, SET_REQUEST, ACTION_REQUEST = 0xC0, 0xC1, 0xC3
GET_RESPONSE, SET_RESPONSE, ACTION_RESPONSE = 0xC4, 0xC5, 0xC7
EXCEPTION_RESPONSE = 0xD8
GENERAL_GLO_CIPHER = 0xDB
# service-specific global ciphering: request tag -> response tag
GLO_RESPONSE_TAG = {0xC8: 0xCC, 0xC9: 0xCD, 0xCB: 0xCF}
INITIATE_REQUEST, INITIATE_RESPONSE, CONFIRMED_SERVICE_ERROR = 0x01, 0x08, 0x0E


@dataclass(frozen=True)
class Descriptor:
    """A COSEM attribute or method descriptor: class id, logical name, index."""

    class_id: int
    obis: Obis
    index: int

    LENGTH = 9

    @classmethod
    def decode(cls, data: bytes, pos: int) -> tuple[Descriptor, int]:
        end = pos + cls.LENGTH
        if end > len(data):
            raise DataError("data ends inside a COSEM descriptor")
        class_id = int.from_bytes(data[pos : pos + 2], "big")
        return cls(class_id, Obis.from_bytes(data[pos + 2 : pos + 8]), data[pos + 8]), end

    def to_bytes(self) -> bytes:
        return self.class_id.to_bytes(2, "big") + self.obis.to_bytes() + bytes((self.index,))


Selection = AccessSelector | UnknownSelector | None


@dataclass(frozen=True)
class GetNormal:
    invoke: int
    attribute: Descriptor
    selection: Selection


@dataclass(frozen=True)
class GetNext:
    invoke: int
    block_number: int


@dataclass(frozen=True)
class GetWithList:
    invoke: int
    items: tuple[tuple[Descriptor, Selection], ...]


@dataclass(frozen=True)
class SetNormal:
    invoke: int
    attribute: Descriptor
    selection: Selection
    value: Value


@dataclass(frozen=True)
class ActionNormal:
    invoke: int
    method: Descriptor
    parameters: Value | None


@dataclass(frozen=True)
class UnsupportedService:
    """A request this meter recognises but does not implement (SET with blocks, ...)."""

    tag: int
    invoke: int


Request = GetNormal | GetNext | GetWithList | SetNormal | ActionNormal | UnsupportedService


def _selection(data: bytes, pos: int) -> tuple[Selection, int]:
    if pos >= len(data):
        raise DataError("data ends before the access-selection flag")
    if data[pos] == 0:
        return None, pos + 1
    return decode_selector(data, pos + 1)


def parse_request(apdu: bytes) -> Request:
    """Decode a plain GET, SET or ACTION request."""
    if len(apdu) < 3:
        raise DataError("request too short")
    tag, kind, invoke = apdu[0], apdu[1], apdu[2]
    if tag == GET_REQUEST and kind == 1:
        attribute, pos = Descriptor.decode(apdu, 3)
        selection, pos = _selection(apdu, pos)
        return GetNormal(invoke, attribute, selection)
    if tag == GET_REQUEST and kind == 2:
        if len(apdu) != 7:
            raise DataError("a get-request-next carries a 4-octet block number")
        return GetNext(invoke, int.from_bytes(apdu[3:7], "big"))
    if tag == GET_REQUEST and kind == 3:
        count, pos = decode_length(apdu, 3)
        items = []
        for _ in range(count):
            attribute, pos = Descriptor.decode(apdu, pos)
            selection, pos = _selection(apdu, pos)
            items.append((attribute, selection))
        return GetWithList(invoke, tuple(items))
    if tag == SET_REQUEST and kind == 1:
        attribute, pos = Descriptor.decode(apdu, 3)
        selection, pos = _selection(apdu, pos)
        value, _ = decode(apdu, pos)
        return SetNormal(invoke, attribute, selection, value)
    if tag == ACTION_REQUEST and kind == 1:
        method, pos = Descriptor.decode(apdu, 3)
        if pos >= len(apdu):
            raise DataError("data ends before the parameters flag")
        parameters = decode(apdu, pos + 1)[0] if apdu[pos] else None
        return ActionNormal(invoke, method, parameters)
    if tag in (GET_REQUEST, SET_REQUEST, ACTION_REQUEST):
        return UnsupportedService(tag, invoke)
    raise DataError(f"not a GET, SET or ACTION request: tag {tag}")


# --- responses --------------------------------------------------------------------------------


def get_response_normal(invoke: int, data: bytes) -> bytes:
    return bytes((GET_RESPONSE, 1, invoke, 0)) + data


def get_response_error(invoke: int, result: int) -> bytes:
    return bytes((GET_RESPONSE, 1, invoke, 1, result))


def get_response_block(invoke: int, last: bool, block_number: int, raw: bytes) -> bytes:
    """One block of a long response: raw-data is a slice of the encoded result."""
    return (
        bytes((GET_RESPONSE, 2, invoke, 1 if last else 0))
        + block_number.to_bytes(4, "big")
        + b"\x00"
        + encode_length(len(raw))
        + raw
    )


def get_response_block_error(invoke: int, block_number: int, result: int) -> bytes:
    return (
        bytes((GET_RESPONSE, 2, invoke, 1)) + block_number.to_bytes(4, "big") + bytes((1, result))
    )


def encode_result_list(results: list[bytes | int], declared: int | None = None) -> bytes:
    """SEQUENCE OF Get-Data-Result: encoded data, or an int data-access-result; ``declared``
    puts another count in front (a meter that sends fewer results than it declares)."""
    out = bytearray(encode_length(len(results) if declared is None else declared))
    for item in results:
        if isinstance(item, int):
            out += bytes((1, item))
        else:
            out += b"\x00" + item
    return bytes(out)


def get_response_with_list(
    invoke: int, results: list[bytes | int], declared: int | None = None
) -> bytes:
    return bytes((GET_RESPONSE, 3, invoke)) + encode_result_list(results, declared)


def set_response(invoke: int, result: int) -> bytes:
    return bytes((SET_RESPONSE, 1, invoke, result))


def action_response(invoke: int, result: int, data: bytes | None = None) -> bytes:
    head = bytes((ACTION_RESPONSE, 1, invoke, result))
    return head + (b"\x01\x00" + data if data is not None else b"\x00")


def exception_response(state: int, service: int, invocation_counter: int | None = None) -> bytes:
    """state-error (1 not-allowed, 2 unknown), service-error; service-error 6
    (invocation-counter-error) carries the counter the server expects, Unsigned32."""
    out = bytes((EXCEPTION_RESPONSE, state, service))
    if invocation_counter is not None:
        out += invocation_counter.to_bytes(4, "big")
    return out


def confirmed_service_error(service_choice: int, error_type: int, error: int) -> bytes:
    """e.g. (1 initiateError, 6 initiate, 3 pdu-size-too-short)."""
    return bytes((CONFIRMED_SERVICE_ERROR, service_choice, error_type, error))


# --- ciphered APDUs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ciphered:
    """A globally ciphered APDU: general-glo-cipher (with a system title) or a
    service-specific glo-* APDU (without)."""

    tag: int
    system_title: bytes | None
    security_control: int
    invocation_counter: int
    ciphertext: bytes

    @classmethod
    def from_bytes(cls, apdu: bytes) -> Ciphered:
        tag = apdu[0] if apdu else 0
        pos = 1
        system_title: bytes | None = None
        if tag == GENERAL_GLO_CIPHER:
            size, pos = decode_length(apdu, pos)
            system_title = bytes(apdu[pos : pos + size])
            pos += size
        elif tag not in GLO_RESPONSE_TAG:
            raise DataError(f"not a globally ciphered APDU: tag {tag}")
        size, pos = decode_length(apdu, pos)
        if size < 5 or pos + size != len(apdu):
            raise DataError("ciphered content has the wrong length")
        ic = int.from_bytes(apdu[pos + 1 : pos + 5], "big")
        return cls(tag, system_title, apdu[pos], ic, bytes(apdu[pos + 5 :]))

    def to_bytes(self) -> bytes:
        content = bytes((self.security_control,)) + self.invocation_counter.to_bytes(4, "big")
        content += self.ciphertext
        out = bytearray((self.tag,))
        if self.tag == GENERAL_GLO_CIPHER:
            title = self.system_title or b""
            out += encode_length(len(title)) + title
        out += encode_length(len(content)) + content
        return bytes(out)


@dataclass(frozen=True)
class InitiateRequest:
    """The xDLMS context a client proposes in its AARQ."""

    proposed_conformance: Conformance
    client_max_receive_pdu_size: int
    dlms_version: int = 6
    dedicated_key: bytes | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> InitiateRequest:
        try:
            return cls._decode(data)
        except IndexError as exc:
            raise DataError("InitiateRequest ends early") from exc

    @classmethod
    def _decode(cls, data: bytes) -> InitiateRequest:
        if not data or data[0] != INITIATE_REQUEST:
            raise DataError("not an InitiateRequest")
        pos = 1
        dedicated_key = None
        if data[pos]:  # dedicated-key OPTIONAL
            size = data[pos + 1]
            dedicated_key = bytes(data[pos + 2 : pos + 2 + size])
            pos += 2 + size
        else:
            pos += 1
        pos += 2 if data[pos] else 1  # response-allowed DEFAULT TRUE
        pos += 2 if data[pos] else 1  # proposed-quality-of-service OPTIONAL
        version = data[pos]
        pos += 1
        if data[pos : pos + 3] != b"\x5f\x1f\x04" or len(data) != pos + 9:
            raise DataError("InitiateRequest conformance is not where it belongs")
        conformance = Conformance.from_bytes(bytes(data[pos + 3 : pos + 7]))
        # 0 means the client sets no limit
        max_pdu = int.from_bytes(data[pos + 7 : pos + 9], "big") or 0xFFFF
        return cls(conformance, max_pdu, version, dedicated_key)
