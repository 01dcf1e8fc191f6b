"""run_vee beyond the golden files: events, clock checks, meter classes, re-read requests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from headend.domain.obis import Obis
from headend.vee.model import ClockCheck, MeterContext, Outage, RegisterRead
from headend.vee.pipeline import run_vee

from .helpers import LATER, MIDNIGHT, series


def test_a_recorded_outage_is_filled_with_zeros() -> None:
    reads = series(["0.2", "0.2", None, None, None, "0.2"])
    outage = Outage("M1", MIDNIGHT + timedelta(minutes=30), MIDNIGHT + timedelta(minutes=75))
    result = run_vee(reads, now=LATER, outages=[outage])
    assert [v.quality.value for v in result.versions[2:5]] == ["EST_ZERO"] * 3
    assert {v.value for v in result.versions[2:5]} == {Decimal("0.000")}


def test_without_an_outage_record_the_same_gap_is_interpolated() -> None:
    result = run_vee(series(["0.2", "0.2", None, None, None, "0.2"]), now=LATER)
    assert [v.method for v in result.versions[2:5]] == ["E3"] * 3


def test_a_clock_off_by_more_than_twenty_seconds_is_a_finding() -> None:
    checks = [
        ClockCheck("M1", MIDNIGHT + timedelta(minutes=20), 31.0),
        ClockCheck("M1", MIDNIGHT + timedelta(minutes=25), 4.0),
    ]
    result = run_vee(series(["0.1", "0.1"]), now=LATER, clock_checks=checks)
    assert [(f.rule, f.detail) for f in result.findings] == [
        ("V03", "meter clock off by +31 s, more than 20 s")
    ]


def test_a_three_phase_meter_has_a_higher_physical_limit() -> None:
    reads = series(["1.0", "1.0", "4.0", "1.0"])
    single = run_vee(reads, now=LATER)
    three = run_vee(reads, now=LATER, contexts={"M1": MeterContext(meter_class="three_phase")})
    assert "V09" in single.versions[2].rules
    assert three.versions[2].quality.value == "VALID"


def test_a_gap_inside_the_retention_window_asks_for_a_re_read() -> None:
    reads = series(["0.1", None, "0.1"])
    result = run_vee(reads, now=MIDNIGHT + timedelta(days=1))
    (request,) = result.reread_requests
    assert (request.start, request.end) == (
        MIDNIGHT + timedelta(minutes=15),
        MIDNIGHT + timedelta(minutes=30),
    )
    assert request.not_after == request.start + timedelta(days=40)
    assert request.rules == ("V01",)
    assert result.versions[1].quality.value == "EST_LINEAR"


def test_series_of_several_meters_and_channels_are_kept_apart() -> None:
    reads = series(["0.1", "0.2"], meter="A") + series(["0.3", None, "0.5"], meter="B")
    result = run_vee(reads, now=LATER)
    assert [(v.meter_id, str(v.value)) for v in result.versions] == [
        ("A", "0.1"),
        ("A", "0.2"),
        ("A", "None"),
        ("B", "0.3"),
        ("B", "0.400"),
        ("B", "0.5"),
    ]


def test_stored_history_supplies_the_like_day() -> None:
    last_week = MIDNIGHT - timedelta(days=7)
    history = run_vee(
        series([f"{0.1 + 0.001 * i:.3f}" for i in range(96)], start=last_week), now=LATER
    ).versions
    today = [f"{0.1 + 0.001 * i:.3f}" if not 40 <= i < 60 else None for i in range(96)]
    result = run_vee(series(today), now=LATER, history=history)
    assert len(result.versions) == 96
    filled = result.versions[40:60]
    assert {v.method for v in filled} == {"E4"}
    assert [v.value for v in filled] == [Decimal(f"{0.1 + 0.001 * i:.3f}") for i in range(40, 60)]
    assert filled[0].inputs == "like day 2026-11-12"


def test_an_estimate_that_fails_revalidation_falls_back_to_the_next_method() -> None:
    obis = Obis.parse("1.0.1.8.0.255")
    registers = [
        RegisterRead("M1", obis, MIDNIGHT, Decimal("100.000")),
        RegisterRead("M1", obis, MIDNIGHT + timedelta(hours=1), Decimal("105.300")),
    ]
    result = run_vee(series(["0.100", None, "0.100", "0.100"]), registers, now=LATER)
    assert result.versions[1].method == "E3"
    assert result.versions[1].value == Decimal("0.100")
    assert [f.rule for f in result.findings if f.rule == "V09"] == ["V09"]


def test_a_register_bracketed_gap_takes_the_shape_of_the_like_day() -> None:
    last_week = MIDNIGHT - timedelta(days=7)
    shape = ["0.100", "0.100", "0.100", "0.300", "0.100", "0.100", "0.100", "0.100"]
    history = run_vee(series(shape, start=last_week), now=LATER).versions
    obis = Obis.parse("1.0.1.8.0.255")
    registers = [
        RegisterRead("M1", obis, MIDNIGHT, Decimal("50.000")),
        RegisterRead("M1", obis, MIDNIGHT + timedelta(hours=2), Decimal("51.400")),
    ]
    today = ["0.100", "0.100", None, None, "0.100", "0.100", "0.100", "0.100"]
    result = run_vee(series(today), registers, now=LATER, history=history)
    filled = result.versions[2:4]
    assert [v.method for v in filled] == ["E2", "E2"]
    assert [v.value for v in filled] == [Decimal("0.200"), Decimal("0.600")]


def test_a_register_period_far_above_the_meter_s_own_history_is_flagged() -> None:
    obis = Obis.parse("1.0.1.8.0.255")
    indices = ["100.000", "110.000", "120.000", "130.000", "175.000"]  # 10 kWh/day, then 45
    registers = [
        RegisterRead("M1", obis, MIDNIGHT + timedelta(days=d), Decimal(v))
        for d, v in enumerate(indices)
    ]
    result = run_vee(series(["0.1", "0.1"]), registers, now=LATER)
    (finding,) = [f for f in result.findings if f.rule == "V08"]
    assert finding.channel == "1.0.1.8.0.255"
    assert finding.start == MIDNIGHT + timedelta(days=3)
    assert finding.detail.startswith("register advanced 45.000 kWh/day against an average of 10")


def test_a_series_that_starts_off_the_grid_expects_no_interval_before_it() -> None:
    start = MIDNIGHT + timedelta(minutes=5)  # first row ends at 00:20, off the grid
    reads = series(["0.050", "0.100"], start=start)
    result = run_vee(reads, now=LATER)
    assert [v.interval_end.strftime("%H:%M") for v in result.versions] == ["00:30", "00:45"]
    assert result.versions[0].value == Decimal("0.050")
    assert result.versions[0].rules == ("V02",)
