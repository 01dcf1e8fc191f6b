"""Load profiles and registers as read become VEE's intervals and register reads."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.readings import Column, LoadProfile, ProfileRow, RegisterValue
from headend.vee.adapt import from_profile, from_registers
from headend.vee.pipeline import run_vee

from .helpers import LATER, MIDNIGHT

A_PLUS = Obis.parse("1.0.1.8.0.255")
LP1 = Obis.parse("1.0.99.1.0.255")


def _profile(wh: dict[int, int], status: dict[int, int] | None = None) -> LoadProfile:
    rows = tuple(
        ProfileRow(
            MIDNIGHT + timedelta(minutes=15 * i), (status or {}).get(i, 0), {A_PLUS: Decimal(v)}
        )
        for i, v in sorted(wh.items())
    )
    return LoadProfile(LP1, 900, (Column(3, A_PLUS, 2, unit="Wh"),), rows)


def test_a_cumulative_profile_becomes_interval_energy_in_kwh() -> None:
    intervals, registers = from_profile("M1", _profile({0: 1000, 1: 1100, 2: 1250}), A_PLUS)
    assert [i.value for i in intervals] == [Decimal("0.100"), Decimal("0.150")]
    assert [i.interval_end for i in intervals] == [
        MIDNIGHT + timedelta(minutes=m) for m in (15, 30)
    ]
    assert len(registers) == 3


def test_a_hole_in_the_buffer_is_filled_from_the_cumulative_values() -> None:
    profile = _profile({0: 1000, 1: 1100, 4: 1400, 5: 1500})
    intervals, registers = from_profile("M1", profile, A_PLUS)
    result = run_vee(intervals, registers, now=LATER)
    filled = [v for v in result.versions if v.method is not None]
    assert [(v.method, v.value) for v in filled] == [("E2", Decimal("0.100"))] * 3


def test_only_cumulative_energy_registers_are_taken() -> None:
    values = [
        RegisterValue(A_PLUS, Decimal("12345"), "Wh", 0, 12345),
        RegisterValue(Obis.parse("1.0.1.6.0.255"), Decimal("3"), "W", 0, 3),
    ]
    (read,) = from_registers("M1", values, MIDNIGHT)
    assert (read.obis, read.value, read.read_at) == (A_PLUS, Decimal("12.345"), MIDNIGHT)
