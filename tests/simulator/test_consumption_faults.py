"""Data faults of the consumption model, as the intervals, registers and events show them."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from headend.domain.enums import Transport
from headend.simulator.consumption import (
    EVENT_POWER_DOWN,
    EVENT_POWER_UP,
    REGISTER_MODULUS_WH,
    STATUS_POWER_DOWN,
    MeterData,
)
from headend.simulator.spec import Fault, FaultKind, MeterSpec

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EPOCH = datetime(2026, 1, 1, tzinfo=HCM)
NOW = EPOCH + timedelta(days=40)  # the meters' reference day: faults sit days_ago before it
QUARTER = timedelta(minutes=15)
TARIFFS = ("A+T1", "A+T2", "A+T3")


def meter(*faults: Fault, seed: int = 21) -> MeterData:
    return MeterData(
        MeterSpec(
            "21000021", seed, "three_phase_tou", Transport.WRAPPER, 4059,
            epoch=EPOCH, faults=faults,
        )
    )  # fmt: skip


def fault(kind: FaultKind, **params: float) -> Fault:
    return Fault(kind, dict(params))


def test_clock_drift_puts_the_meters_clock_off_by_its_seconds() -> None:
    data = meter(fault(FaultKind.CLOCK_DRIFT, seconds=300))
    assert data.meter_time(NOW) == NOW + timedelta(seconds=300)
    assert data.meter_time(NOW).utcoffset() == timedelta(0)
    assert meter().meter_time(NOW) == NOW


def test_clock_drift_without_seconds_draws_a_few_minutes_from_the_seed() -> None:
    drifts = {
        (meter(fault(FaultKind.CLOCK_DRIFT), seed=s).meter_time(NOW) - NOW).total_seconds()
        for s in range(8)
    }
    assert all(60 <= abs(d) <= 900 for d in drifts) and len(drifts) > 1


def test_an_outage_leaves_a_gap_flags_the_next_row_and_logs_power_down_and_up() -> None:
    data = meter(fault(FaultKind.OUTAGE, hours=3, days_ago=1, hour=20))
    down = datetime(2026, 2, 9, 20, 0, tzinfo=HCM)
    up = down + timedelta(hours=3)
    rows = data.intervals(down - timedelta(hours=1), up + timedelta(hours=1))
    ends = [r.end for r in rows]
    assert ends[:4] == [down - 3 * QUARTER + k * QUARTER for k in range(4)]  # last is at `down`
    assert ends[4] == up + QUARTER  # nothing from down to up
    assert [r.status for r in rows] == [0] * 4 + [STATUS_POWER_DOWN] + [0] * 3
    assert data.registers(down) == data.registers(up) == data.registers(down + timedelta(hours=2))
    events = data.events(down - timedelta(days=1), up + timedelta(days=1))
    assert [(e.time, e.code) for e in events] == [(down, EVENT_POWER_DOWN), (up, EVENT_POWER_UP)]


def test_an_outage_measures_nothing_while_the_power_is_off() -> None:
    faulty = meter(fault(FaultKind.OUTAGE, hours=3, days_ago=1, hour=20))
    healthy = meter()
    down = datetime(2026, 2, 9, 20, 0, tzinfo=HCM)
    lost = healthy.truth(down, down + timedelta(hours=3)).consumption["A+"]
    assert lost > 0
    assert faulty.truth(down, down + timedelta(hours=3)).consumption["A+"] == 0
    day = (EPOCH + timedelta(days=30), NOW)
    assert (healthy.truth(*day).consumption["A+"] - faulty.truth(*day).consumption["A+"]) == lost


def test_an_outage_ending_mid_interval_keeps_the_rest_of_that_interval() -> None:
    faulty = meter(fault(FaultKind.OUTAGE, hours=2.5 + 1 / 12, days_ago=1, hour=20))  # +5 min
    healthy = meter()
    up = datetime(2026, 2, 9, 22, 35, tzinfo=HCM)
    row_end = up.replace(minute=45)
    rows = faulty.intervals(up - timedelta(hours=3), row_end)
    assert rows[-1].end == row_end and rows[-1].status == STATUS_POWER_DOWN
    kept = faulty.registers(row_end)["A+"] - faulty.registers(row_end - QUARTER)["A+"]
    full = healthy.registers(row_end)["A+"] - healthy.registers(row_end - QUARTER)["A+"]
    assert kept == full * 10 // 15


def test_a_billing_snapshot_is_missed_when_the_power_is_off_at_midnight() -> None:
    data = meter(fault(FaultKind.OUTAGE, hours=4, days_ago=2, hour=22))
    rows = data.billing_rows(NOW - timedelta(days=4), NOW)
    midnights = {r.time.astimezone(HCM).day for r in rows}
    assert 9 not in midnights and {7, 8, 10} <= midnights


def test_a_spike_multiplies_one_interval_and_the_registers_include_it() -> None:
    faulty = meter(fault(FaultKind.SPIKE, days_ago=3, hour=19, factor=20))
    healthy = meter()
    end = datetime(2026, 2, 7, 19, 15, tzinfo=HCM)

    def energy(data: MeterData, at: datetime) -> int:
        return data.registers(at)["A+"] - data.registers(at - QUARTER)["A+"]

    normal = energy(healthy, end)
    assert normal > 0
    assert energy(faulty, end) == normal * 20
    assert energy(faulty, end + QUARTER) == energy(healthy, end + QUARTER)
    assert faulty.registers(NOW)["A+"] - healthy.registers(NOW)["A+"] == 19 * normal
    registers = faulty.registers(NOW)
    assert sum(registers[t] for t in TARIFFS) == registers["A+"]
    assert faulty.max_demand(NOW) == (normal * 20 * 4, end)


def test_a_backwards_register_reads_lower_than_the_sum_of_its_intervals() -> None:
    faulty = meter(fault(FaultKind.BACKWARDS, days_ago=2, hour=12, wh=5000))
    healthy = meter()
    at = datetime(2026, 2, 8, 12, 0, tzinfo=HCM)
    before, after = faulty.registers(at - QUARTER), faulty.registers(at)
    assert after["A+"] < before["A+"]
    assert healthy.registers(at)["A+"] - after["A+"] == 5000
    assert healthy.registers(NOW)["A+"] - faulty.registers(NOW)["A+"] == 5000
    assert sum(after[t] for t in TARIFFS) == after["A+"] + 5000
    rows = faulty.intervals(at - timedelta(hours=1), at + timedelta(hours=1))
    steps = [b.registers["A+"] - a.registers["A+"] for a, b in itertools.pairwise(rows)]
    assert min(steps) < 0 and sum(1 for s in steps if s < 0) == 1
    truth = faulty.truth(at - timedelta(days=1), NOW)
    assert truth.consumption == healthy.truth(at - timedelta(days=1), NOW).consumption


def test_a_rollover_starts_just_below_the_maximum_and_wraps_within_the_history() -> None:
    data = meter(fault(FaultKind.ROLLOVER, days_ago=5))
    modulus = REGISTER_MODULUS_WH
    assert modulus - 10_000_000 < data.registers(EPOCH)["A+"] < modulus
    rows = data.intervals(EPOCH, NOW)
    wraps = [(a, b) for a, b in itertools.pairwise(rows) if b.registers["A+"] < a.registers["A+"]]
    assert len(wraps) == 1
    before, after = wraps[0]
    assert after.end.astimezone(HCM).date() == (NOW - timedelta(days=5)).date()
    assert after.registers["A+"] < 10_000 and before.registers["A+"] > modulus - 10_000
    registers = data.registers(NOW)
    assert (sum(registers[t] for t in TARIFFS) - registers["A+"]) % modulus == 0
    assert data.truth(EPOCH, NOW).consumption == meter().truth(EPOCH, NOW).consumption


def test_an_exchange_brings_a_new_serial_and_registers_from_zero() -> None:
    data = meter(fault(FaultKind.EXCHANGE, days_ago=4, hour=10))
    at = datetime(2026, 2, 6, 10, 0, tzinfo=HCM)
    old, new = data.serial_number(at - timedelta(seconds=1)), data.serial_number(at)
    assert old == "21000021" and new != old and len(new) == len(old) and new.isdigit()
    assert data.registers(at) == dict.fromkeys(("A+", *TARIFFS, "A-", "R+"), 0)
    assert data.registers(at - QUARTER)["A+"] > 0
    later = data.registers(at + timedelta(days=1))
    assert 0 < later["A+"] == sum(later[t] for t in TARIFFS)
    rows = data.intervals(EPOCH, NOW, now=NOW)  # the new meter remembers nothing older
    assert rows[0].end == at + QUARTER and data.first_interval_end(NOW) == at + QUARTER
    assert [(e.time, e.code) for e in data.events(EPOCH, NOW)] == [(at, 2)]
    assert all(r.time > at for r in data.billing_rows(EPOCH, NOW))
    assert data.max_demand(at + timedelta(hours=1))[1] > at


def test_the_truth_documents_each_fault_and_measures_what_the_meter_measured() -> None:
    faults = (
        fault(FaultKind.OUTAGE), fault(FaultKind.SPIKE), fault(FaultKind.BACKWARDS),
        fault(FaultKind.ROLLOVER), fault(FaultKind.EXCHANGE), fault(FaultKind.CLOCK_DRIFT),
    )  # fmt: skip
    truth = meter(*faults).truth(EPOCH, NOW)
    document = json.loads(truth.to_json())
    kinds = {f["kind"] for f in document["faults"]}
    assert kinds == {"outage", "spike", "backwards", "rollover", "exchange", "clock_drift"}
    assert all(f["effect"] and f["in_period"] for f in document["faults"])
    assert document["serial_numbers"]["start"] != document["serial_numbers"]["end"]


def test_faults_without_parameters_are_placed_the_same_way_every_time() -> None:
    faults = (fault(FaultKind.OUTAGE), fault(FaultKind.SPIKE), fault(FaultKind.BACKWARDS),
              fault(FaultKind.EXCHANGE))  # fmt: skip
    assert meter(*faults).faults == meter(*faults).faults
    placed = meter(*faults).faults
    assert placed.outage is not None and placed.spike is not None
    yesterday = datetime(2026, 2, 9, tzinfo=HCM).timestamp()
    assert yesterday <= placed.outage.down < yesterday + 86_400  # default: one day ago
    assert meter(*faults, seed=5).faults != placed
