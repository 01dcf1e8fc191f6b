"""A meter's seeded consumption: daily shapes, day totals in closed form, and day intervals.

Everything is a function of ``(seed, day number)``, so any day can be produced alone, in any
process, in any order. Days are blocks of 86,400 s starting at the utility's local standard-time
midnight; a day's intervals are indexed by slot ``0 .. n-1``. Quantities are integers counted in
*units* of the register resolution (``resolution_wh``).

Two levels keep registers cheap to compute far from the origin:

* ``LoadModel.day_totals`` gives, for many days at once, each day's energy per channel
  (A+ per time-of-use period T1/T2/T3, A-, R+), from counter-based noise and the per-period
  sums of the meter's integer shape weights: a few array operations per block of days.
* ``LoadModel.day`` spreads one day's totals over its intervals (largest remainder, in integer
  arithmetic), so the intervals of a day always add up exactly to that day's totals.

Only integer arithmetic, and float arithmetic without transcendental functions, feed the
numbers, so they come out the same on every machine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from headend.domain.tou import PERIODS, TouCalendar

SECONDS_PER_DAY: Final = 86_400
# Column order of day totals and of the per-day prefix sums.
CHANNELS: Final = ("A+T1", "A+T2", "A+T3", "A-", "R+")
T1, T2, T3, EXPORT, REACTIVE = range(5)
_BLOCK_DAYS: Final = 64
_WEIGHT_SCALE: Final = 100_000  # shape weights are integers: relative power x this
_SOLAR_SCALE: Final = 1_000  # finer solar weights: its noise is spread over few slots

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_MASK64 = (1 << 64) - 1
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S29, _S30, _S31 = (np.uint64(n) for n in (11, 27, 29, 30, 31))
_DAY_DRAWS: Final = 16  # uniform numbers drawn per day for its totals
_SLOT_DRAWS: Final = 8  # and per slot for its intervals


def uniforms(seed: int, stream: int, index: IntArray) -> FloatArray:
    """Counter-based uniform numbers in [0, 1): the same (seed, stream, index), the same number.

    A splitmix64 finaliser over ``index`` keyed by seed and stream; array arithmetic in uint64
    wraps around, which is what the mixing wants.
    """
    key = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    x = index.astype(np.uint64) * _M1 + np.uint64(key)
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    x *= _M1
    x ^= x >> _S29
    return (x >> _S11).astype(np.float64) * (1.0 / (1 << 53))


def scalar_uniform(seed: int, stream: int, index: int = 0) -> float:
    """``uniforms`` for one index, in plain integers (the same number, without array overhead)."""
    key = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    m1, m2 = int(_M1), int(_M2)
    x = (index * m1 + key) & _MASK64
    x ^= x >> 30
    x = (x * m1) & _MASK64
    x ^= x >> 27
    x = (x * m2) & _MASK64
    x ^= x >> 31
    x = (x * m1) & _MASK64
    x ^= x >> 29
    return (x >> 11) * (1.0 / (1 << 53))


def allocate(units: int, weights: IntArray) -> IntArray:
    """Split ``units`` over ``weights`` in proportion, exactly (largest remainder, ties by slot)."""
    out = np.zeros(weights.size, dtype=np.int64)
    total = int(weights.sum())
    if units <= 0 or total <= 0:
        return out
    scaled = weights * units
    out = scaled // total
    left = units - int(out.sum())
    if left:
        order = np.argsort(-(scaled - out * total), kind="stable")
        out[order[:left]] += 1
    return out


@dataclass(frozen=True)
class Day:
    """One day of a meter, in resolution units: running sums per channel and slot periods."""

    number: int
    period: npt.NDArray[np.int8]  # TOU period code of each slot
    prefix: npt.NDArray[np.signedinteger[Any]]  # (5, n + 1): prefix[:, i] = sum of slots < i

    @staticmethod
    def build(
        number: int,
        period: npt.NDArray[np.int8],
        import_: IntArray,
        export: IntArray,
        reactive: IntArray,
    ) -> Day:
        n = import_.size
        columns = np.zeros((len(CHANNELS), n + 1), dtype=np.int64)
        for code in range(len(PERIODS)):
            np.cumsum(np.where(period == code, import_, 0), out=columns[code, 1:])
        np.cumsum(export, out=columns[EXPORT, 1:])
        np.cumsum(reactive, out=columns[REACTIVE, 1:])
        if int(columns[:, -1].max()) < 2**31:  # a day's running sums fit 32 bits: half the memory
            return Day(number, period, columns.astype(np.int32))
        return Day(number, period, columns)

    def counts(self, slots: IntArray) -> IntArray:
        """Running sums (int64) at the start of each of ``slots``, shape (5, len(slots))."""
        result: IntArray = self.prefix[:, slots].astype(np.int64)
        return result

    @property
    def totals(self) -> IntArray:
        result: IntArray = self.prefix[:, -1].astype(np.int64)
        return result

    @property
    def import_(self) -> IntArray:
        steps = np.diff(self.prefix[T1 : T3 + 1].astype(np.int64), axis=1)
        result: IntArray = steps.sum(axis=0)
        return result

    @property
    def export(self) -> IntArray:
        result: IntArray = np.diff(self.prefix[EXPORT].astype(np.int64))
        return result

    @property
    def reactive(self) -> IntArray:
        result: IntArray = np.diff(self.prefix[REACTIVE].astype(np.int64))
        return result


class LoadModel:
    """The seeded, fault-free consumption of one meter."""

    def __init__(
        self,
        seed: int,
        shape: str,
        capture_period_s: int,
        resolution_wh: int,
        calendar: TouCalendar,
        utc_offset_s: int,
    ) -> None:
        if SECONDS_PER_DAY % capture_period_s:
            raise ValueError(f"a capture period must divide a day, not {capture_period_s} s")
        if shape not in ("household", "business"):
            raise ValueError(f"unknown consumption shape {shape!r} (household or business)")
        if resolution_wh < 1:
            raise ValueError("the register resolution is at least 1 Wh")
        self.seed = seed & _MASK64
        self.shape = shape
        self.period_s = capture_period_s
        self.slots = SECONDS_PER_DAY // capture_period_s
        self.resolution_wh = resolution_wh
        self.calendar = calendar
        # day d starts at d * 86400 - shift * period_s (UTC seconds): local standard midnight
        self.shift = utc_offset_s // capture_period_s
        # Held for the model's life: the table a day's pattern ids index must be the one that
        # assigned them, even when the shared cache below has moved on.
        self._patterns = _day_patterns(self.calendar, self.period_s, self.shift)
        self._draw = 0
        business = shape == "business"
        u = self._next_uniform
        # typical energy of a day (Wh): a Vietnamese home 5-15 kWh, a small business 50-300 kWh
        self.daily_wh = 50_000 + 250_000 * u() ** 2 if business else 5_000 + 10_000 * u()
        self.day_sigma = 0.08 if business else 0.15
        self.slot_sigma = 0.15 if business else 0.35
        self.season = 0.08 if business else 0.2  # hot-season air conditioning
        self.reactive_ratio = 0.3 + 0.3 * u() if business else 0.15 + 0.3 * u()
        self.has_pv = u() < (0.25 if business else 0.12)
        self.export_wh = (20_000 + 60_000 * u() if business else 2_000 + 8_000 * u()) * self.has_pv
        self.weights = _business_weights(self) if business else _household_weights(self)
        self.solar = _solar_weights(self.slots)
        day_sums = self.weights.sum(axis=1).astype(np.float64)
        self._mean_day_weight = float(day_sums.mean())
        self._pattern_weights: IntArray | None = None

    def _next_uniform(self) -> float:
        self._draw += 1
        return scalar_uniform(self.seed, 1_000 + self._draw)

    def slot_start(self, day: int, slot: int = 0) -> int:
        """UTC seconds at which a slot of a day starts."""
        return day * SECONDS_PER_DAY + (slot - self.shift) * self.period_s

    def locate(self, second: int) -> tuple[int, int]:
        """(day, slot) of the interval starting at ``second`` (aligned to the capture period)."""
        index = second // self.period_s + self.shift
        return index // self.slots, index % self.slots

    def patterns(self, first_day: int, count: int) -> IntArray:
        """The TOU pattern (a row of ``DayPatterns.table``) of each of ``count`` days."""
        patterns = self._patterns
        parts = []
        day = first_day
        while day < first_day + count:
            block = day // _BLOCK_DAYS
            lo = day - block * _BLOCK_DAYS
            hi = min(_BLOCK_DAYS, first_day + count - block * _BLOCK_DAYS)
            parts.append(patterns.block(block)[lo:hi])
            day = block * _BLOCK_DAYS + hi
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _period_weights(self) -> IntArray:
        """Shape weight per (weekday, pattern, period): the sums the day totals split by."""
        table = self._patterns.table()
        if self._pattern_weights is None or self._pattern_weights.shape[1] != len(table):
            onehot = (table[:, :, None] == np.arange(len(PERIODS))).astype(np.int64)
            self._pattern_weights = np.einsum("wn,knp->wkp", self.weights, onehot)
        return self._pattern_weights

    def day_totals(self, first_day: int, count: int) -> IntArray:
        """Energy of each day per channel (``CHANNELS``), shape (count, 5), in units."""
        days = np.arange(first_day, first_day + count, dtype=np.int64)
        draws = uniforms(self.seed, 10, days[:, None] * _DAY_DRAWS + np.arange(_DAY_DRAWS))
        weekday = (days + 3) % 7
        patterns = self.patterns(first_day, count)  # first: it may add patterns to the table
        in_periods = self._period_weights()[weekday, patterns]
        res = float(self.resolution_wh)
        level = (
            (self.daily_wh / self._mean_day_weight)
            * np.maximum(0.3, 1.0 + self.day_sigma * _normal(draws, 0))
            * _season(days, self.season)
        )
        out = np.zeros((count, len(CHANNELS)), dtype=np.int64)
        for code in range(len(PERIODS)):
            in_period = in_periods[:, code]
            noise = np.maximum(0.5, 1.0 + 0.05 * _normal(draws, 3 + 3 * code))
            out[:, code] = np.floor(level * in_period * noise / res + 0.5).astype(np.int64)
        if self.has_pv:
            sun = 0.3 + 0.7 * draws[:, 12]
            out[:, EXPORT] = np.floor(self.export_wh * sun / res + 0.5).astype(np.int64)
        ratio = self.reactive_ratio * np.maximum(0.5, 1.0 + 0.05 * _normal(draws, 13))
        imported = out[:, T1] + out[:, T2] + out[:, T3]
        out[:, REACTIVE] = np.floor(ratio * imported + 0.5).astype(np.int64)
        return out

    def day(self, number: int) -> Day:
        """The intervals of one day, adding up exactly to ``day_totals`` for that day."""
        totals = self.day_totals(number, 1)[0]
        table = self._patterns.table()
        period = table[self.patterns(number, 1)[0]]
        slots = np.arange(self.slots, dtype=np.int64) + number * self.slots
        draws = uniforms(self.seed, 60, slots[:, None] * _SLOT_DRAWS + np.arange(_SLOT_DRAWS))
        noise = np.maximum(0.05, 1.0 + self.slot_sigma * _normal(draws, 0))
        if self.shape == "household":  # kettles, cookers, pumps
            noise = noise + (draws[:, 3] < 0.06) * (1.0 + 2.0 * draws[:, 4])
        weight = (self.weights[(number + 3) % 7] * noise).astype(np.int64)
        import_ = np.zeros(self.slots, dtype=np.int64)
        for code in range(len(PERIODS)):
            mask = period == code
            import_[mask] = allocate(int(totals[code]), weight[mask])
        sky = np.floor(self.solar * np.maximum(0.05, 1.0 + 0.3 * _normal(draws, 5)))
        export = allocate(int(totals[EXPORT]), sky.astype(np.int64))
        reactive = allocate(int(totals[REACTIVE]), import_)
        return Day.build(number, period, import_, export, reactive)


def _normal(draws: FloatArray, column: int) -> FloatArray:
    """Roughly standard-normal numbers (sum of three uniforms), bounded by +-3."""
    total: FloatArray = draws[:, column] + draws[:, column + 1] + draws[:, column + 2]
    return (total - 1.5) * 2.0


def _season(days: IntArray, amplitude: float) -> FloatArray:
    """1 +- amplitude over the year, highest at the end of May (a triangle wave)."""
    year = 365.2425
    phase = np.mod(days.astype(np.float64) - 20_601.0, year) / year  # day 20601 = 2026-05-28
    return 1.0 + amplitude * (2.0 * np.abs(2.0 * phase - 1.0) - 1.0)


def _hours(slots: int) -> FloatArray:
    """Local standard time (hours) at the middle of each slot."""
    return (np.arange(slots, dtype=np.float64) + 0.5) * (24.0 / slots)


def _bump(hours: FloatArray, start: float, end: float, ramp: float) -> FloatArray:
    """1 between start and end, linear ramps of ``ramp`` hours outside, 0 further away."""
    rise = np.clip((hours - (start - ramp)) / ramp, 0.0, 1.0)
    fall = np.clip(((end + ramp) - hours) / ramp, 0.0, 1.0)
    return np.minimum(rise, fall)


def _to_weights(power: FloatArray) -> IntArray:
    return np.floor(power * _WEIGHT_SCALE + 0.5).astype(np.int64)


def _household_weights(model: LoadModel) -> npt.NDArray[np.int32]:
    u = model._next_uniform
    hours = _hours(model.slots)
    shift = (u() - 0.5) * 1.5  # the family's evening routine, +-45 min
    night_ac = 0.4 * u()  # air conditioning through the night
    evening = 0.9 + 0.8 * u()
    morning = 0.3 + 0.5 * u()
    weekday = (
        0.22
        + night_ac * (_bump(hours, 0.0, 5.0, 0.5) + _bump(hours, 22.5, 24.0, 0.5))
        + morning * _bump(hours, 5.5, 7.0, 0.5)
        + 0.15 * _bump(hours, 10.5, 16.5, 1.0)
        + evening * _bump(hours + shift, 18.0, 21.5, 1.0)
        + 0.4 * evening * _bump(hours + shift, 19.0, 20.5, 0.5)
    )
    weekend = weekday + 0.25 * _bump(hours, 8.0, 17.0, 1.0)
    return np.stack([_to_weights(weekday)] * 5 + [_to_weights(weekend)] * 2).astype(np.int32)


def _business_weights(model: LoadModel) -> npt.NDArray[np.int32]:
    u = model._next_uniform
    hours = _hours(model.slots)
    opens = 6.5 + 1.5 * u()
    closes = 16.5 + 2.5 * u()
    base = 0.08 + 0.12 * u()  # refrigeration, servers, security lighting
    open_day = base + _bump(hours, opens, closes, 0.5) - 0.2 * _bump(hours, 11.75, 12.75, 0.25)
    saturday = base + (0.3 + 0.6 * u()) * (open_day - base)
    sunday = base + (0.9 if u() < 0.1 else 0.1) * (open_day - base)  # a shop opens on Sunday
    days = [_to_weights(open_day)] * 5 + [_to_weights(saturday), _to_weights(sunday)]
    return np.stack(days).astype(np.int32)


@lru_cache(maxsize=8)
def _solar_weights(slots: int) -> IntArray:
    hours = _hours(slots)
    sun = _to_weights(np.clip(1.0 - np.abs(hours - 12.0) / 6.0, 0.0, 1.0) * _SOLAR_SCALE)
    sun.setflags(write=False)  # shared by every meter
    return sun


class DayPatterns:
    """The distinct TOU patterns of days (period code per slot) and which day has which.

    Shared by all meters with the same calendar, capture period and day alignment; a calendar
    has a handful of patterns (EVN: workday and Sunday), so a meter's per-period weights are a
    small table and the day totals never look at single slots.
    """

    def __init__(self, calendar: TouCalendar, period_s: int, shift: int) -> None:
        self._calendar = calendar
        self._period_s = period_s
        self._shift = shift
        self._rows: list[npt.NDArray[np.int8]] = []
        self._ids: dict[bytes, int] = {}
        self._blocks: dict[int, IntArray] = {}
        self._table: npt.NDArray[np.int8] | None = None
        self._lock = threading.Lock()

    def block(self, block: int) -> IntArray:
        found = self._blocks.get(block)
        if found is not None:
            return found
        slots = SECONDS_PER_DAY // self._period_s
        first = block * _BLOCK_DAYS * SECONDS_PER_DAY - self._shift * self._period_s
        starts = first + np.arange(_BLOCK_DAYS * slots, dtype=np.int64) * self._period_s
        codes = self._calendar.period_codes(starts).reshape(_BLOCK_DAYS, slots)
        with self._lock:
            ids = np.empty(_BLOCK_DAYS, dtype=np.int64)
            for k, row in enumerate(codes):
                key = row.tobytes()
                if key not in self._ids:
                    self._ids[key] = len(self._rows)
                    self._rows.append(row.copy())
                    self._table = None
                ids[k] = self._ids[key]
            self._blocks[block] = ids
        return ids

    def table(self) -> npt.NDArray[np.int8]:
        """All patterns seen so far, shape (patterns, slots); row ``i`` is pattern ``i``."""
        table = self._table
        if table is None or len(table) != len(self._rows):
            with self._lock:
                slots = SECONDS_PER_DAY // self._period_s
                table = self._table = (
                    np.stack(self._rows) if self._rows else np.zeros((0, slots), dtype=np.int8)
                )
        return table


@lru_cache(maxsize=64)
def _day_patterns(calendar: TouCalendar, period_s: int, shift: int) -> DayPatterns:
    return DayPatterns(calendar, period_s, shift)
