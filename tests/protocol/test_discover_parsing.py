"""The sans-IO half of discovery: an object list and a clock read as a meter sends them, and
what a hostile meter sends instead ends as a decode error."""

from __future__ import annotations

import pytest

from headend.domain.obis import Obis
from headend.protocol import axdr
from headend.protocol.discover import parse_clock, parse_object_list
from headend.protocol.errors import DecodeError

LP = Obis(1, 0, 99, 1, 0)


def entry(class_id: int, obis: Obis, selectors: bytes) -> bytes:
    rights = axdr.structure(
        axdr.array(
            axdr.structure(axdr.integer(1), axdr.enum(1), axdr.null()),
            axdr.structure(axdr.integer(2), axdr.enum(1), selectors),
        ),
        axdr.array(),
    )
    return axdr.structure(
        axdr.long_unsigned(class_id), axdr.unsigned(1), axdr.octet_string(obis.to_bytes()), rights
    )


def test_an_object_list_gives_each_object_its_class_version_and_selectors() -> None:
    data = axdr.array(
        entry(7, LP, axdr.array(axdr.integer(1), axdr.integer(2))),
        entry(3, Obis(1, 0, 1, 8, 0), axdr.null()),
    )
    found = parse_object_list(data)
    assert [(o.obis, o.class_id, o.version, o.selectors) for o in found] == [
        (LP, 7, 1, (1, 2)),
        (Obis(1, 0, 1, 8, 0), 3, 1, ()),
    ]


@pytest.mark.parametrize(
    "data",
    [
        axdr.structure(axdr.unsigned(1)),  # not an array
        axdr.array(axdr.structure(axdr.long_unsigned(3), axdr.unsigned(0))),  # too short
        axdr.array(  # a logical name of 5 bytes
            axdr.structure(axdr.long_unsigned(3), axdr.unsigned(0), axdr.octet_string(b"12345"))
        ),
        b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 8,  # an array claiming 4 billion entries
    ],
)
def test_an_object_list_a_meter_garbles_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_object_list(data)


def test_a_clock_read_keeps_the_wall_clock_time_and_the_deviation_as_sent() -> None:
    raw = bytes.fromhex("07ea0c0701112233ff") + (-420).to_bytes(2, "big", signed=True) + b"\x00"
    found = parse_clock(axdr.octet_string(raw), axdr.long(-420), Obis(0, 0, 1, 0, 0), 10.0, 12.0)
    assert (found.meter_local.isoformat(), found.deviation) == ("2026-12-07T17:34:51", -420)
    assert (found.time_zone_attribute, found.status, found.system_utc.timestamp()) == (
        -420,
        0,
        11.0,
    )
    unspecified = raw[:9] + b"\x80\x00\xff"
    found = parse_clock(axdr.octet_string(unspecified), None, Obis(0, 0, 1, 0, 0), 0.0, 0.0)
    assert (found.deviation, found.status) == (None, None)


@pytest.mark.parametrize(
    "value", [axdr.unsigned(3), axdr.octet_string(b"\x07\xea\x0d\x20" + b"\x00" * 8)]
)
def test_a_clock_that_is_no_date_time_is_a_decode_error(value: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_clock(value, None, Obis(0, 0, 1, 0, 0), 0.0, 0.0)
