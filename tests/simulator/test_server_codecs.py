"""The server's half of the codecs, pinned to literal bytes in both directions, and checked
against dlms-cosem's client half where dlms-cosem has one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from dlms_cosem import enumerations
from dlms_cosem.connection import make_conformance
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.protocol import xdlms
from hypothesis import given
from hypothesis import strategies as st

from headend.domain.obis import Obis
from headend.profiles import DeviationSemantics
from headend.simulator import apdus, cosem
from headend.simulator.cosem import CaptureRef, EntrySelector, RangeSelector

from .server_support import attribute

pytestmark = pytest.mark.timeout(30)

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
MOMENT = datetime(2026, 11, 27, 10, 7, 30, tzinfo=UTC)  # 17:07:30 in Ho Chi Minh City


def test_an_entry_descriptor_encodes_and_decodes_as_one_literal() -> None:
    literal = bytes.fromhex("02 0204 0600000001 0600000060 120001 120000")
    selector = EntrySelector(from_entry=1, to_entry=96, from_selected_value=1, to_selected_value=0)

    assert selector.to_bytes() == literal
    assert cosem.decode_selector(literal, 0) == (selector, len(literal))


def test_a_range_descriptor_is_the_one_dlms_cosem_sends() -> None:
    start = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    end = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    clock = CaptureObject(attribute(8, "0.0.1.0.0.255", 2))
    theirs = RangeDescriptor(restricting_object=clock, from_value=start, to_value=end).to_bytes()
    literal = bytes.fromhex(
        "01 0204 0204 120008 0906 0000010000ff 0f02 120000"
        " 090c 07ea0b1aff 11000000 0000 00"
        " 090c 07ea0b1bff 11000000 0000 00"
        " 0100"
    )
    assert theirs == literal

    decoded, end_pos = cosem.decode_selector(literal, 0)

    assert end_pos == len(literal)
    assert isinstance(decoded, RangeSelector)
    assert decoded.restricting == CaptureRef(8, Obis(0, 0, 1, 0, 0), 2, 0)
    assert cosem.decode_datetime(decoded.from_raw, ICT, DeviationSemantics.MINUTES_TO_UTC) == start
    assert decoded.to_bytes() == literal


@pytest.mark.parametrize(
    ("semantics", "deviation"),
    [
        (DeviationSemantics.MINUTES_TO_UTC, "fe5c"),
        (DeviationSemantics.MINUTES_FROM_UTC, "01a4"),
        (DeviationSemantics.UNSPECIFIED, "8000"),
    ],
)
def test_a_date_time_carries_local_time_and_the_profiles_deviation(
    semantics: DeviationSemantics, deviation: str
) -> None:
    literal = bytes.fromhex(f"07ea0b1b05 11071e00 {deviation} 00")

    assert cosem.encode_datetime(MOMENT, ICT, semantics) == literal
    assert cosem.decode_datetime(literal, ICT, semantics) == MOMENT


def test_a_date_time_with_wildcards_is_not_a_definite_time() -> None:
    with pytest.raises(cosem.DataError):
        cosem.decode_datetime(bytes.fromhex("ffffffffff ffffffff 8000 ff"), ICT,
                              DeviationSemantics.MINUTES_TO_UTC)  # fmt: skip


def test_a_get_response_is_what_dlms_cosem_decodes() -> None:
    literal = bytes.fromhex("c4 01 c1 00 0600000064")
    response = apdus.get_response_normal(0xC1, cosem.double_long_unsigned(100))

    assert response == literal
    decoded = xdlms.GetResponseFactory.from_bytes(literal)
    assert isinstance(decoded, xdlms.GetResponseNormal)
    assert decoded.data == bytes.fromhex("0600000064")


def test_a_get_response_block_is_what_dlms_cosem_decodes() -> None:
    literal = bytes.fromhex("c4 02 c1 00 00000001 00 03 010203")

    assert apdus.get_response_block(0xC1, False, 1, b"\x01\x02\x03") == literal
    decoded = xdlms.GetResponseFactory.from_bytes(literal)
    assert isinstance(decoded, xdlms.GetResponseWithBlock)
    assert (decoded.block_number, decoded.data) == (1, b"\x01\x02\x03")
    assert decoded.to_bytes() == literal


def test_the_last_block_and_a_block_error_are_what_dlms_cosem_decodes() -> None:
    last = apdus.get_response_block(0xC1, True, 2, b"\x04")
    error = apdus.get_response_block_error(0xC1, 3, 19)

    assert last == bytes.fromhex("c4 02 c1 01 00000002 00 01 04")
    assert error == bytes.fromhex("c4 02 c1 01 00000003 01 13")
    assert isinstance(xdlms.GetResponseFactory.from_bytes(last), xdlms.GetResponseLastBlock)
    decoded = xdlms.GetResponseFactory.from_bytes(error)
    assert decoded.error is enumerations.DataAccessResult.DATA_BLOCK_NUMBER_INVALID


def test_a_get_response_with_list_mixes_data_and_access_results() -> None:
    literal = bytes.fromhex("c4 03 c1 02 00 110007 01 04".replace("110007", "1107"))

    assert apdus.get_response_with_list(0xC1, [cosem.unsigned(7), 4]) == literal
    decoded = xdlms.GetResponseWithList.from_bytes(literal)
    assert decoded.result == [7, enumerations.DataAccessResult.OBJECT_UNDEFINED]


def test_an_exception_response_carries_the_expected_invocation_counter() -> None:
    literal = bytes.fromhex("d8 01 06 01020304")

    assert apdus.exception_response(1, 6, 0x01020304) == literal
    decoded = xdlms.ExceptionResponse.from_bytes(literal)
    assert decoded.service_error is enumerations.ServiceException.INVOCATION_COUNTER_ERROR
    assert decoded.invocation_counter_data == 0x01020304


def test_a_long_general_glo_cipher_keeps_its_length_in_two_octets() -> None:
    title = b"MMM\x00\x00\x00\x00\x01"
    text = bytes(range(256)) + bytes(44)
    ciphered = apdus.Ciphered(apdus.GENERAL_GLO_CIPHER, title, 0x30, 5, text)
    literal = bytes.fromhex("db 08 4d4d4d0000000001 82 0131 30 00000005") + text

    assert ciphered.to_bytes() == literal
    assert apdus.Ciphered.from_bytes(literal) == ciphered
    theirs = xdlms.GeneralGlobalCipher.from_bytes(literal)
    assert (bytes(theirs.system_title), theirs.invocation_counter) == (title, 5)
    assert theirs.ciphered_text == text


def test_an_initiate_request_from_dlms_cosem_decodes_with_its_whole_conformance() -> None:
    theirs = xdlms.InitiateRequest(
        proposed_conformance=make_conformance(b"k" * 16, True), client_max_receive_pdu_size=512
    ).to_bytes()
    literal = bytes.fromhex("01 00 00 00 06 5f1f04 00 60525f 0200")

    assert theirs == literal
    mine = apdus.InitiateRequest.from_bytes(literal)
    assert mine.client_max_receive_pdu_size == 512
    assert mine.proposed_conformance == make_conformance(b"k" * 16, True)
    assert mine.proposed_conformance.general_protection


def test_a_get_request_with_an_entry_descriptor_decodes() -> None:
    selector = EntrySelector(from_entry=5, to_entry=10)
    theirs = xdlms.GetRequestNormal(
        cosem_attribute=attribute(7, "1.0.99.1.0.255", 2), access_selection=selector
    ).to_bytes()

    request = apdus.parse_request(theirs)

    assert isinstance(request, apdus.GetNormal)
    assert request.attribute == apdus.Descriptor(7, Obis(1, 0, 99, 1, 0), 2)
    assert request.selection == selector


@given(
    number=st.integers(min_value=0, max_value=2**32 - 1),
    text=st.binary(max_size=300),
    count=st.integers(min_value=0, max_value=200),
)
def test_values_decode_to_what_was_encoded(number: int, text: bytes, count: int) -> None:
    encoded = cosem.structure(
        cosem.double_long_unsigned(number),
        cosem.octet_string(text),
        cosem.array([cosem.unsigned(i % 256) for i in range(count)]),
    )

    decoded, end = cosem.decode(encoded)

    assert end == len(encoded)
    first, second, third = decoded.items()
    assert (first.as_int(), second.as_bytes()) == (number, text)
    assert [item.as_int() for item in third.items()] == [i % 256 for i in range(count)]
