"""A meter that associates normally and then sends hostile values, over the TCP wrapper and
HDLC: each read ends as one ``ProtocolError`` of the right category, never a traceback."""

from __future__ import annotations

import math
import struct
from datetime import timedelta

import pytest
from dlms_cosem.protocol.xdlms import Conformance

from headend.domain.enums import FailureCategory, Transport
from headend.domain.obis import Obis
from headend.protocol import axdr
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import ProtocolError
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.simulator import association as sim_association
from headend.simulator import server as sim_server
from tests.protocol.hostile_values import Answer, hostile_meter, refuse_selective_access
from tests.protocol.simfleet import NOW
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)
TRANSPORTS = pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])

LOAD_PROFILE = Obis.parse("1.0.99.1.0.255")
A_PLUS = Obis.parse("1.0.1.8.0.255")
CLIENT_PDU = 1024  # what the client proposes by default


def _datetime(year: int, month: int, day: int, hour: int, minute: int) -> bytes:
    return (
        year.to_bytes(2, "big")
        + bytes((month, day, 0xFF, hour, minute, 0, 0))
        + (-0x8000).to_bytes(2, "big", signed=True)
        + b"\x00"
    )


def _long64(value: int) -> bytes:
    return bytes((axdr.LONG64,)) + value.to_bytes(8, "big", signed=True)


def _read_fails(transport: Transport, answers: dict[tuple[Obis, int], Answer]) -> ProtocolError:
    """Collect the clock, registers and a day of load profile; return what ended it."""
    with hostile_meter(transport, answers) as fleet:
        spec = fleet.read_spec("X1")

        async def go() -> None:
            async with MeterSession(fleet.target("X1"), counters=MemoryCounterStore()) as s:
                what = Collection(start=NOW - timedelta(days=1), end=NOW)
                await collect(s, spec, what, DefinitionCache())

        with pytest.raises(ProtocolError) as caught:
            run(go())
    return caught.value


@TRANSPORTS
def test_ten_thousand_nested_arrays_by_block_transfer_end_as_a_decode_error(
    transport: Transport,
) -> None:
    nested = b"\x01\x01" * 10_000 + b"\x00"
    assert len(nested) > 10 * CLIENT_PDU  # several blocks
    error = _read_fails(transport, {(LOAD_PROFILE, 2): nested})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "nests deeper" in str(error)


@TRANSPORTS
def test_a_scaler_of_two_to_the_62_ends_as_a_decode_error(transport: Transport) -> None:
    scaler_unit = axdr.structure(_long64(2**62), axdr.enum(30))
    error = _read_fails(transport, {(A_PLUS, 3): scaler_unit})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "scaler" in str(error)


@TRANSPORTS
def test_a_capture_period_of_two_to_the_62_ends_as_a_decode_error(transport: Transport) -> None:
    error = _read_fails(transport, {(LOAD_PROFILE, 4): _long64(2**62)})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "capture period" in str(error)


@TRANSPORTS
def test_a_row_at_9999_then_a_null_time_ends_as_a_decode_error(transport: Transport) -> None:
    rows = axdr.array(
        axdr.structure(
            axdr.octet_string(_datetime(9999, 12, 31, 23, 45)),
            axdr.unsigned(0),
            axdr.double_long_unsigned(1),
            axdr.double_long_unsigned(1),
        ),
        axdr.structure(axdr.null(), axdr.unsigned(0), axdr.null(), axdr.null()),
    )
    error = _read_fails(transport, {(LOAD_PROFILE, 2): rows})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "year 9999" in str(error)


@TRANSPORTS
def test_a_register_value_that_is_nan_ends_as_a_decode_error(transport: Transport) -> None:
    nan = bytes((axdr.FLOAT64,)) + struct.pack(">d", math.nan)
    error = _read_fails(transport, {(A_PLUS, 2): nan})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "finite" in str(error)


@TRANSPORTS
def test_a_capture_object_with_a_five_byte_obis_ends_as_a_decode_error(
    transport: Transport,
) -> None:
    capture_objects = axdr.array(
        axdr.structure(
            axdr.long_unsigned(8),
            axdr.octet_string(bytes((0, 0, 1, 0, 0))),
            axdr.integer(2),
            axdr.long_unsigned(0),
        )
    )
    error = _read_fails(transport, {(LOAD_PROFILE, 3): capture_objects})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "6 bytes" in str(error)


@TRANSPORTS
def test_entries_in_use_past_uint32_after_range_access_is_refused_end_as_a_decode_error(
    transport: Transport,
) -> None:
    answers: dict[tuple[Obis, int], Answer] = {
        (LOAD_PROFILE, 2): refuse_selective_access(axdr.array()),
        (LOAD_PROFILE, 7): axdr.long64_unsigned(2**40),
    }
    error = _read_fails(transport, answers)
    assert error.category is FailureCategory.DECODE_ERROR
    assert "uint32" in str(error)


@TRANSPORTS
def test_a_server_max_pdu_of_one_in_the_aare_ends_as_a_decode_error(
    transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tiny_pdu(conformance: Conformance, max_receive_pdu: int) -> bytes:
        return sim_association.initiate_response(conformance, 1)

    monkeypatch.setattr(sim_server, "initiate_response", tiny_pdu)
    error = _read_fails(transport, {})
    assert error.category is FailureCategory.DECODE_ERROR
    assert "max receive PDU size of 1" in str(error)
