"""Interval versions in their blocks (``interval_blocks``, one row per meter, channel and UTC
day): landing what was read, adding VEE's and operators' versions, and reading them back as
``StoredInterval`` rows or as arrays.

A write reads the blocks it changes and writes them back whole, in the caller's transaction;
on PostgreSQL the blocks are locked first (``FOR UPDATE``, in key order), so that landing, a
VEE pass and an edit touching the same day never lose each other's versions. SQLite has one
writer at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, and_, bindparam, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from headend.store.base import table_of, utcnow
from headend.store.blocks import (
    ARRAY_FIELDS,
    Columns,
    StoredInterval,
    columns_of,
    day_of,
    merged,
    pack_columns,
    quantity,
    unpack,
    unpack_many,
)
from headend.store.models import Channel, IntervalBlock

_BLOCKS_PER_QUERY = 2000


@cache
def _blocks_statement(bounded: bool, by_channel: bool) -> Select[Any]:
    """Blocks of some meters from a day on (to a day), of some channels, named by OBIS."""
    b, c = table_of(IntervalBlock), table_of(Channel)
    query = (
        select(b.c.meter_id, c.c.obis, b.c.day, b.c.data)
        .join(c, c.c.id == b.c.channel_id)
        .where(b.c.meter_id.in_(bindparam("pks", expanding=True)), b.c.day >= bindparam("lo"))
    )
    if bounded:
        query = query.where(b.c.day <= bindparam("hi"))
    if by_channel:
        query = query.where(c.c.obis.in_(bindparam("channels", expanding=True)))
    return query


@cache
def _days_statement() -> Select[Any]:
    b, c = table_of(IntervalBlock), table_of(Channel)
    return (
        select(b.c.meter_id, c.c.obis, b.c.day, b.c.data)
        .join(c, c.c.id == b.c.channel_id)
        .where(
            b.c.meter_id.in_(bindparam("pks", expanding=True)),
            c.c.obis.in_(bindparam("channels", expanding=True)),
            b.c.day.in_(bindparam("days", expanding=True)),
        )
    )


class VersionTaken(Exception):
    """A version number another writer stored meanwhile: the transaction is to be retried."""


BlockKey = tuple[int, int, date]  # meter pk, channel id, UTC day


class IntervalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._ids: dict[str, int] | None = None

    # -- channels --------------------------------------------------------------------------

    def _channel_ids(self) -> dict[str, int]:
        if self._ids is None:
            self._ids = {
                obis: cid for obis, cid in self.session.execute(select(Channel.obis, Channel.id))
            }
        return self._ids

    def channel_ids(self, obis: Iterable[str], create: bool = False) -> dict[str, int]:
        """The ids of these channels; with ``create``, those not known yet are added."""
        known = self._channel_ids()
        wanted = set(obis)
        missing = sorted(wanted - set(known))
        if missing and create:
            for code in missing:
                if len(code) > 24:
                    raise ValueError(f"channel {code!r} is longer than 24 characters")
            dialect = self.session.get_bind().dialect.name
            module: Any
            if dialect == "postgresql":
                from sqlalchemy.dialects import postgresql as module
            else:
                from sqlalchemy.dialects import sqlite as module
            self.session.execute(
                module.insert(table_of(Channel)).on_conflict_do_nothing(index_elements=["obis"]),
                [{"obis": code} for code in missing],
            )
            self._ids = None
            known = self._channel_ids()
        return {code: known[code] for code in wanted if code in known}

    def channel_names(self) -> dict[int, str]:
        return {cid: code for code, cid in self._channel_ids().items()}

    def channels_of(self, meter_pk: int) -> list[str]:
        """The channels the meter has intervals of, in OBIS order."""
        ids = self.session.scalars(
            select(IntervalBlock.channel_id).where(IntervalBlock.meter_id == meter_pk).distinct()
        ).all()
        names = self.channel_names()
        return sorted(names[cid] for cid in ids)

    # -- reading ---------------------------------------------------------------------------

    def blocks(
        self,
        meter_pks: Sequence[int],
        channels: Sequence[str] | None,
        after: datetime,
        until: datetime | None,
    ) -> Iterator[tuple[int, str, date, bytes]]:
        """The blocks that may hold intervals ending in ``(after, until]`` (``until`` None:
        no end): (meter pk, channel, day, data), by meter, channel and day."""
        statement = _blocks_statement(until is not None, channels is not None)
        params: dict[str, Any] = {"lo": day_of(after + timedelta(seconds=1))}
        if until is not None:
            params["hi"] = day_of(until)
        if channels is not None:
            params["channels"] = sorted(set(channels))
        pks = sorted(set(meter_pks))
        for i in range(0, len(pks), _BLOCKS_PER_QUERY):
            params["pks"] = pks[i : i + _BLOCKS_PER_QUERY]
            rows = [
                (pk, obis, day, bytes(data))
                for pk, obis, day, data in self.session.execute(statement, params)
            ]
            rows.sort(key=lambda r: (r[0], r[1], r[2]))
            yield from rows

    def columns(
        self,
        meter_pks: Sequence[int],
        channels: Sequence[str] | None,
        after: datetime,
        until: datetime | None,
    ) -> Iterator[tuple[int, str, Columns]]:
        """Each block's versions as arrays, cut to intervals ending in ``(after, until]``:
        (meter pk, channel, columns), by meter, channel and day."""
        lo = int(after.timestamp())
        hi = None if until is None else int(until.timestamp())
        for pk, channel, day, data in self.blocks(meter_pks, channels, after, until):
            cols = unpack(data, day)
            keep = cols.end > lo
            if hi is not None:
                keep &= cols.end <= hi
            yield pk, channel, cols if keep.all() else _cut(cols, keep)

    def blocks_on_days(
        self, meter_pks: Sequence[int], channels: Sequence[str], days: Sequence[date]
    ) -> list[tuple[int, str, date, bytes]]:
        """The blocks of these UTC days: (meter pk, channel, day, data)."""
        if not channels or not days or not meter_pks:
            return []
        params: dict[str, Any] = {"channels": sorted(set(channels)), "days": sorted(set(days))}
        pks = sorted(set(meter_pks))
        found: list[tuple[int, str, date, bytes]] = []
        for i in range(0, len(pks), _BLOCKS_PER_QUERY):
            params["pks"] = pks[i : i + _BLOCKS_PER_QUERY]
            found.extend(
                (pk, obis, day, bytes(data))
                for pk, obis, day, data in self.session.execute(_days_statement(), params)
            )
        return found

    def gathered(
        self,
        meter_pks: Sequence[int],
        channels: Sequence[str] | None,
        after: datetime,
        until: datetime | None,
    ) -> Gathered:
        """The versions of the meters' intervals ending in ``(after, until]`` as one set of
        arrays, by meter, channel, interval end and version."""
        blocks = list(self.blocks(meter_pks, channels, after, until))
        return gather(blocks, int(after.timestamp()), until)

    def versions(
        self,
        meter_pks: Sequence[int],
        after: datetime,
        until: datetime | None = None,
        channels: Sequence[str] | None = None,
        which: str = "all",
    ) -> list[StoredInterval]:
        """The versions of the meters' intervals ending in ``(after, until]``, by meter,
        channel, interval end and version: ``all`` of them, the ``current`` (highest) one of
        each interval, or the ``raw`` one (version 0)."""
        found = self.gathered(meter_pks, channels, after, until)
        if which == "all":
            keep = None
        elif which == "current":
            keep = found.current()
        elif which == "raw":
            keep = found.cols.version == 0
        else:
            raise ValueError(f"unknown selection {which!r}")
        return found.rows(keep)

    def last_interval_ends(self, meter_pks: Sequence[int]) -> dict[int, datetime]:
        """Per meter, the end of its last interval as read (meters with none are left out)."""
        if not meter_pks:
            return {}
        b = table_of(IntervalBlock)
        last = (
            select(b.c.meter_id, func.max(b.c.day).label("day"))
            .where(b.c.meter_id.in_(list(meter_pks)))
            .group_by(b.c.meter_id)
            .subquery()
        )
        rows = self.session.execute(
            select(b.c.meter_id, b.c.day, b.c.data).join(
                last, and_(b.c.meter_id == last.c.meter_id, b.c.day == last.c.day)
            )
        )
        ends: dict[int, datetime] = {}
        for pk, day, data in rows:
            cols = unpack(bytes(data), day)
            raw = cols.end[cols.version == 0]
            if len(raw):
                end = _utc(int(raw.max()))
                if pk not in ends or end > ends[pk]:
                    ends[pk] = end
        return ends

    def capture_before(
        self, meter_pk: int, channels: list[str], end: datetime, look_back: int = 62
    ) -> dict[str, tuple[datetime, Decimal]]:
        """Per channel, the register capture as read closest before ``end``, within
        ``look_back`` days; the days are read a week at a time, latest first."""
        found: dict[str, tuple[datetime, Decimal]] = {}
        cut = int(end.timestamp())
        until = end
        while len(found) < len(set(channels)) and until > end - timedelta(days=look_back):
            since = max(until - timedelta(days=7), end - timedelta(days=look_back))
            wanted = [c for c in channels if c not in found]
            for _, channel, cols in self.columns([meter_pk], wanted, since, until):
                keep = (cols.version == 0) & ~cols.capture_null & (cols.end < cut)
                if keep.any():
                    i = int(cols.end[keep].argmax())
                    at = _utc(int(cols.end[keep][i]))
                    value = quantity(int(cols.capture[keep][i]))
                    assert value is not None
                    if channel not in found or at > found[channel][0]:
                        found[channel] = (at, value)
            until = since
        return found

    # -- writing ---------------------------------------------------------------------------

    def land(self, rows: Sequence[dict[str, Any]]) -> int:
        """Land intervals as read (version 0); an interval already landed stays as it was.
        Returns how many were new."""
        return self._write(rows, replace_existing=False)

    def add_versions(self, rows: Sequence[dict[str, Any]]) -> int:
        """Add new versions (VEE's, an operator's); a version number already stored raises
        ``VersionTaken``."""
        return self._write(rows, replace_existing=True)

    def _write(self, rows: Sequence[dict[str, Any]], replace_existing: bool) -> int:
        if not rows:
            return 0
        by_block: dict[tuple[int, str, date], list[tuple[Any, ...]]] = defaultdict(list)
        now = utcnow()
        days: dict[datetime, date] = {}
        for row in rows:
            get = row.get
            end = row["interval_end"]
            version = (  # FIELDS, with the version, flags and time a row leaves out filled in
                end, get("version", 0), get("value"), get("cumulative"), get("quality"),
                get("flags", 0), get("status"), get("method"), get("rules"), get("inputs"),
                get("raw_read_id"), get("created_by"), get("created_at", now),
            )  # fmt: skip
            if version[11] is None:
                raise ValueError("an interval version needs created_by")
            day = days.get(end)
            if day is None:
                day = days[end] = day_of(end)
            by_block[(row["meter_id"], row["channel"], day)].append(version)
        ids = self.channel_ids({channel for _, channel, _ in by_block}, create=True)
        existing = self._locked(by_block, ids)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        added = 0
        for (pk, channel, day), new in sorted(by_block.items()):
            stored = existing.get((pk, ids[channel], day))
            before = unpack(stored, day) if stored is not None else None
            have = (
                set()
                if before is None
                else set(zip(before.end.tolist(), before.version.tolist(), strict=True))
            )
            fresh = []
            for version in new:
                key = (int(version[0].timestamp()), version[1])
                if key in have:
                    if replace_existing:
                        raise VersionTaken(
                            f"version {key[1]} of {channel} at {version[0].isoformat()} is stored"
                        )
                    continue
                have.add(key)
                fresh.append(version)
            if not fresh:
                continue
            added += len(fresh)
            cols = columns_of(fresh)
            data = pack_columns(day, merged(before if before is not None else columns_of([]), cols))
            values = {"m": pk, "c": ids[channel], "d": day, "data": data}
            (updates if stored is not None else inserts).append(values)
        b = table_of(IntervalBlock)
        if inserts:
            self.session.execute(
                insert(b).values(
                    meter_id=bindparam("m"),
                    channel_id=bindparam("c"),
                    day=bindparam("d"),
                    data=bindparam("data"),
                ),
                inserts,
            )
        if updates:
            self.session.execute(
                update(b)
                .where(
                    b.c.meter_id == bindparam("m"),
                    b.c.channel_id == bindparam("c"),
                    b.c.day == bindparam("d"),
                )
                .values(data=bindparam("data"))
                .execution_options(synchronize_session=False),
                updates,
            )
        return added

    def _locked(
        self, by_block: dict[tuple[int, str, date], Any], ids: dict[str, int]
    ) -> dict[BlockKey, bytes]:
        """The stored blocks among these keys, locked for the transaction on PostgreSQL."""
        b = table_of(IntervalBlock)
        keys = sorted({(pk, ids[channel], day) for pk, channel, day in by_block})
        found: dict[BlockKey, bytes] = {}
        postgresql = self.session.get_bind().dialect.name == "postgresql"
        for i in range(0, len(keys), _BLOCKS_PER_QUERY):
            chunk = keys[i : i + _BLOCKS_PER_QUERY]
            pks = sorted({k[0] for k in chunk})
            days = [k[2] for k in chunk]
            query = (
                select(b.c.meter_id, b.c.channel_id, b.c.day, b.c.data)
                .where(
                    b.c.meter_id.in_(pks),
                    b.c.day >= min(days),
                    b.c.day <= max(days),
                    b.c.channel_id.in_(sorted({k[1] for k in chunk})),
                )
                .order_by(b.c.meter_id, b.c.channel_id, b.c.day)
            )
            if len(pks) > 1 and len(chunk) < 200:
                query = query.where(tuple_(b.c.meter_id, b.c.channel_id, b.c.day).in_(chunk))
            if postgresql:
                query = query.with_for_update()
            wanted = set(chunk)
            for pk, cid, day, data in self.session.execute(query):
                if (pk, cid, day) in wanted:
                    found[(pk, cid, day)] = bytes(data)
        return found


def _utc(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


@dataclass
class Gathered:
    """Versions of many meters' and channels' intervals as one set of arrays: ``cols``, and
    per entry its meter (``meter``) and the index of its channel in ``channels``."""

    cols: Columns
    meter: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    channels: list[str]

    def __len__(self) -> int:
        return len(self.cols)

    def current(self) -> npt.NDArray[np.bool_]:
        """Which entries are their interval's current (highest) version."""
        last = np.ones(len(self.cols), dtype=bool)
        if len(last) > 1:
            end = self.cols.end
            last[:-1] = (
                (end[1:] != end[:-1])
                | (self.meter[1:] != self.meter[:-1])
                | (self.channel[1:] != self.channel[:-1])
            )
        return last

    def rows(self, keep: npt.NDArray[np.bool_] | None = None) -> list[StoredInterval]:
        """The entries (those ``keep`` selects) as ``StoredInterval``s."""
        picked = None if keep is None else np.flatnonzero(keep)
        meters = (self.meter if picked is None else self.meter[picked]).tolist()
        channels = (self.channel if picked is None else self.channel[picked]).tolist()
        return self.cols.rows(meters, [self.channels[c] for c in channels], keep)


