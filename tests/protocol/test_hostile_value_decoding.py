"""Values a hostile meter sends, byte by byte: each is refused as a ``DecodeError`` (the
``decode_error`` category), never a foreign exception, and before it costs much memory."""

from __future__ import annotations

import contextlib
import functools
import math
import struct
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headend.domain.enums import FailureCategory
from headend.domain.obis import Obis
from headend.domain.readings import Column
from headend.protocol import axdr, xdlms
from headend.protocol.association import MIN_SERVER_MAX_PDU
from headend.protocol.buffers import (
    Row,
    parse_capture_objects,
    parse_capture_period,
    parse_rows,
    row_times,
)
from headend.protocol.cosem_time import TimePolicy, decode_datetime
from headend.protocol.errors import DecodeError, ProtocolError
from headend.protocol.plan import ReadSpec
from headend.protocol.registers import parse_scaler_unit, scaled

CLOCK = Column(8, Obis(0, 0, 1, 0, 0, 255), 2, 0)
A_PLUS = Column(3, Obis(1, 0, 1, 8, 0, 255), 2, 0)
SPEC = ReadSpec()
BOUNDED = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def cosem_datetime(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> bytes:
    return (
        year.to_bytes(2, "big")
        + bytes((month, day, 0xFF, hour, minute, 0, 0))
        + (-0x8000).to_bytes(2, "big", signed=True)
        + b"\x00"
    )


def nested_arrays(depth: int) -> bytes:
    return b"\x01\x01" * depth + b"\x00"


def long64(value: int) -> bytes:
    return bytes((axdr.LONG64,)) + value.to_bytes(8, "big", signed=True)


def float64(value: float) -> bytes:
    return bytes((axdr.FLOAT64,)) + struct.pack(">d", value)


def refused(call: Callable[[], object]) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        call()
    assert caught.value.category is FailureCategory.DECODE_ERROR
    return caught.value


# --- A-XDR ----------------------------------------------------------------------------------


def test_arrays_nested_within_the_depth_bound_decode() -> None:
    value = axdr.decode(nested_arrays(axdr.MAX_DEPTH))
    for _ in range(axdr.MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value is None


def test_arrays_nested_past_the_depth_bound_are_refused() -> None:
    error = refused(lambda: axdr.decode(nested_arrays(axdr.MAX_DEPTH + 1)))
    assert "nests deeper" in str(error)


def test_ten_thousand_nested_arrays_are_refused_without_a_recursion_error() -> None:
    refused(lambda: axdr.decode(nested_arrays(10_000)))


def test_an_array_claiming_more_elements_than_bytes_left_is_refused() -> None:
    error = refused(lambda: axdr.decode(b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 10))
    assert "claims 4294967295 elements" in str(error)


def test_a_structure_claiming_more_elements_than_bytes_left_is_refused() -> None:
    refused(lambda: axdr.decode(b"\x02\x05\x00\x00"))


def test_an_array_of_empty_arrays_is_refused_past_one_container_per_four_bytes() -> None:
    refused(lambda: axdr.decode(b"\x01\x82\x03\xe8" + b"\x01\x00" * 1000))


def test_an_array_of_structures_of_real_rows_decodes() -> None:
    row = axdr.structure(axdr.octet_string(cosem_datetime(2026, 1, 1)), axdr.unsigned(0))
    assert len(axdr.decode(axdr.array(*[row] * 500))) == 500  # type: ignore[arg-type]


def test_a_length_prefix_of_more_than_four_bytes_is_refused() -> None:
    refused(lambda: axdr.decode(b"\x09\x85\x01\x00\x00\x00\x00"))


def test_a_string_longer_than_the_bytes_left_is_refused() -> None:
    refused(lambda: axdr.decode(b"\x09\x84\x7f\xff\xff\xff\x00"))


def test_a_bit_string_longer_than_the_bytes_left_is_refused() -> None:
    refused(lambda: axdr.decode(b"\x04\x84\x7f\xff\xff\xff\x00"))


@pytest.mark.parametrize("cut", [b"", b"\x03", b"\x01", b"\x12\x00", b"\x19\x07"])
def test_a_value_cut_after_its_tag_is_refused(cut: bytes) -> None:
    refused(lambda: axdr.decode(cut))


# --- xDLMS responses ------------------------------------------------------------------------


@pytest.mark.parametrize("apdu", [b"\xc4\x01\xc1", b"\xc4\x02\xc1\x00\x00", b"\xc4\x03\xc1"])
def test_a_get_response_cut_short_is_refused(apdu: bytes) -> None:
    refused(lambda: xdlms.parse_get_response(apdu, 0xC1))


def test_a_result_list_claiming_more_results_than_bytes_left_is_refused() -> None:
    refused(lambda: xdlms.parse_get_response(b"\xc4\x03\xc1\x84\x7f\xff\xff\xff\x00", 0xC1))


def test_a_get_response_of_ten_thousand_nested_arrays_is_refused() -> None:
    refused(lambda: xdlms.parse_get_response(b"\xc4\x01\xc1\x00" + nested_arrays(10_000), 0xC1))


def test_an_entry_descriptor_past_uint32_is_refused_before_encoding() -> None:
    with pytest.raises(ValueError):
        xdlms.entry_access(2**40, 2**40)


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("scaler", [2**62, -(2**31), 128, -129])
def test_a_scaler_outside_an_integer_is_refused(scaler: int) -> None:
    data = axdr.structure(long64(scaler), axdr.enum(30))
    refused(lambda: parse_scaler_unit(data))
    refused(lambda: scaled(1, scaler))


def test_scalers_at_the_ends_of_an_integer_are_kept() -> None:
    assert parse_scaler_unit(axdr.structure(axdr.integer(-128), axdr.enum(30))) == (-128, 30)
    assert scaled(5, 127) == scaled(5, 127)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_register_value_that_is_not_finite_is_refused(value: float) -> None:
    refused(lambda: scaled(value, 0))


@pytest.mark.parametrize("period", [2**62, 86_401, -1])
def test_a_capture_period_outside_one_second_to_one_day_is_refused(period: int) -> None:
    refused(lambda: parse_capture_period(long64(period)))


def test_a_capture_period_of_a_day_or_an_asynchronous_capture_is_kept() -> None:
    assert parse_capture_period(axdr.double_long_unsigned(86_400)) == 86_400
    assert parse_capture_period(axdr.double_long_unsigned(0)) == 0


@pytest.mark.parametrize("size", [5, 12])
def test_a_capture_object_whose_obis_is_not_six_bytes_is_refused(size: int) -> None:
    data = axdr.array(
        axdr.structure(
            axdr.long_unsigned(8),
            axdr.octet_string(bytes(size)),
            axdr.integer(2),
            axdr.long_unsigned(0),
        )
    )
    error = refused(lambda: parse_capture_objects(data))
    assert "6 bytes" in str(error)


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("year", [1999, 2101, 9999, 0])
def test_a_date_outside_the_plausible_years_is_refused(year: int) -> None:
    refused(lambda: decode_datetime(cosem_datetime(year, 12, 31, 23, 45), TimePolicy()))


def test_a_clock_reset_to_the_start_of_2000_is_still_read() -> None:
    got = decode_datetime(cosem_datetime(2000, 1, 1), TimePolicy())
    assert got.at.year == 2000


def test_a_row_at_9999_then_a_row_with_a_null_time_is_refused() -> None:
    rows: list[Row] = [(cosem_datetime(9999, 12, 31, 23, 45), 1), (None, 2)]
    refused(lambda: row_times(rows, (CLOCK, A_PLUS), SPEC, 900))


def test_null_times_follow_a_plausible_row_by_the_capture_period() -> None:
    rows: list[Row] = [(cosem_datetime(2026, 1, 1), 1), (None, 2)]
    times = row_times(rows, (CLOCK, A_PLUS), SPEC, 900)
    assert times[1] is not None and times[0] is not None
    assert (times[1].at - times[0].at).total_seconds() == 900


# --- the association ------------------------------------------------------------------------


def test_the_smallest_server_pdu_accepted_fits_our_largest_request() -> None:
    request = xdlms.get_request(
        0xC1,
        xdlms.AttributeRef(7, Obis(1, 0, 99, 1, 0, 255), 2),
        xdlms.range_access(
            xdlms.AttributeRef(8, Obis(0, 0, 1, 0, 0, 255), 2),
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 2, tzinfo=UTC),
            TimePolicy(),
        ),
    )
    assert len(request) <= MIN_SERVER_MAX_PDU


# --- properties: any bytes give a value or a ProtocolError ----------------------------------

# bytes biased towards A-XDR tags and lengths, so that nesting and counts are exercised
_axdr_byte = st.sampled_from(
    [0, 1, 2, 3, 4, 5, 6, 9, 10, 12, 15, 16, 17, 18, 0x19, 0x81, 0x84, 0xFF]
)
hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(_axdr_byte, st.integers(0, 255)), max_size=300).map(bytes),
)


