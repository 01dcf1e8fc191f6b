"""What a meter measured: its seeded days with the energy faults (outage, spike) applied.

``Measured`` adds up intervals from the meter's origin to any interval boundary. Whole days
come from the closed-form day totals of ``LoadModel`` (corrected on the few days a fault
changes), summed per block of days and cached; the day at hand comes from its intervals. So
a register far from the origin costs a handful of array operations, and only the days being
read are ever spread over their intervals.

The caches are shared by all meters of a process and bounded, so a fleet of thousands of
meters keeps a small, fixed footprint whatever it is asked.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import Final, Generic, TypeVar

import numpy as np

from headend.simulator.data_faults import DataFaults
from headend.simulator.load_model import CHANNELS, Day, IntArray, LoadModel

_BLOCK: Final = 64  # days per cached cumulative sum
_instances = itertools.count()
V = TypeVar("V")
_GROWING = threading.RLock()


class _Lru(Generic[V]):
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, int], V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[int, int], value: V) -> None:
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)


# Keyed by (meter, day): shared by all meters of a process, so memory stays bounded.
_DAYS: _Lru[Day] = _Lru(16_384)  # the day's intervals (about 2 kB each)
_DAY_SUMS: _Lru[IntArray] = _Lru(65_536)  # totals of the days from the origin's day to it
_DAY_PEAKS: _Lru[tuple[int, int]] = _Lru(65_536)  # (units, slot) of the largest import


class Measured:
    """The measured energy of one meter from ``origin`` (an interval boundary, UTC seconds)."""

    def __init__(self, model: LoadModel, faults: DataFaults, origin: int) -> None:
        self.model = model
        self.faults = faults
        self.origin = origin
        self._origin_day, self._origin_slot = model.locate(origin)
        self._key = next(_instances)
        # running totals at the start of each block of days from the origin's day, (blocks, 5)
        self._block_sums: IntArray = np.zeros((1, len(CHANNELS)), dtype=np.int64)
        self._overrides: dict[int, IntArray] | None = None
        self._origin_prefix: IntArray | None = None

    def consumed(self, boundary: int) -> IntArray:
        """What was measured from the origin to an interval boundary (units, ``CHANNELS``)."""
        if boundary <= self.origin:
            return np.zeros(len(CHANNELS), dtype=np.int64)
        day, slot = self.model.locate(boundary)
        return self.consumed_at(day, np.array([slot]))[:, 0]

    def consumed_at(self, day: int, slots: IntArray) -> IntArray:
        """What was measured from the origin to the starts of ``slots`` of ``day``, (5, m)."""
        if day < self._origin_day:
            return np.zeros((len(CHANNELS), slots.size), dtype=np.int64)
        base = self._days_sum(day) - self._origin_offset()
        # slot 0 of a day needs no intervals of that day: its prefix is zero
        prefix = self.day(day).counts(slots) if slots.any() else 0
        consumed: IntArray = base[:, None] + prefix
        if day == self._origin_day:  # nothing counts before the origin
            consumed[:, slots < self._origin_slot] = 0
        return consumed

    def _origin_offset(self) -> IntArray:
        if self._origin_prefix is None:
            if self._origin_slot == 0:
                self._origin_prefix = np.zeros(len(CHANNELS), dtype=np.int64)
            else:
                slot = np.array([self._origin_slot])
                self._origin_prefix = self.day(self._origin_day).counts(slot)[:, 0]
        return self._origin_prefix

    def _days_sum(self, day: int) -> IntArray:
        """Sum of the totals of the days from the origin's day up to, not including, ``day``."""
        first = self._origin_day
        if day <= first:
            return np.zeros(len(CHANNELS), dtype=np.int64)
        cached = _DAY_SUMS.get((self._key, day))
        if cached is not None:
            return cached
        block = (day - first) // _BLOCK
        if len(self._block_sums) <= block:
            with _GROWING:  # all the missing blocks in one pass, one thread at a time
                known = len(self._block_sums) - 1
                if known < block:
                    totals = self._totals(first + known * _BLOCK, (block - known) * _BLOCK)
                    sums = totals.reshape(block - known, _BLOCK, len(CHANNELS)).sum(axis=1)
                    running = self._block_sums[known] + np.cumsum(sums, axis=0)
                    self._block_sums = np.concatenate([self._block_sums, running])
        done = first + block * _BLOCK
        partial: IntArray = self._block_sums[block]
        if day > done:
            partial = partial + self._totals(done, day - done).sum(axis=0)
        _DAY_SUMS.put((self._key, day), partial)
        return partial

    def _totals(self, first: int, count: int) -> IntArray:
        totals = self.model.day_totals(first, count)
        for day, delta in self._fault_deltas().items():
            if first <= day < first + count:
                totals[day - first] += delta
        return totals

    def _fault_deltas(self) -> dict[int, IntArray]:
        """How much the data faults change each affected day's totals."""
        if self._overrides is None:
            days: set[int] = set()
            period = self.model.period_s
            if (outage := self.faults.outage) is not None:
                first = self.model.locate(outage.down)[0]
                last = self.model.locate(_floor(outage.up, period))[0]
                days.update(range(first, last + 1))
            if (spike := self.faults.spike) is not None:
                days.add(self.model.locate(spike.start)[0])
            self._overrides = {
                d: self._faulty_day(d).totals - self.model.day_totals(d, 1)[0] for d in days
            }
        return self._overrides

    def day(self, number: int) -> Day:
        """A day's intervals as measured (outage and spike applied), cached."""
        cached = _DAYS.get((self._key, number))
        if cached is not None:
            return cached
        day = self._faulty_day(number)
        _DAYS.put((self._key, number), day)
        return day

    def _faulty_day(self, number: int) -> Day:
        day = self.model.day(number)
        outage, spike = self.faults.outage, self.faults.spike
        if outage is None and spike is None:
            return day
        import_, export, reactive = day.import_.copy(), day.export.copy(), day.reactive.copy()
        starts = self.model.slot_start(number) + np.arange(self.model.slots) * self.model.period_s
        if spike is not None:
            hit = starts == spike.start
            import_[hit] = np.floor(import_[hit] * spike.factor + 0.5).astype(np.int64)
        if outage is not None:
            ends = starts + self.model.period_s
            on = np.clip(ends - np.maximum(starts, outage.up), 0, self.model.period_s)
            off = (ends > outage.down) & (starts < outage.up)
            for values in (import_, export, reactive):
                values[off] = values[off] * on[off] // self.model.period_s
        return Day.build(number, day.period, import_, export, reactive)

    def peak(self, lo: int, hi: int) -> tuple[int, int]:
        """(units, interval end) of the largest import among intervals starting in [lo, hi)."""
        best, best_end = -1, lo
        period = self.model.period_s
        second = lo
        while second < hi:
            day, slot = self.model.locate(second)
            last = min(self.model.slots, slot + (hi - second) // period)
            whole = slot == 0 and last == self.model.slots
            peak = _DAY_PEAKS.get((self._key, day)) if whole else None
            if peak is None:
                values = self.day(day).import_[slot:last]
                k = int(np.argmax(values))
                peak = (int(values[k]), slot + k)
                if whole:
                    _DAY_PEAKS.put((self._key, day), peak)
            units, at_slot = peak
            if units > best:
                best, best_end = units, self.model.slot_start(day, at_slot + 1)
            second = self.model.slot_start(day, last)
        return best, best_end


def _floor(second: int, period: int) -> int:
    return second // period * period