def gather(
    blocks: Sequence[tuple[int, str, date, bytes]], lo: int, until: datetime | None
) -> Gathered:
    """Blocks (meter pk, channel, day, data), in order, unpacked at once and cut to the
    intervals ending after ``lo`` (seconds since 1970) and at or before ``until``."""
    cols, block = unpack_many([(data, day) for _, _, day, data in blocks])
    names = sorted({channel for _, channel, _, _ in blocks})
    index = {name: i for i, name in enumerate(names)}
    meter = np.array([pk for pk, _, _, _ in blocks], dtype=np.int64)[block]
    channel = np.array([index[c] for _, c, _, _ in blocks], dtype=np.int64)[block]
    keep = cols.end > lo
    if until is not None:
        keep &= cols.end <= int(until.timestamp())
    if not keep.all():
        cols, meter, channel = _cut(cols, keep), meter[keep], channel[keep]
    return Gathered(cols, meter, channel, names)


def _cut(cols: Columns, keep: Any) -> Columns:
    """The entries of ``cols`` that ``keep`` selects (the tables stay whole)."""
    return Columns(
        **{name: getattr(cols, name)[keep] for name in ARRAY_FIELDS},
        texts=cols.texts,
        raw_reads=cols.raw_reads,
        times=cols.times,
    )