def _value_or_protocol_error(call: Callable[[], object]) -> None:
    with contextlib.suppress(ProtocolError):
        call()


@BOUNDED
@given(hostile_bytes)
def test_any_bytes_decode_as_a_value_or_a_decode_error(data: bytes) -> None:
    _value_or_protocol_error(lambda: axdr.decode(data))
    _value_or_protocol_error(lambda: axdr.decode_prefix(data))


@BOUNDED
@given(st.integers(0, 8), hostile_bytes)
def test_any_get_response_parses_as_a_result_or_a_decode_error(kind: int, body: bytes) -> None:
    apdu = bytes((xdlms.GET_RESPONSE, kind, 0xC1)) + body
    _value_or_protocol_error(lambda: xdlms.parse_get_response(apdu, 0xC1))
    _value_or_protocol_error(lambda: xdlms.parse_result_list(body, 0))
    _value_or_protocol_error(lambda: xdlms.parse_set_response(apdu, 0xC1))
    _value_or_protocol_error(lambda: xdlms.parse_action_response(apdu, 0xC1))


_cell = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70).map(lambda v: long64(max(-(2**63), min(v, 2**63 - 1)))),
    st.floats(allow_nan=True, allow_infinity=True).map(float64),
    st.binary(min_size=12, max_size=12).map(axdr.octet_string),
    st.builds(
        cosem_datetime,
        st.integers(0, 0xFFFF),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
    ).map(axdr.octet_string),
)


