"""The meter's firmware identifier: decoded from what the meter sends (bounded, never a
traceback), read in the request that carries the serial number, and a meter without one read
as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.domain.readings import MeterRead
from headend.protocol import axdr
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import DecodeError
from headend.protocol.registers import DefinitionCache, firmware_identifier
from headend.protocol.session import MeterSession
from headend.simulator.spec import Quirk
from tests.ports import free_port
from tests.protocol.simfleet import NOW, meter, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)
FIRMWARE = Obis.parse("1.0.0.2.0.255")


@pytest.mark.parametrize(
    ("sent", "identifier"),
    [
        (axdr.visible_string("TOU-3.14"), "TOU-3.14"),
        (axdr.octet_string(b"V2.01\x00\x00"), "V2.01"),  # padded with NULs
        (axdr.octet_string(b"1.0.7  "), "1.0.7"),
        (axdr.octet_string(b"\x01\x02\xff"), "0102ff"),  # not text: shown in hex
    ],
)
def test_a_firmware_identifier_is_read_as_text(sent: bytes, identifier: str) -> None:
    assert firmware_identifier(axdr.decode(sent)) == identifier


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"", "is empty"),
        (b"\x00\x00", "is empty"),
        ("x" * 65, "longer than 64 characters"),
        (7, "is not a string"),
        (None, "is not a string"),
    ],
)
def test_a_firmware_identifier_that_is_not_one_is_a_decode_error(
    value: axdr.Value, problem: str
) -> None:
    with pytest.raises(DecodeError, match=problem):
        firmware_identifier(value)


def _collect(spec_changes: dict[str, Any]) -> tuple[MeterRead, str]:
    spec = replace(meter("F1", Transport.WRAPPER, free_port()), **spec_changes)
    with serving([spec]) as fleet:
        target = fleet.target("F1", firmware="1.0.0")
        what = Collection(start=NOW - timedelta(hours=1), end=NOW)

        async def go() -> tuple[MeterRead, str]:
            async with MeterSession(target) as session:
                read = await collect(session, fleet.read_spec("F1"), what, DefinitionCache())
                return read, session.firmware

        return run(go())


def test_a_meter_without_a_firmware_identifier_is_read_and_keeps_the_stored_firmware() -> None:
    read, keyed = _collect({"missing_objects": (str(FIRMWARE),)})
    assert read.firmware is None
    assert FIRMWARE in read.unavailable
    assert read.registers and read.load_profile is not None
    assert keyed == "1.0.0"


def test_a_meter_garbling_its_list_answers_still_reports_its_firmware() -> None:
    read, keyed = _collect(
        {
            "firmware": "5.1",
            "quirks": (Quirk.SHORT_LIST_AFTER_FAILURE,),
            "missing_objects": ("1.0.1.6.0.255",),
        }
    )
    assert read.firmware == "5.1"
    assert "get_with_list_unreliable" in read.learned
    assert keyed == "5.1"
