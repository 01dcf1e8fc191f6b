"""Scalers and capture objects are read once per meter, model and firmware."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from headend.domain.enums import Transport
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget, build_transport
from headend.protocol.transports import Transport as TransportProtocol
from tests.protocol.simfleet import NOW, Fleet, meter, serving
from tests.protocol.support import free_port, run

pytestmark = pytest.mark.timeout(60)


class Counting:
    """A ``Transport`` that counts the requests of the transport it wraps."""

    def __init__(self, inner: TransportProtocol) -> None:
        self.inner = inner
        self.requests = 0

    async def open(self) -> None:
        await self.inner.open()

    async def exchange(self, apdu: bytes) -> bytes:
        self.requests += 1
        return await self.inner.exchange(apdu)

    async def close(self) -> None:
        await self.inner.close()


def requests_of(fleet: Fleet, target: MeterTarget, cache: DefinitionCache) -> int:
    transport = Counting(build_transport(target))
    what = Collection(start=NOW - timedelta(hours=2), end=NOW)

    async def go() -> None:
        async with MeterSession(target, transport=transport) as session:
            await collect(session, fleet.read_spec("K1"), what, cache)

    run(go())
    return transport.requests


def test_a_second_session_reuses_scalers_and_capture_objects_until_the_firmware_changes() -> None:
    with serving([meter("K1", Transport.WRAPPER, free_port())]) as fleet:
        cache = DefinitionCache()
        target = fleet.target("K1")
        first = requests_of(fleet, target, cache)
        second = requests_of(fleet, target, cache)
        upgraded = requests_of(fleet, replace(target, firmware="2.0"), cache)
    assert second < first
    assert upgraded == first
    # AARQ, one GET with list (serial, clock, registers), the buffer, RLRQ
    assert second == 4
