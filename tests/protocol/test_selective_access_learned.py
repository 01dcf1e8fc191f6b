"""What a session learns of a meter refusing one kind of selective access, over the wire: a
meter taking entry access but refusing ranges is read by entries and the refusal learned, and
a session that knows it asks for no range."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.domain.readings import MeterRead
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import RANGE_ACCESS_REFUSED, MeterSession
from headend.protocol.streams import Traffic
from headend.protocol.target import build_transport
from headend.simulator.cosem import RangeSelector
from headend.simulator.devices import cosem_devices, link_parameters
from headend.simulator.meter import Device
from headend.simulator.objects import AccessDenied, Result
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter
from tests.protocol.support import run
from tests.protocol.test_tolerant_reads import Recording

pytestmark = pytest.mark.timeout(60)
LOAD_PROFILE = Obis.parse("1.0.99.1.0.255")


@contextmanager
def refusing_ranges(transport: Transport) -> Iterator[Fleet]:
    """One meter whose load profile refuses range access and takes entry access."""
    spec: MeterSpec = meter("RANGELESS", transport, free_port(), seed=5)
    honest = cosem_devices(now=lambda: NOW)

    def build(s: MeterSpec) -> Device:
        device = honest(s)
        find: Callable[[Obis], Any] = device.find  # type: ignore[attr-defined]
        buffer = find(LOAD_PROFILE)
        get = buffer.get

        def refusing(index: int, selection: object, ctx: object) -> bytes:
            if isinstance(selection, RangeSelector):
                raise AccessDenied(Result.OTHER_REASON)
            return bytes(get(index, selection, ctx))

        buffer.get = refusing
        return device

    sim = BackgroundSimulator(Simulator([spec], build, link_parameters))
    with sim:
        yield Fleet(sim, {spec.meter_id: spec})


def is_range_request(apdu: bytes) -> bool:
    """A GET-request-normal with selective access by selector 1."""
    return apdu[:2] == b"\xc0\x01" and len(apdu) > 13 and apdu[12] == 1 and apdu[13] == 1


def read(fleet: Fleet, known: frozenset[str] = frozenset()) -> tuple[MeterRead, list[bytes]]:
    target = fleet.target("RANGELESS", known_quirks=known)
    wire = Recording(build_transport(target, Traffic()))

    async def go() -> MeterRead:
        async with MeterSession(target, transport=wire) as session:
            what = Collection(start=NOW - timedelta(hours=6), end=NOW)
            return await collect(session, fleet.read_spec("RANGELESS"), what, DefinitionCache())

    return run(go()), wire.requests


def assert_the_period_is_read(fleet: Fleet, got: MeterRead) -> None:
    assert got.load_profile is not None and got.load_profile.access == "entry"
    truth = fleet.data("RANGELESS").intervals(NOW - timedelta(hours=6), NOW, now=NOW)
    assert [row.interval_end for row in got.load_profile.rows] == [t.end for t in truth]
    a_plus = Obis.parse("1.0.1.8.0.255")
    assert [r.values[a_plus] for r in got.load_profile.rows] == [t.registers["A+"] for t in truth]


@pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])
def test_a_meter_refusing_ranges_is_read_by_entries_and_the_refusal_is_learned(
    transport: Transport,
) -> None:
    with refusing_ranges(transport) as fleet:
        got, requests = read(fleet)
    assert_the_period_is_read(fleet, got)
    assert got.learned == (RANGE_ACCESS_REFUSED,)
    assert sum(is_range_request(apdu) for apdu in requests) == 1  # paid once


@pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])
def test_a_session_knowing_the_model_refuses_ranges_asks_for_none(transport: Transport) -> None:
    with refusing_ranges(transport) as fleet:
        got, requests = read(fleet, frozenset({RANGE_ACCESS_REFUSED}))
    assert_the_period_is_read(fleet, got)
    assert got.learned == ()
    assert not any(is_range_request(apdu) for apdu in requests)
