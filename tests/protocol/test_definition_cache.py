"""Scalers and capture objects are read once per meter, model and firmware."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.domain.readings import MeterRead
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget, build_transport
from headend.protocol.transports import Transport as TransportProtocol
from tests.conftest import REPO
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter, serving
from tests.protocol.support import run

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


def session_of(
    fleet: Fleet, target: MeterTarget, cache: DefinitionCache
) -> tuple[MeterRead, int, str]:
    """One collection: what it read, the requests it took, the firmware keying its cache."""
    transport = Counting(build_transport(target))
    what = Collection(start=NOW - timedelta(hours=2), end=NOW)

    async def go() -> tuple[MeterRead, str]:
        async with MeterSession(target, transport=transport) as session:
            read = await collect(session, fleet.read_spec("K1"), what, cache)
            return read, session.firmware

    read, firmware = run(go())
    return read, transport.requests, firmware


def requests_of(fleet: Fleet, target: MeterTarget, cache: DefinitionCache) -> int:
    return session_of(fleet, target, cache)[1]


def test_a_second_session_reuses_scalers_and_capture_objects_of_the_firmware_it_reads() -> None:
    with serving([meter("K1", Transport.WRAPPER, free_port())]) as fleet:
        cache = DefinitionCache()
        target = fleet.target("K1")
        first, first_requests, keyed = session_of(fleet, target, cache)
        # the registry's firmware is what the last read reported
        second = requests_of(fleet, replace(target, firmware="1.0.0"), cache)
        # a stale firmware in the registry: the one the meter reports keys the cache
        stale = requests_of(fleet, replace(target, firmware="0.9"), cache)
    assert (first.firmware, keyed) == ("1.0.0", "1.0.0")
    assert second < first_requests
    # AARQ, one GET with list (serial, firmware, clock, registers), the buffer, RLRQ
    assert second == 4
    assert stale == 4  # nothing was cached under 0.9: the scalers rode in the same request
    assert cache.table("K1", "single_phase_residential", "0.9") == {}


def profiles_scaled(folder: Path, scaler: int) -> Path:
    """The shipped profiles, the household meter's energy registers with ``scaler``."""
    shutil.copytree(REPO / "protocols", folder)
    path = folder / "single_phase_residential.yaml"
    text = path.read_text().replace("quantity: A+, scaler: 0", f"quantity: A+, scaler: {scaler}")
    text = text.replace("quantity: A-, scaler: 0", f"quantity: A-, scaler: {scaler}")
    path.write_text(text)
    return folder


def test_a_meter_whose_firmware_changed_is_read_with_the_scalers_of_its_new_firmware(
    tmp_path: Path,
) -> None:
    cache = DefinitionCache()
    port = free_port()
    with serving([meter("K1", Transport.WRAPPER, port)]) as fleet:
        before, _, _ = session_of(fleet, fleet.target("K1"), cache)
        healthy = requests_of(fleet, fleet.target("K1", firmware="1.0.0"), cache)
    # the same meter after an upgrade: firmware 2.0.0 counts its energy in tens of Wh
    folder = profiles_scaled(tmp_path / "profiles", 1)
    upgraded = replace(meter("K1", Transport.WRAPPER, port, profiles=folder), firmware="2.0.0")
    with serving([upgraded], profiles=folder) as fleet:
        after, requests, keyed = session_of(fleet, fleet.target("K1", firmware="1.0.0"), cache)
        data = fleet.data("K1")
        truth = data.registers(NOW)
        intervals = data.intervals(NOW - timedelta(hours=2), NOW, now=NOW)
    assert (before.firmware, after.firmware, keyed) == ("1.0.0", "2.0.0", "2.0.0")
    a_plus = Obis.parse("1.0.1.8.0.255")
    assert before.registers[a_plus].scaler == 0
    assert after.registers[a_plus].scaler == 1
    assert after.registers[a_plus].value == Decimal(truth["A+"] // 10 * 10)
    assert after.load_profile is not None
    column = next(c for c in after.load_profile.columns if c.obis == a_plus)
    assert column.scaler == 1
    assert [row.values[a_plus] for row in after.load_profile.rows] == [
        Decimal(row.registers["A+"] // 10 * 10) for row in intervals
    ]
    old = cache.table("K1", "single_phase_residential", "1.0.0")
    new = cache.table("K1", "single_phase_residential", "2.0.0")
    assert (old[a_plus], new[a_plus]) == ((0, 30), (1, 30))
    assert cache.profiles("K1", "single_phase_residential", "2.0.0")
    # the scalers taken from 1.0.0's cache read again, and the capture objects under 2.0.0
    assert requests == healthy + 2
