"""Wire codecs pinned to literal bytes in both directions."""

from __future__ import annotations

import pytest

from headend.domain.obis import Obis
from headend.protocol import axdr, xdlms
from headend.protocol.errors import (
    AccessDeniedError,
    DecodeError,
    InvocationCounterError,
    ObjectUnavailableError,
    SessionDroppedError,
    UnreachableError,
    data_access_error,
    translate,
)
from headend.protocol.security import Ciphering, CounterLease, MemoryCounterStore

pytestmark = pytest.mark.timeout(10)
CLOCK = xdlms.AttributeRef(8, Obis(0, 0, 1, 0, 0), 2)


def test_a_get_request_normal_pins_its_bytes() -> None:
    assert xdlms.get_request(0xC1, CLOCK).hex() == "c001c100080000010000ff0200"


def test_a_get_response_normal_decodes_to_its_value_bytes() -> None:
    raw = bytes.fromhex("c401c1000600000102")
    assert xdlms.parse_get_response(raw, 0xC1) == xdlms.Result(data=bytes.fromhex("0600000102"))
    assert axdr.decode(bytes.fromhex("0600000102")) == 258


def test_a_get_response_with_an_access_result_is_an_error() -> None:
    raw = bytes.fromhex("c401c10104")
    assert xdlms.parse_get_response(raw, 0xC1) == xdlms.Result(error=4)
    assert isinstance(data_access_error(4, "x"), ObjectUnavailableError)
    assert isinstance(data_access_error(3, "x"), AccessDeniedError)


def test_a_get_response_block_and_the_next_request_pin_their_bytes() -> None:
    raw = bytes.fromhex("c402c100000000010003010203")
    assert xdlms.parse_get_response(raw, 0xC1) == xdlms.Block(False, 1, b"\x01\x02\x03")
    assert xdlms.get_request_next(0xC1, 1).hex() == "c002c100000001"


def test_a_get_with_list_round_trip_pins_its_bytes() -> None:
    refs = [(CLOCK, None), (xdlms.AttributeRef(3, Obis(1, 0, 1, 8, 0), 3), None)]
    assert xdlms.get_request_with_list(0xC2, refs).hex() == (
        "c003c20200080000010000ff020000030100010800ff0300"
    )
    answer = bytes.fromhex("c403c2020006000000050104")
    assert xdlms.parse_get_response(answer, 0xC2) == [
        xdlms.Result(data=bytes.fromhex("0600000005")),
        xdlms.Result(error=4),
    ]


def test_set_and_action_requests_and_responses_pin_their_bytes() -> None:
    data = axdr.octet_string(bytes(12))
    assert xdlms.set_request(0xC1, CLOCK, data).hex() == (
        "c101c100080000010000ff0200090c" + "00" * 12
    )
    assert xdlms.parse_set_response(bytes.fromhex("c501c100"), 0xC1) == 0
    method = xdlms.MethodRef(70, Obis(0, 0, 96, 3, 10), 1)
    assert xdlms.action_request(0xC1, method, axdr.integer(0)).hex() == (
        "c301c10046000060030aff01010f00"
    )
    assert xdlms.parse_action_response(bytes.fromhex("c701c10000"), 0xC1) == (0, None)
    assert xdlms.parse_action_response(bytes.fromhex("c701c10001000f05"), 0xC1) == (
        0,
        xdlms.Result(data=bytes.fromhex("0f05")),
    )


def test_an_answer_to_another_invoke_id_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        xdlms.parse_get_response(bytes.fromhex("c401c2000f05"), 0xC1)


def test_axdr_values_round_trip() -> None:
    encoded = axdr.structure(
        axdr.long_unsigned(8),
        axdr.octet_string(b"\x00\x00\x01\x00\x00\xff"),
        axdr.integer(-2),
        axdr.array(axdr.double_long_unsigned(70000), axdr.null()),
        axdr.visible_string("SN1"),
        axdr.boolean(True),
        axdr.enum(30),
        axdr.long64_unsigned(2**40),
    )
    assert axdr.decode(encoded) == (
        8,
        b"\x00\x00\x01\x00\x00\xff",
        -2,
        [70000, None],
        "SN1",
        True,
        30,
        2**40,
    )
    long_string = axdr.octet_string(bytes(300))
    assert long_string[:4] == bytes.fromhex("0982012c")
    assert axdr.decode(long_string) == bytes(300)


def test_truncated_axdr_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        axdr.decode(bytes.fromhex("02031200"))


def test_a_ciphered_apdu_opens_with_the_same_keys_and_a_replayed_counter_is_refused() -> None:
    key, auth = bytes(range(16)), bytes(range(16, 32))
    client = Ciphering(key, auth, b"CLIENT01")
    server = Ciphering(key, auth, b"METER001", server_title=b"CLIENT01")
    sealed = client.protect(b"\xc0\x01\xc1", 7)
    assert sealed[0] == 0xDB and sealed[1:10] == b"\x08CLIENT01"
    assert server.unprotect(sealed) == b"\xc0\x01\xc1"
    with pytest.raises(InvocationCounterError):
        server.unprotect(sealed)


def test_invocation_counters_are_reserved_before_use_and_never_handed_out_twice() -> None:
    store = MemoryCounterStore()
    first = CounterLease(store, "m", block=4)
    taken = [first.take() for _ in range(6)]
    # a crash now loses the lease; the next session starts after everything reserved
    second = CounterLease(store, "m", block=4)
    assert second.take() > max(taken)
    assert store.peek("m") == 13
    assert len(set(taken)) == 6


def test_foreign_exceptions_are_translated_in_one_place() -> None:
    assert isinstance(
        translate(ConnectionRefusedError(111, "refused"), stage="connect"), UnreachableError
    )
    assert isinstance(
        translate(ConnectionResetError(104, "reset"), stage="GET"), SessionDroppedError
    )
    assert isinstance(translate(ValueError("bad"), stage="AARE"), DecodeError)
