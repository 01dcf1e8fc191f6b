"""What a simulated meter has measured: registers, load profile, billing profile, event log.

``MeterData`` serves one meter's data from its ``MeterSpec``: the seeded consumption of
``load_model`` with the spec's data faults applied. Registers count from the model origin
(``spec.epoch``, or 2024-01-01 local midnight when the spec has none) and are exactly the
sum of the intervals from seeded starting values; the A+ tariff registers T1 (normal), T2
(peak) and T3 (off-peak) add up to A+ and split it by the time-of-use calendar, each interval
by its start in local time.

A data fault changes what is served and is documented by ``truth``:

* clock drift: ``meter_time`` is off by the fault's seconds;
* outage: no load-profile rows while the power is off, no energy, the first row after it has
  status bit 7 (power down), events 1 (power down) and 2 (power up);
* spike: one interval ``factor`` times its normal import, included in the registers;
* backwards: from an instant, A+ reads ``wh`` lower than the sum of the intervals;
* rollover: A+ starts just below its maximum (10^9 Wh) and wraps to small values in the history;
* exchange: from an instant, a new serial number and registers starting from zero.

Times in and out are aware datetimes; rows carry UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from headend.domain.tou import TouCalendar, evn_calendar
from headend.simulator.data_faults import DataFaults, place_faults
from headend.simulator.load_model import (
    EXPORT,
    REACTIVE,
    T1,
    T2,
    T3,
    IntArray,
    LoadModel,
    scalar_uniform,
)
from headend.simulator.measured import Measured
from headend.simulator.spec import MeterSpec
from headend.simulator.truth import Truth, describe_faults

REGISTER_MODULUS_WH: Final = 10**9  # registers show up to 999,999.999 kWh, then wrap to zero
DEFAULT_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_ORIGIN: Final = date(2024, 1, 1)  # model origin of a spec without an epoch

# AMR profile status bits (0.0.96.10.1.255)
STATUS_CLOCK_INVALID: Final = 1 << 1
STATUS_DATA_NOT_VALID: Final = 1 << 2
STATUS_CLOCK_ADJUSTED: Final = 1 << 5
STATUS_POWER_DOWN: Final = 1 << 7

# Standard event log (0.0.99.98.0.255) event codes
EVENT_POWER_DOWN: Final = 1
EVENT_POWER_UP: Final = 2
EVENT_CLOCK_ADJUSTED_OLD: Final = 4
EVENT_CLOCK_ADJUSTED_NEW: Final = 5


@dataclass(frozen=True)
class IntervalRow:
    end: datetime
    status: int
    registers: dict[str, int]  # cumulative "A+", "A-", "R+" at ``end``


@dataclass(frozen=True)
class BillingRow:
    time: datetime
    registers: dict[str, int]
    max_demand_w: int
    max_demand_time: datetime


@dataclass(frozen=True)
class EventRow:
    time: datetime
    code: int


class MeterData:
    """The data one simulated meter serves, deterministic from ``spec.seed``."""

    def __init__(
        self,
        spec: MeterSpec,
        resolution_wh: int = 1,
        tz: ZoneInfo = DEFAULT_TZ,
        *,
        calendar: TouCalendar | None = None,
        reference: datetime | None = None,
    ) -> None:
        self.spec = spec
        self.tz = tz
        self.resolution_wh = resolution_wh
        self.modulus = REGISTER_MODULUS_WH // resolution_wh  # in resolution units
        self.calendar = calendar or evn_calendar(tz)
        standard = datetime.combine(DEFAULT_ORIGIN, time(), tz)
        offset = (standard.utcoffset() or timedelta()) - (standard.dst() or timedelta())
        self.model = LoadModel(
            spec.seed,
            spec.shape,
            spec.capture_period_s,
            resolution_wh,
            self.calendar,
            int(offset.total_seconds()),
        )
        period = self.period_s = spec.capture_period_s
        if spec.epoch is not None:
            origin = -(-_seconds(spec.epoch) // period) * period
            end_of_history = spec.epoch + timedelta(days=spec.history_days)
            reference_day = self.model.locate(_floor(_seconds(end_of_history), period))[0]
        else:
            origin = -(-_seconds(standard) // period) * period
            today = reference or datetime.now(UTC)
            reference_day = self.model.locate(_floor(_seconds(today), period))[0]
        self.origin = origin
        self.faults: DataFaults = place_faults(spec, self.model, reference_day)
        self.measured = Measured(self.model, self.faults, origin)
        self._start: IntArray | None = None

    # ----------------------------------------------------------------- identity and clock

    def meter_time(self, now: datetime) -> datetime:
        return now.astimezone(UTC) + timedelta(seconds=self.faults.drift_s)

    def serial_number(self, at: datetime) -> str:
        exchange = self.faults.exchange
        if exchange is not None and _seconds(at) >= exchange.at:
            return exchange.serial
        return self.spec.meter_id

    # ----------------------------------------------------------------- registers

    def registers(self, at: datetime) -> dict[str, int]:
        """Registers (Wh, varh) at the last interval end at or before ``at``."""
        boundary = _floor(_seconds(at), self.period_s)
        values = self._served(np.array([boundary]), self._counts(boundary)[:, None])
        return {name: int(column[0]) for name, column in values.items()}

    def max_demand(self, at: datetime) -> tuple[int, datetime]:
        """Largest interval import of the billing month (local) up to ``at``, in W."""
        boundary = _floor(_seconds(at), self.period_s)
        lo = self._month_floor(boundary)
        units, end = self.measured.peak(lo, boundary)
        if units < 0:  # no interval yet this month
            return 0, _utc(lo)
        return units * self.resolution_wh * 3600 // self.period_s, _utc(end)

    def _month_floor(self, boundary: int) -> int:
        """Start of the window the maximum demand at ``boundary`` is taken over."""
        last_start = datetime.fromtimestamp(boundary - self.period_s, self.tz)
        month = datetime.combine(last_start.date().replace(day=1), time(), self.tz)
        lo = max(-(-_seconds(month) // self.period_s) * self.period_s, self.origin)
        exchange = self.faults.exchange
        if exchange is not None and boundary > exchange.at:
            lo = max(lo, exchange.at)
        return lo

    # ----------------------------------------------------------------- profiles and logs

    def first_interval_end(self, now: datetime) -> datetime:
        return _utc(self._buffer_floor(_seconds(now)))

    def _buffer_floor(self, now_s: int) -> int:
        period = self.period_s
        newest = _floor(now_s, period)
        entries = self.spec.history_days * self.model.slots
        floor = max(newest - (entries - 1) * period, self.origin + period)
        exchange = self.faults.exchange
        if exchange is not None and now_s >= exchange.at:
            floor = max(floor, exchange.at + period)
        outage = self.faults.outage
        if outage is not None and outage.down < floor <= outage.up:
            floor = _floor(outage.up, period) + period
        return floor

    def intervals(
        self, start: datetime, end: datetime, *, now: datetime | None = None
    ) -> list[IntervalRow]:
        """Load-profile rows with ``start < row.end <= end`` still in the buffer at ``now``.

        ``now`` defaults to ``end``: the buffer is then the ``history_days`` before ``end``.
        """
        period = self.period_s
        now_s = _seconds(now) if now is not None else _seconds(end)
        first = max(_floor(_seconds(start), period) + period, self._buffer_floor(now_s))
        last = min(_floor(_seconds(end), period), _floor(now_s, period))
        rows: list[IntervalRow] = []
        outage = self.faults.outage
        second = first
        while second <= last:
            day, slot = self.model.locate(second - period)
            stop = min(self.model.slots, slot + 1 + (last - second) // period)
            ends = self.model.slot_start(day) + np.arange(slot + 1, stop + 1) * period
            counts = self._day_counts(day, np.arange(slot + 1, stop + 1))
            served = self._served(ends, counts)
            a_plus = served["A+"].tolist()
            a_minus = served["A-"].tolist()
            r_plus = served["R+"].tolist()
            for k, row_end in enumerate(ends.tolist()):
                status = 0
                if outage is not None:
                    if outage.down < row_end <= outage.up:
                        continue
                    if outage.up < row_end <= outage.up + period:
                        status |= STATUS_POWER_DOWN
                registers = {"A+": a_plus[k], "A-": a_minus[k], "R+": r_plus[k]}
                rows.append(IntervalRow(_utc(row_end), status, registers))
            second = self.model.slot_start(day, stop) + period
        return rows

    def billing_rows(
        self, start: datetime, end: datetime, *, now: datetime | None = None
    ) -> list[BillingRow]:
        """Daily billing snapshots at each local midnight in (start, end]."""
        now_s = _seconds(now) if now is not None else _seconds(end)
        floor = self._buffer_floor(now_s) - self.period_s
        lo, hi = _seconds(start), min(_seconds(end), now_s)
        outage = self.faults.outage
        rows: list[BillingRow] = []
        day = start.astimezone(self.tz).date()
        while True:
            midnight = _seconds(datetime.combine(day, time(), self.tz))
            day += timedelta(days=1)
            if midnight > hi:
                break
            if midnight <= lo or midnight < max(floor, self.origin + self.period_s):
                continue
            if outage is not None and outage.down <= midnight < outage.up:
                continue
            at = _utc(midnight)
            watts, when = self.max_demand(at)
            rows.append(BillingRow(at, self.registers(at), watts, when))
        return rows

    def events(
        self, start: datetime, end: datetime, *, now: datetime | None = None
    ) -> list[EventRow]:
        """Standard event log entries in (start, end]."""
        now_s = _seconds(now) if now is not None else _seconds(end)
        log: list[tuple[int, int]] = []
        if (outage := self.faults.outage) is not None:
            log += [(outage.down, EVENT_POWER_DOWN), (outage.up, EVENT_POWER_UP)]
        floor = self.origin
        if (exchange := self.faults.exchange) is not None:
            log.append((exchange.at, EVENT_POWER_UP))  # the new meter's first power-up
            if now_s >= exchange.at:
                floor = exchange.at
        lo, hi = _seconds(start), min(_seconds(end), now_s)
        return [EventRow(_utc(t), code) for t, code in sorted(log) if lo < t <= hi and t >= floor]

    # ----------------------------------------------------------------- truth

    def truth(self, start: datetime, end: datetime) -> Truth:
        """What the meter measured between the last interval ends at or before start and end."""
        period = self.period_s
        lo, hi = _floor(_seconds(start), period), _floor(_seconds(end), period)
        measured = self._counts(hi) - self._counts(lo)
        wh = [int(value) * self.resolution_wh for value in measured]
        faults = describe_faults(
            self.faults, self.resolution_wh, self.modulus, self.spec.meter_id, lo, hi,
            self.tz,
        )  # fmt: skip
        return Truth(
            meter_id=self.spec.meter_id,
            start=start.astimezone(self.tz),
            end=end.astimezone(self.tz),
            registers_at=(_utc(lo).astimezone(self.tz), _utc(hi).astimezone(self.tz)),
            serial_numbers=(self.serial_number(_utc(lo)), self.serial_number(_utc(hi))),
            registers_start=_kwh(self.registers(_utc(lo))),
            registers_end=_kwh(self.registers(_utc(hi))),
            consumption=_kwh(
                {"A+": wh[T1] + wh[T2] + wh[T3], "A-": wh[EXPORT], "R+": wh[REACTIVE]}
            ),
            tariffs=_kwh({"T1": wh[T1], "T2": wh[T2], "T3": wh[T3]}),
            faults=faults,
        )

    # ----------------------------------------------------------------- the arithmetic

    def _served(self, ends: IntArray, counts: IntArray) -> dict[str, IntArray]:
        """Register values as the meter shows them (Wh), from counts (units) at ``ends``."""
        counts = counts.copy()
        exchange = self.faults.exchange
        if exchange is not None:
            after = ends >= exchange.at
            if after.any():
                counts[:, after] -= self._counts(exchange.at)[:, None]
        a_plus = counts[T1] + counts[T2] + counts[T3]
        backwards = self.faults.backwards
        if backwards is not None:
            lowered = ends >= backwards.at
            if exchange is not None and backwards.at < exchange.at:
                lowered &= ends < exchange.at
            a_plus = a_plus - backwards.units * lowered
        res, modulus = self.resolution_wh, self.modulus
        return {
            "A+": (a_plus % modulus) * res,
            "A+T1": (counts[T1] % modulus) * res,
            "A+T2": (counts[T2] % modulus) * res,
            "A+T3": (counts[T3] % modulus) * res,
            "A-": (counts[EXPORT] % modulus) * res,
            "R+": (counts[REACTIVE] % modulus) * res,
        }

    def _counts(self, boundary: int) -> IntArray:
        """Unwrapped register counts (units, ``CHANNELS``) at an interval boundary."""
        return self._start_counts() + self.measured.consumed(boundary)

    def _day_counts(self, day: int, slots: IntArray) -> IntArray:
        """Unwrapped counts at the starts of ``slots`` of ``day`` (a slot may be ``slots``)."""
        return self._start_counts()[:, None] + self.measured.consumed_at(day, slots)

    def _start_counts(self) -> IntArray:
        """Register counts at the origin, seeded; A+T1..T3 add up to the A+ start."""
        if self._start is None:
            years = 3.0 * scalar_uniform(self.model.seed, 900)  # in service before the origin
            natural = int(self.model.daily_wh * 365 * years) // self.resolution_wh
            exported = natural // 10 if self.model.has_pv else 0
            reactive = int(natural * self.model.reactive_ratio)
            total = natural
            if (rollover := self.faults.rollover) is not None:  # reach the maximum at ``at``
                used = self.measured.consumed(rollover.at)
                total = self.modulus - int(used[T1] + used[T2] + used[T3])
                total = min(max(total, 1), self.modulus - 1)
            normal, peak = total * 55 // 100, total * 15 // 100
            start = np.array([normal, peak, total - normal - peak, exported, reactive])
            self._start = start.astype(np.int64)
        return self._start


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be aware datetimes")
    return int(moment.timestamp() // 1)


def _floor(second: int, period: int) -> int:
    return second // period * period


def _utc(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def _kwh(values: dict[str, int]) -> dict[str, Decimal]:
    return {name: Decimal(wh).scaleb(-3) for name, wh in values.items()}


__all__ = [
    "EVENT_POWER_DOWN",
    "EVENT_POWER_UP",
    "REGISTER_MODULUS_WH",
    "STATUS_POWER_DOWN",
    "BillingRow",
    "EventRow",
    "IntervalRow",
    "MeterData",
    "Truth",
]
