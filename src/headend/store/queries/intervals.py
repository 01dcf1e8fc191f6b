"""The current intervals of many meters, as billing, the NEM12 export and the rollup pass read
them: gathered from the meters' blocks into flat arrays, one entry per interval, so that their
sums are taken at once over every meter of a page or batch.

The current version of an interval is its highest. ``EpochSeconds`` is the SQL expression of
a timestamp's seconds since 1970, for the statements over other tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from headend.domain.quality import Quality
from headend.store.blocks import QUALITIES, from_epoch_micro, quantity, unpack, unpack_many
from headend.store.repositories.intervals import IntervalRepository

Spans = tuple[tuple[datetime, datetime], ...]  # (after, until] spans of interval ends
_FEW_BLOCKS = 8  # up to this many, blocks are decoded one by one rather than all at once


class EpochSeconds(FunctionElement[int]):
    """Seconds since 1970 of a UTC timestamp column, as an integer."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part gives a double: cheaper than EXTRACT's numeric, exact for whole seconds
    return f"CAST(date_part('epoch', {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text (headend.store.types.UtcDateTime)
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@dataclass
class Current:
    """Current interval versions as arrays, one entry per interval; ``channel`` indexes
    ``channels``, ``quality`` indexes ``headend.store.blocks.QUALITIES``; ``value`` is in
    integer micro-kWh, 0 where ``value_null``."""

    channels: list[str]
    meter: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    version: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]
    value_null: npt.NDArray[np.bool_]
    quality: npt.NDArray[np.int64]
    captured: AsRead | None = None  # with ``current(..., as_read=True)``

    def __len__(self) -> int:
        return len(self.end)


@dataclass
class AsRead:
    """The register captures as read (version 0, where the meter sent one) of the same
    intervals as a ``Current``, one entry per interval; ``capture`` in integer micro-kWh."""

    meter: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    capture: npt.NDArray[np.int64]
    quality: npt.NDArray[np.int64]


def _seconds(at: datetime) -> int:
    return int(at.timestamp())


def current(
    session: Session,
    pks: Sequence[int],
    channels: Sequence[str],
    after: datetime,
    until: datetime | None,
    spans: dict[int, Spans] | None = None,
    cuts: dict[int, datetime] | None = None,
    as_read: bool = False,
) -> Current:
    """The current version of each interval of the meters ending in ``(after, until]``;
    with ``spans``, only those in one of the meter's spans (and only the blocks of those
    spans are read); with ``cuts``, only those ending after the meter's cut; with
    ``as_read``, also their register captures as read (``Current.captured``)."""
    names = sorted(set(channels))
    repo = IntervalRepository(session)
    reads: list[tuple[list[int], datetime, datetime | None]] = []
    if spans is None:
        reads.append((list(pks), after, until))
    else:
        grouped_pks: dict[Spans, list[int]] = {}
        for pk in pks:
            grouped_pks.setdefault(spans.get(pk, ()), []).append(pk)
        for ranges, members in grouped_pks.items():
            for lo, hi in ranges:
                first, last = max(lo, after), hi if until is None else min(hi, until)
                if first < last:
                    reads.append((members, first, last))
    joined: list[Current] = []
    for members, since, till in reads:
        found = repo.gathered(members, names, since, till)
        cols = found.cols
        keep = found.current()
        read = (cols.version == 0) & ~cols.capture_null if as_read else None
        if cuts is not None:
            cut_pks = np.array(sorted(cuts), dtype=np.int64)
            cut_at = np.array([_seconds(cuts[pk]) for pk in sorted(cuts)], dtype=np.int64)
            after_cut = cols.end > cut_at[np.searchsorted(cut_pks, found.meter)]
            keep &= after_cut
            if read is not None:
                read &= after_cut
        position = np.array([names.index(c) for c in found.channels] or [0], dtype=np.int64)
        captured = None
        if read is not None:
            captured = AsRead(
                meter=found.meter[read],
                channel=position[found.channel[read]],
                end=cols.end[read],
                capture=cols.capture[read],
                quality=cols.quality[read].astype(np.int64),
            )
        joined.append(
            Current(
                channels=names,
                meter=found.meter[keep],
                channel=position[found.channel[keep]],
                end=cols.end[keep],
                version=cols.version[keep],
                value=cols.value[keep],
                value_null=cols.value_null[keep],
                quality=cols.quality[keep].astype(np.int64),
                captured=captured,
            )
        )
    return _joined(names, joined)


