"""Each data fault of a simulated meter, as a client sees it over the TCP wrapper."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from statistics import median

import pytest

from headend.domain.enums import AuthLevel, Transport
from headend.domain.obis import Obis
from headend.domain.quality import Flag
from headend.domain.readings import MeterRead
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.simulator.spec import Fault, FaultKind
from tests.ports import free_port
from tests.protocol.simfleet import NOW, meter, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)
A_PLUS = Obis.parse("1.0.1.8.0.255")


def _read(kind: FaultKind, **params: float) -> tuple[MeterRead, str]:
    spec = meter(
        "F1",
        Transport.WRAPPER,
        free_port(),
        AuthLevel.NONE,
        faults=(Fault(kind, dict(params)),),
        seed=41,
    )
    with serving([spec]) as fleet:
        read_spec = fleet.read_spec("F1")

        async def go() -> MeterRead:
            async with MeterSession(fleet.target("F1"), counters=MemoryCounterStore()) as s:
                what = Collection(start=NOW - timedelta(days=3), end=NOW)
                return await collect(s, read_spec, what, DefinitionCache())

        return run(go()), spec.meter_id


def _cumulative(read: MeterRead) -> list[tuple[object, Decimal]]:
    assert read.load_profile is not None
    return [(row.interval_end, row.values[A_PLUS]) for row in read.load_profile.rows]


def test_an_outage_is_a_gap_in_the_load_profile_closed_by_a_power_down_row() -> None:
    read, _ = _read(FaultKind.OUTAGE, hours=6, days_ago=1)
    assert read.load_profile is not None
    rows = read.load_profile.rows
    steps = [b.interval_end - a.interval_end for a, b in pairwise(rows)]
    gap = max(steps)
    assert timedelta(hours=5, minutes=45) <= gap <= timedelta(hours=6, minutes=15)
    after = rows[steps.index(gap) + 1]
    assert after.flags & Flag.POWER_FAIL


def test_a_spike_is_one_interval_far_above_its_neighbours() -> None:
    read, _ = _read(FaultKind.SPIKE, days_ago=1, factor=20)
    values = _cumulative(read)
    deltas = [b[1] - a[1] for a, b in pairwise(values)]
    assert max(deltas) > 8 * median(d for d in deltas if d > 0)


def test_a_register_going_backwards_is_seen_between_two_captures() -> None:
    read, _ = _read(FaultKind.BACKWARDS, days_ago=1, wh=5000)
    values = _cumulative(read)
    drops = [a[1] - b[1] for a, b in pairwise(values) if b[1] < a[1]]
    assert drops and max(drops) > 4000


def test_a_rollover_wraps_the_register_from_near_its_maximum_to_near_zero() -> None:
    read, _ = _read(FaultKind.ROLLOVER, days_ago=1)
    values = [v for _, v in _cumulative(read)]
    assert max(values) > Decimal(9 * 10**8)
    assert min(values) < Decimal(10**8)


def test_an_exchanged_meter_reports_another_serial_and_registers_from_zero() -> None:
    read, meter_id = _read(FaultKind.EXCHANGE, days_ago=1)
    assert read.serial_number is not None and read.serial_number != meter_id
    assert read.registers[A_PLUS].value < Decimal(100_000)


def test_a_drifting_clock_is_off_by_its_drift() -> None:
    read, _ = _read(FaultKind.CLOCK_DRIFT, seconds=-420)
    assert read.clock is not None
    assert -430 < read.clock.drift_s + (read.clock.system_time - NOW).total_seconds() < -410
