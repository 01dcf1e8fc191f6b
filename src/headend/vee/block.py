"""The array form VEE runs on: many series sharing one time grid.

A ``Block`` holds ``M`` rows (one per meter and channel) over ``L`` slots that start at a
local midnight, so slot ``i`` covers ``(start + i·step, start + (i+1)·step]`` and day ``i // S``
holds ``S`` slots. Slots ``[span_lo, span_hi)`` are the ones to validate and estimate; slots
before ``span_lo`` are history that is already final (``NaN`` where it may not be used).
A missing value is ``NaN``. ``channels`` names each row's channel for the rules that look at
some channels only (see ``headend.vee.channels``); a block without it has every row checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
U8 = NDArray[np.uint8]
U16 = NDArray[np.uint16]
U32 = NDArray[np.uint32]
Bool = NDArray[np.bool_]


@dataclass
class Channels:
    """The channel of each row (or register read): ``names[code[i]]``, an OBIS code as text."""

    code: I64
    names: tuple[str, ...]

    @classmethod
    def of(cls, names: Sequence[str]) -> Channels:
        table = tuple(sorted(set(names)))
        index = {name: i for i, name in enumerate(table)}
        return cls(np.array([index[n] for n in names], dtype=np.int64), table)

    def take(self, rows: I64) -> Channels:
        return Channels(self.code[rows], self.names)


@dataclass
class RegisterArrays:
    """Register reads sorted by ``(group, t)``; values in the interval rows' units.

    ``group`` identifies one meter's one register; ``family`` is shared by a total register and
    its tariff registers (same meter, same OBIS C and D); ``tariff`` is the OBIS E group (0 for
    the total); ``row`` is the interval row a total register brackets, or -1; ``channels``
    the register's OBIS code, per read.
    """

    group: I64
    family: I64
    tariff: I64
    t: I64
    value: F64
    row: I64
    active: Bool | None = None
    channels: Channels | None = None


@dataclass
class Block:
    start_s: int
    step_s: int
    days: tuple[date, ...]
    values: F64
    status: U8
    span_lo: int
    span_hi: int
    limit_kwh: F64
    extra_flags: U16 | None = None
    extra_rules: U32 | None = None
    outage: Bool | None = None
    registers: RegisterArrays | None = None
    clock_rows: I64 | None = None
    clock_t: I64 | None = None
    clock_deviation: F64 | None = None
    channels: Channels | None = None

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def slots_per_day(self) -> int:
        return 86400 // self.step_s

    def boundary_s(self, slot: I64 | int) -> I64:
        """Epoch seconds of boundary ``slot`` (the start of slot ``slot``)."""
        return np.asarray(self.start_s + np.asarray(slot, dtype=np.int64) * self.step_s)


@dataclass
class FindingBatch:
    """Findings of one rule and kind, as arrays; ``rows`` index the block's rows or, when
    ``on_register`` is set, the register ``group``s. Times are epoch seconds."""

    rule: str
    kind: str
    rows: I64
    start_s: I64
    end_s: I64
    metrics: dict[str, F64] = field(default_factory=dict)
    on_register: bool = False

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass
class BlockResult:
    """Per-slot outcome over the span ``[span_lo, span_hi)`` (arrays are ``M × span``).

    ``source`` tells what an estimate used: days back for E4, samples for E5, window for E2.
    """

    value: F64
    quality: U8
    method: U8
    rules: U32
    flags: U16
    source: NDArray[np.int32]
    findings: list[FindingBatch]
    reread_rows: I64
    reread_start: I64
    reread_end: I64


def runs(mask: Bool) -> tuple[I64, I64, I64]:
    """Maximal runs of ``True`` in each row: ``(row, start, end)`` with ``end`` exclusive."""
    if mask.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    hit_rows = np.flatnonzero(mask.any(axis=1))
    sub = mask[hit_rows]
    padded = np.zeros((sub.shape[0], sub.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = sub
    edges = np.diff(padded, axis=1)
    r_start, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    return hit_rows[r_start].astype(np.int64), start.astype(np.int64), end.astype(np.int64)
