"""The simulated meters' consumption: deterministic, exact registers, TOU split, buffers, truth."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headend.domain.enums import Transport
from headend.domain.tou import DEFAULT_CALENDAR
from headend.simulator.consumption import IntervalRow, MeterData
from headend.simulator.load_model import scalar_uniform, uniforms
from headend.simulator.spec import MeterSpec

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EPOCH = datetime(2026, 1, 1, tzinfo=HCM)
NOW = EPOCH + timedelta(days=40, hours=10, minutes=7)
TARIFFS = ("A+T1", "A+T2", "A+T3")


def spec(seed: int = 7, **changes: object) -> MeterSpec:
    fields: dict[str, object] = {
        "meter_id": "21000007",
        "seed": seed,
        "profile": "three_phase_tou",
        "transport": Transport.WRAPPER,
        "port": 4059,
        "epoch": EPOCH,
    }
    fields.update(changes)
    return MeterSpec(**fields)  # type: ignore[arg-type]


def energies(rows: list[IntervalRow], channel: str = "A+") -> list[int]:
    return [b.registers[channel] - a.registers[channel] for a, b in itertools.pairwise(rows)]


def snapshot(data: MeterData) -> dict[str, object]:
    rows = data.intervals(NOW - timedelta(days=2), NOW)
    return {
        "registers": data.registers(NOW),
        "rows": [(r.end, r.status, r.registers) for r in rows],
        "billing": data.billing_rows(NOW - timedelta(days=5), NOW),
        "demand": data.max_demand(NOW),
    }


def test_meters_built_from_one_spec_serve_the_same_numbers_whatever_the_order_of_calls() -> None:
    first = MeterData(spec())
    expected = snapshot(first)
    second = MeterData(spec())
    second.intervals(NOW - timedelta(days=3), NOW - timedelta(days=2))  # warm other days first
    second.registers(NOW + timedelta(days=300))
    second.max_demand(NOW - timedelta(days=20))
    assert snapshot(second) == expected


def test_the_numbers_are_the_same_in_another_process() -> None:
    program = (
        "from datetime import datetime, timedelta;"
        "from zoneinfo import ZoneInfo;"
        "from headend.domain.enums import Transport;"
        "from headend.simulator.consumption import MeterData;"
        "from headend.simulator.spec import MeterSpec;"
        "epoch = datetime(2026, 1, 1, tzinfo=ZoneInfo('Asia/Ho_Chi_Minh'));"
        "data = MeterData(MeterSpec('21000007', 7, 'three_phase_tou', Transport.WRAPPER, 4059,"
        " epoch=epoch));"
        "print(data.truth(epoch + timedelta(days=3), epoch + timedelta(days=40)).to_json())"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    here = MeterData(spec()).truth(EPOCH + timedelta(days=3), EPOCH + timedelta(days=40))
    assert json.loads(out.stdout) == here.to_dict()


def test_different_seeds_give_different_consumption() -> None:
    one = MeterData(spec(seed=1)).truth(EPOCH, NOW).consumption["A+"]
    two = MeterData(spec(seed=2)).truth(EPOCH, NOW).consumption["A+"]
    assert one != two


def test_registers_are_exactly_the_start_values_plus_every_interval_since_the_origin() -> None:
    data = MeterData(spec(history_days=400), resolution_wh=1)
    model = data.model
    at = EPOCH + timedelta(days=365)
    origin_day, _ = model.locate(data.origin)
    last_day, last_slot = model.locate(int(at.timestamp()) // 900 * 900)
    total = np.zeros(5, dtype=np.int64)
    for number in range(origin_day, last_day):
        day = model.day(number)  # the per-interval path, independent of the cached day sums
        by_tariff = [int(day.import_[day.period == code].sum()) for code in range(3)]
        total += np.array([*by_tariff, day.export.sum(), day.reactive.sum()])
    tail = model.day(last_day)
    total += tail.counts(np.array([last_slot]))[:, 0]
    start = data.registers(EPOCH)
    registers = data.registers(at)
    assert [registers[k] - start[k] for k in (*TARIFFS, "A-", "R+")] == total.tolist()
    assert registers["A+"] - start["A+"] == int(total[:3].sum())


def test_a_row_carries_the_registers_at_its_end() -> None:
    data = MeterData(spec())
    for row in data.intervals(NOW - timedelta(days=1), NOW)[::7]:
        registers = data.registers(row.end)
        assert row.registers == {k: registers[k] for k in ("A+", "A-", "R+")}


def test_the_tariff_registers_add_up_to_the_total_at_every_interval_end() -> None:
    data = MeterData(spec(seed=11, shape="business"))
    for row in data.intervals(NOW - timedelta(days=3), NOW)[::5]:
        registers = data.registers(row.end)
        assert sum(registers[t] for t in TARIFFS) == registers["A+"]
    start_values = data.registers(EPOCH)
    assert sum(start_values[t] for t in TARIFFS) == start_values["A+"] > 0


def test_the_tariff_registers_split_each_interval_by_the_tou_period_of_its_start() -> None:
    data = MeterData(spec(seed=3, shape="business"))
    start = datetime(2026, 2, 7, tzinfo=HCM)  # Saturday, Sunday and Monday
    rows = data.intervals(start - timedelta(minutes=15), start + timedelta(days=3))
    by_tariff: dict[int, int] = defaultdict(int)
    for previous, row in itertools.pairwise(rows):
        period = DEFAULT_CALENDAR.period_at(previous.end)
        by_tariff[period.tariff] += row.registers["A+"] - previous.registers["A+"]
    first, last = data.registers(rows[0].end), data.registers(rows[-1].end)
    assert [by_tariff[t] for t in (1, 2, 3)] == [last[k] - first[k] for k in TARIFFS]
    assert by_tariff[2] > 0  # weekday peaks were counted
    sunday_peak = [
        b.registers["A+"] - a.registers["A+"]
        for a, b in itertools.pairwise(rows)
        if a.end.astimezone(HCM).weekday() == 6 and DEFAULT_CALENDAR.period_at(a.end).tariff == 2
    ]
    assert sunday_peak == []


def test_every_value_is_a_multiple_of_the_resolution() -> None:
    data = MeterData(spec(seed=5), resolution_wh=10)
    rows = data.intervals(NOW - timedelta(days=1), NOW)
    values = [v for r in rows for v in r.registers.values()] + list(data.registers(NOW).values())
    assert all(v % 10 == 0 for v in values)
    assert any(e > 0 for e in energies(rows))


@pytest.mark.parametrize(("shape", "low", "high"), [("household", 4, 17), ("business", 40, 330)])
def test_a_day_uses_what_a_vietnamese_home_or_small_business_uses(
    shape: str, low: float, high: float
) -> None:
    for seed in range(12):
        truth = MeterData(spec(seed=seed, shape=shape)).truth(EPOCH, EPOCH + timedelta(days=28))
        assert low <= truth.consumption["A+"] / 28 <= high


def test_a_household_peaks_in_the_evening_and_a_business_in_office_hours() -> None:
    def share(shape: str, hours: range) -> float:
        inside = total = 0
        for seed in range(6):
            rows = MeterData(spec(seed=seed, shape=shape)).intervals(EPOCH, EPOCH + timedelta(10))
            for a, b in itertools.pairwise(rows):
                energy = b.registers["A+"] - a.registers["A+"]
                total += energy
                inside += energy * (a.end.astimezone(HCM).hour in hours)
        return inside / total

    assert share("household", range(18, 22)) > 4 / 24 * 1.4
    assert share("business", range(8, 17)) > 9 / 24 * 1.4


def test_export_is_zero_for_most_meters_and_a_midday_shape_for_the_others() -> None:
    exporting = []
    for seed in range(40):
        data = MeterData(spec(seed=seed))
        if data.truth(EPOCH, EPOCH + timedelta(days=2)).consumption["A-"] > 0:
            exporting.append(data)
    assert 0 < len(exporting) < 20
    rows = exporting[0].intervals(EPOCH, EPOCH + timedelta(days=2))
    for a, b in itertools.pairwise(rows):
        if b.registers["A-"] > a.registers["A-"]:
            assert 6 <= a.end.astimezone(HCM).hour < 18


def test_reactive_energy_is_a_fraction_of_the_import() -> None:
    for seed in range(5):
        consumption = MeterData(spec(seed=seed)).truth(EPOCH, NOW).consumption
        assert Decimal("0.1") < consumption["R+"] / consumption["A+"] < Decimal("0.7")


def test_a_thirty_minute_capture_period_gives_48_rows_a_day_on_the_half_hours() -> None:
    data = MeterData(spec(capture_period_s=1800))
    day = datetime(2026, 2, 3, tzinfo=HCM)
    rows = data.intervals(day, day + timedelta(days=1))
    assert len(rows) == 48
    assert rows[0].end == day + timedelta(minutes=30) and rows[-1].end == day + timedelta(days=1)
    assert all(r.end.minute in (0, 30) and r.end.second == 0 for r in rows)
    registers = data.registers(day + timedelta(days=1))
    assert sum(registers[t] for t in TARIFFS) == registers["A+"] == rows[-1].registers["A+"]


def test_the_buffer_holds_history_days_back_from_now() -> None:
    data = MeterData(spec(history_days=10))
    newest = NOW.replace(minute=0)
    first = data.first_interval_end(NOW)
    assert first == newest - timedelta(days=10) + timedelta(minutes=15)
    rows = data.intervals(NOW - timedelta(days=20), NOW, now=NOW)
    assert rows[0].end == first and rows[-1].end == newest
    assert len(rows) == 10 * 96
    assert data.intervals(NOW - timedelta(days=20), NOW - timedelta(days=11), now=NOW) == []


def test_no_row_is_older_than_the_meter_and_registers_keep_counting_from_its_origin() -> None:
    data = MeterData(spec(history_days=40))
    early = EPOCH + timedelta(days=2)
    assert data.first_interval_end(early) == EPOCH + timedelta(minutes=15)
    rows = data.intervals(EPOCH - timedelta(days=5), early)
    assert rows[0].end == EPOCH + timedelta(minutes=15)
    assert data.registers(EPOCH - timedelta(days=3)) == data.registers(EPOCH)
    assert data.registers(NOW)["A+"] > data.registers(EPOCH)["A+"]


def test_rows_are_those_ending_after_start_up_to_end_oldest_first() -> None:
    data = MeterData(spec())
    start, end = datetime(2026, 2, 2, 10, 0, tzinfo=HCM), datetime(2026, 2, 2, 11, 0, tzinfo=HCM)
    rows = data.intervals(start, end)
    assert [r.end.astimezone(HCM).strftime("%H:%M") for r in rows] == [
        "10:15",
        "10:30",
        "10:45",
        "11:00",
    ]
    assert all(r.end.utcoffset() == timedelta(0) for r in rows)


def test_maximum_demand_is_the_largest_interval_of_the_local_month_in_watts() -> None:
    data = MeterData(spec(seed=9))
    month = datetime(2026, 2, 1, tzinfo=HCM)
    rows = data.intervals(month - timedelta(minutes=15), NOW)
    steps = [(b.registers["A+"] - a.registers["A+"], b.end) for a, b in itertools.pairwise(rows)]
    largest = max(energy for energy, _ in steps)
    watts, when = data.max_demand(NOW)
    assert watts == largest * 4  # W from Wh in a quarter of an hour
    assert when == min(end for energy, end in steps if energy == largest)
    at_month_start = data.max_demand(month)  # the snapshot at midnight covers January
    january = data.intervals(EPOCH, month)
    assert at_month_start[0] == 4 * max(energies(january))


def test_a_billing_snapshot_is_taken_at_each_local_midnight() -> None:
    data = MeterData(spec())
    rows = data.billing_rows(NOW - timedelta(days=4), NOW)
    assert len(rows) == 4
    for row in rows:
        local = row.time.astimezone(HCM)
        assert (local.hour, local.minute) == (0, 0)
        assert row.registers == data.registers(row.time)
        assert (row.max_demand_w, row.max_demand_time) == data.max_demand(row.time)


def test_the_truth_gives_registers_and_consumption_per_channel_and_tariff_in_kwh() -> None:
    data = MeterData(spec(seed=4))
    start, end = EPOCH + timedelta(days=5, hours=3), NOW
    truth = data.truth(start, end)
    document = json.loads(truth.to_json())
    assert document["meter_id"] == "21000007"
    assert document["start"] == start.isoformat() and document["end"].endswith("+07:00")
    before, after = data.registers(start), data.registers(end)
    for key in ("A+", *TARIFFS, "A-", "R+"):
        assert Decimal(document["registers"]["start"][key]) * 1000 == before[key]
        assert Decimal(document["registers"]["end"][key]) * 1000 == after[key]
    consumption = {k: Decimal(v) for k, v in document["consumption"].items()}
    tariffs = {k: Decimal(v) for k, v in document["tariffs"].items()}
    assert consumption["A+"] * 1000 == after["A+"] - before["A+"]
    assert sum(tariffs.values()) == consumption["A+"] == truth.consumption["A+"]
    by_tariff = [after[k] - before[k] for k in TARIFFS]
    assert [tariffs[t] * 1000 for t in ("T1", "T2", "T3")] == by_tariff
    assert document["faults"] == []


def test_reading_a_day_of_intervals_again_and_again_gives_the_same_96_rows() -> None:
    data = MeterData(spec())
    first = data.intervals(NOW - timedelta(days=1), NOW)
    registers = data.registers(NOW)
    for _ in range(200):
        assert data.intervals(NOW - timedelta(days=1), NOW) == first
        assert data.registers(NOW) == registers
    assert len(first) == 96


def test_a_meter_without_an_epoch_counts_from_2024_and_keeps_history_days_before_now() -> None:
    now = datetime(2026, 11, 27, 16, 7, tzinfo=HCM)
    data = MeterData(spec(epoch=None), reference=now)
    assert data.origin == int(datetime(2024, 1, 1, tzinfo=HCM).timestamp())
    assert data.first_interval_end(now) == now.replace(minute=15) - timedelta(days=40)
    rows = data.intervals(now - timedelta(days=60), now, now=now)
    assert len(rows) == 40 * 96
    again = MeterData(spec(epoch=None), reference=now)
    assert again.registers(now) == data.registers(now)
    assert data.registers(now)["A+"] - data.registers(datetime(2024, 1, 1, tzinfo=HCM))["A+"] > 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**40),
    shape=st.sampled_from(["household", "business"]),
    offset_min=st.integers(min_value=0, max_value=60 * 24 * 35),
    length_min=st.integers(min_value=0, max_value=60 * 24 * 5),
)
def test_the_truth_and_the_registers_always_agree(
    seed: int, shape: str, offset_min: int, length_min: int
) -> None:
    data = MeterData(spec(seed=seed, shape=shape))
    start = EPOCH + timedelta(minutes=offset_min)
    end = start + timedelta(minutes=length_min)
    truth = data.truth(start, end)
    before, after = data.registers(start), data.registers(end)
    assert truth.consumption["A+"] * 1000 == after["A+"] - before["A+"] >= 0
    assert [truth.tariffs[t] * 1000 for t in ("T1", "T2", "T3")] == [
        after[k] - before[k] for k in TARIFFS
    ]
    assert sum(after[k] for k in TARIFFS) == after["A+"]


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    stream=st.integers(min_value=0, max_value=10_000),
    index=st.integers(min_value=0, max_value=2**62),
)
def test_a_single_draw_equals_the_same_draw_from_an_array(
    seed: int, stream: int, index: int
) -> None:
    array = uniforms(seed, stream, np.array([index, 0], dtype=np.int64))
    assert scalar_uniform(seed, stream, index) == array[0]
    assert 0.0 <= array[0] < 1.0
