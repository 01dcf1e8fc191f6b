"""SET, ACTION and the serial framings, against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from headend.domain.enums import AuthLevel, SerialFraming, Transport
from headend.domain.obis import Obis
from headend.protocol import axdr
from headend.protocol.errors import AccessDeniedError, ObjectUnavailableError
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.protocol.xdlms import AttributeRef, MethodRef
from tests.ports import free_port
from tests.protocol.simfleet import meter, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)
DISCONNECT = Obis(0, 0, 96, 3, 10)


def test_a_remote_disconnect_and_reconnect_are_actions_the_meter_carries_out() -> None:
    spec = meter("A1", Transport.WRAPPER, free_port(), AuthLevel.HLS_GMAC)
    with serving([spec]) as fleet:

        async def go() -> list[object]:
            async with MeterSession(fleet.target("A1"), counters=MemoryCounterStore()) as s:
                state = AttributeRef(70, DISCONNECT, 2)
                seen = [axdr.decode(await s.get(state))]
                await s.action(MethodRef(70, DISCONNECT, 1), axdr.integer(0))
                seen.append(axdr.decode(await s.get(state)))
                await s.action(MethodRef(70, DISCONNECT, 2), axdr.integer(0))
                seen.append(axdr.decode(await s.get(state)))
                return seen

        assert run(go()) == [True, False, True]


def test_writing_a_read_only_attribute_is_access_denied_and_the_session_goes_on() -> None:
    spec = meter("A2", Transport.WRAPPER, free_port(), AuthLevel.LLS)
    with serving([spec]) as fleet:

        async def go() -> tuple[type, type, bytes]:
            async with MeterSession(fleet.target("A2")) as s:
                register = AttributeRef(3, Obis(1, 0, 1, 8, 0), 2)
                with pytest.raises(AccessDeniedError) as denied:
                    await s.set(register, axdr.double_long_unsigned(0))
                with pytest.raises(ObjectUnavailableError) as missing:
                    await s.get(AttributeRef(3, Obis(1, 0, 99, 99, 0), 2))
                return type(denied.value), type(missing.value), await s.get(register)

        denied, missing, value = run(go())
    assert denied is AccessDeniedError and missing is ObjectUnavailableError
    assert isinstance(axdr.decode(value), int)


@pytest.mark.parametrize("framing", [SerialFraming.F8N1, SerialFraming.F7E1])
def test_a_serial_port_opens_with_the_gateways_framing(
    tmp_path: Path, framing: SerialFraming
) -> None:
    device = str(tmp_path / "ttyOPTO")
    spec = meter("O1", Transport.HDLC, 0, serial_device=device)
    with serving([spec]) as fleet:

        async def go() -> bytes:
            target = fleet.target("O1", framing=framing, baud_rate=9600)
            async with MeterSession(target) as s:
                return await s.get(AttributeRef(1, Obis(0, 0, 96, 1, 0), 2))

        assert axdr.decode(run(go())) in (b"O1", "O1")