@BOUNDED
@given(
    st.lists(st.lists(st.one_of(_cell.map(lambda c: c or axdr.null())), max_size=3), max_size=6),
    st.integers(-(2**40), 2**40),
    st.integers(-200, 200),
)
def test_any_profile_buffer_decodes_as_rows_or_a_decode_error(
    rows: list[list[bytes]], period: int, scaler: int
) -> None:
    data = axdr.array(*[axdr.structure(axdr.octet_string(b"x"), *cells) for cells in rows])
    plain = (Column(1, Obis(0, 0, 96, 10, 1, 255), 2, 0), CLOCK, A_PLUS, A_PLUS)
    columns = tuple(Column(c.class_id, c.obis, c.attribute, 0, None, scaler) for c in plain)

    def decode_buffer() -> None:
        parsed = parse_rows(data)
        row_times(parsed, columns[: 1 + max((len(r) for r in rows), default=0)], SPEC, period)

    _value_or_protocol_error(decode_buffer)
    _value_or_protocol_error(lambda: parse_capture_period(long64(max(-(2**63), period))))
    for cells in rows:
        for cell in cells:
            value = axdr.decode(cell)
            if isinstance(value, int | float) and not isinstance(value, bool):
                _value_or_protocol_error(functools.partial(scaled, value, scaler))


@BOUNDED
@given(hostile_bytes)
def test_any_bytes_as_a_profile_buffer_give_rows_or_a_decode_error(data: bytes) -> None:
    _value_or_protocol_error(lambda: parse_rows(data))
    _value_or_protocol_error(lambda: parse_capture_objects(data))
    _value_or_protocol_error(lambda: parse_scaler_unit(data))
    _value_or_protocol_error(lambda: parse_capture_period(data))


# --- memory ---------------------------------------------------------------------------------

MIB = 1 << 20


def _peak_while_refusing(data: bytes) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        with pytest.raises(DecodeError):
            axdr.decode(data)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_deeply_nested_answer_is_refused_before_it_costs_a_mebibyte() -> None:
    data = nested_arrays(1_000_000)  # 2 MB of nesting
    assert _peak_while_refusing(data) < len(data) + MIB  # the one copy made of the input


def test_an_answer_claiming_four_billion_elements_is_refused_before_it_costs_a_mebibyte() -> None:
    data = b"\x01\x84\xff\xff\xff\xff" + b"\x02\x84\xff\xff\xff\xff" * 1000
    assert _peak_while_refusing(data) < len(data) + MIB


def test_an_array_of_empty_arrays_costs_at_most_twenty_bytes_of_heap_per_byte_received() -> None:
    count = 125_000  # a quarter of a megabyte received
    data = b"\x01\x84" + count.to_bytes(4, "big") + b"\x01\x00" * count
    peak = _peak_while_refusing(data)
    assert peak < 20 * len(data) and peak < 6 * MIB