def _joined(names: list[str], parts: list[Current]) -> Current:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Current(names, empty, empty, empty, empty, empty, empty.astype(bool), empty)
    if len(parts) == 1:
        return parts[0]
    fields = ("meter", "channel", "end", "version", "value", "value_null", "quality")
    captured = None
    reads = [p.captured for p in parts if p.captured is not None]
    if reads:
        captured = AsRead(
            *(
                np.concatenate([getattr(r, field) for r in reads])
                for field in ("meter", "channel", "end", "capture", "quality")
            )
        )
    joined = {field: np.concatenate([getattr(p, field) for p in parts]) for field in fields}
    return Current(names, **joined, captured=captured)


def grouped(keys: Sequence[npt.NDArray[np.int64]]) -> tuple[npt.NDArray[np.int64], Any]:
    """The distinct rows of the key columns (in order) and, per entry, its row's index."""
    stacked = np.stack(keys, axis=1)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def summed(inverse: Any, groups: int, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Exact integer sums of ``values`` by group."""
    out = np.zeros(groups, dtype=np.int64)
    np.add.at(out, inverse, values)
    return out


class CurrentRow(NamedTuple):
    meter_id: int
    channel: str
    interval_end: datetime
    version: int
    value: int | None  # micro-kWh
    quality: Quality
    method: str | None
    created_at: datetime


def current_rows(
    session: Session,
    pks: Sequence[int],
    channels: Sequence[str],
    after: datetime,
    until: datetime,
) -> list[CurrentRow]:
    """The current version of each interval ending in ``(after, until]``, with its method
    and creation time, by meter, channel and time."""
    rows: list[CurrentRow] = []
    base = datetime(1970, 1, 1, tzinfo=UTC)
    for pk, channel, cols in IntervalRepository(session).columns(pks, channels, after, until):
        picked = np.flatnonzero(cols.current())
        texts: list[str | None] = [None, *cols.texts]
        times = [from_epoch_micro(us) for us in cols.times]
        ends = cols.end[picked].tolist()
        versions = cols.version[picked].tolist()
        values = cols.value[picked].tolist()
        nulls = cols.value_null[picked].tolist()
        qualities = cols.quality[picked].tolist()
        methods = cols.method[picked].tolist()
        created = cols.created_at[picked].tolist()
        rows.extend(
            CurrentRow(
                pk,
                channel,
                base + timedelta(seconds=ends[i]),
                versions[i],
                None if nulls[i] else values[i],
                QUALITIES[qualities[i]],
                texts[methods[i]],
                times[created[i]],
            )
            for i in range(len(picked))
        )
    return rows


class Capture(NamedTuple):
    meter_id: int
    channel: str
    at: int  # seconds since 1970
    cumulative: Any  # Decimal kWh
    quality: Quality


def captures_at(
    session: Session, pks: Sequence[int], channels: Sequence[str], instants: Sequence[datetime]
) -> list[Capture]:
    """The load profile's register captures as read (version 0) at these instants."""
    wanted = sorted({_seconds(at) for at in instants})
    days = sorted({(at - timedelta(seconds=1)).astimezone(UTC).date() for at in instants})
    found: list[Capture] = []
    blocks = IntervalRepository(session).blocks_on_days(pks, channels, days)
    if len(blocks) <= _FEW_BLOCKS:  # one meter's record: block by block costs less
        for pk, channel, day, data in blocks:
            one = unpack(data, day)
            ends = one.end
            for second in wanted:  # a version 0 comes first among its interval's versions
                i = int(np.searchsorted(ends, second))
                hit = i < len(ends) and ends[i] == second and one.version[i] == 0
                if hit and not one.capture_null[i]:
                    value = quantity(int(one.capture[i]))
                    quality = QUALITIES[int(one.quality[i])]
                    found.append(Capture(pk, channel, second, value, quality))
        return found
    cols, block = unpack_many([(data, day) for _, _, day, data in blocks])
    keep = (cols.version == 0) & ~cols.capture_null & np.isin(cols.end, wanted)
    for i in np.flatnonzero(keep).tolist():
        pk, channel, _, _ = blocks[int(block[i])]
        value = quantity(int(cols.capture[i]))
        quality = QUALITIES[int(cols.quality[i])]
        found.append(Capture(pk, channel, int(cols.end[i]), value, quality))
    return found
