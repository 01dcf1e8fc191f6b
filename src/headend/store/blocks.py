"""The packed form of one meter channel's interval versions of one UTC day.

The store keeps interval data as one row per meter, channel and UTC day (``interval_blocks``)
whose ``data`` holds every version of every interval of that day: the value as read (version
0) and each later version (VEE's, an operator's). Nothing is lost: each version keeps its
value, register capture, quality, flags, status byte, estimation method, rules, inputs, raw
read, author and time. The packing only removes what repeats:

- times are offsets from the day's start, delta coded (a steady capture period costs nothing);
- a later version's value is kept as its difference from the version before it (a version
  VEE accepted as read costs a zero), and a register capture as its difference from the
  previous capture plus the interval's value (a meter whose register and intervals agree costs
  zeros); values and captures are divided by the largest power of ten that divides them all
  (a meter counting in Wh stores Wh, not micro-kWh);
- text and references (method, rules, inputs, author, raw read, creation time) are indexes
  into small tables of the block's distinct values;
- the columns are laid out byte plane by byte plane (all first bytes, then all second bytes,
  ...), so the runs of zeros that small numbers leave in their high bytes compress to nothing,
  and the whole is deflated (zlib).

``pack`` and ``unpack`` are exact inverses over the values the store accepts; anything out of
range (a version above 32,767, a value beyond 64 bits) is refused with ``ValueError`` before
anything is written.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from headend.domain.quality import Quality

FORMAT = 1  # the first byte of every block
SCALE = 6  # values are integers of 10**-SCALE (micro-kWh), as ``ScaledDecimal`` keeps them
EPOCH = date(1970, 1, 1)
# a quality's code in a block is its position here: a new quality is appended, never inserted
_QUALITIES: tuple[Quality, ...] = tuple(
    Quality(name)
    for name in (
        "RAW",
        "VALID",
        "VERIFIED",
        "SUSPECT",
        "MISSING",
        "EST_LINEAR",
        "EST_LIKEDAY",
        "EST_AVG_LIKEDAY",
        "EST_SCALED_TO_REGISTER",
        "EST_PREV_YEAR",
        "EST_PROFILE",
        "EST_ZERO",
        "EDITED",
        "FORWARD_EST",
    )
)
_QUALITY_CODE = {q: i for i, q in enumerate(_QUALITIES)}
_MAX_VERSION = 32767
_MAX_TABLE = 65535
_INT64 = 2**63
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UNSET = object()  # a value no version holds

# one entry (one version of one interval), before the byte planes are split
_ENTRY = np.dtype(
    [
        ("offset", "<i4"),  # seconds after the previous entry's end (the first: the day's start)
        ("version", "<i2"),
        ("value", "<i8"),  # as the module's description says, in 10**scale units
        ("capture", "<i8"),
        ("status", "<i8"),
        ("flags", "<i4"),
        ("quality", "u1"),
        ("nulls", "u1"),  # bits: value, capture, status are NULL
        ("method", "<u2"),  # 0: NULL, else 1 + index into the text table
        ("rules", "<u2"),
        ("inputs", "<u2"),
        ("created_by", "<u2"),
        ("raw_read", "<u2"),  # 0: NULL, else 1 + index into the raw read table
        ("created_at", "<u2"),  # index into the time table
    ]
)
_VALUE_NULL, _CAPTURE_NULL, _STATUS_NULL = 1, 2, 4


class StoredInterval(NamedTuple):
    """One version of one interval, as stored."""

    meter_id: int
    channel: str
    interval_end: datetime
    version: int
    value: Decimal | None  # kWh in the interval
    cumulative: Decimal | None  # the register at the interval's end, as captured
    quality: Quality
    flags: int
    status: int | None
    method: str | None
    rules: str | None
    inputs: str | None
    raw_read_id: int | None
    created_by: str
    created_at: datetime


# the columns of a version, in StoredInterval's order after meter and channel
FIELDS = StoredInterval._fields[2:]


def day_of(end: datetime) -> date:
    """The UTC day whose block holds an interval ending at ``end``: the day D whose intervals
    end in (D 00:00, D+1 00:00], as a day's rollup counts them."""
    return (end.astimezone(UTC) - timedelta(microseconds=1)).date()


def day_start(day: date) -> int:
    """Seconds since 1970 of the day's UTC midnight."""
    return (day - EPOCH).days * 86400


def micro(value: Decimal | int | None) -> int | None:
    """A quantity as the integer count of 10**-SCALE the store keeps; more decimals refused."""
    if value is None:
        return None
    scaled = (value if type(value) is Decimal else Decimal(value)).scaleb(SCALE)
    result = int(scaled)
    if scaled != result:
        raise ValueError(f"{value} has more than {SCALE} decimal places")
    if not -_INT64 <= result < _INT64:
        raise ValueError(f"{value} is beyond what the store keeps")
    return result


def quantity(count: int | None) -> Decimal | None:
    return None if count is None else Decimal(count).scaleb(-SCALE)


def epoch_micro(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()} given; times are stored in UTC")
    return (at - _EPOCH) // _MICROSECOND


def from_epoch_micro(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass
class Columns:
    """A block's versions as arrays (ordered by interval end, then version), for sums over
    many blocks without building a Python object per interval. ``value`` and ``capture``
    are integers of 10**-SCALE, 0 where ``*_null``."""

    end: npt.NDArray[np.int64]  # seconds since 1970
    version: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]
    value_null: npt.NDArray[np.bool_]
    capture: npt.NDArray[np.int64]
    capture_null: npt.NDArray[np.bool_]
    quality: npt.NDArray[np.uint8]  # position in ``QUALITIES``
    flags: npt.NDArray[np.int64]
    status: npt.NDArray[np.int64]
    status_null: npt.NDArray[np.bool_]
    method: npt.NDArray[Any]
    rules: npt.NDArray[Any]
    inputs: npt.NDArray[Any]
    created_by: npt.NDArray[Any]
    raw_read: npt.NDArray[Any]
    created_at: npt.NDArray[Any]
    texts: list[str]
    raw_reads: list[int]
    times: list[int]  # epoch microseconds

    def __len__(self) -> int:
        return len(self.end)

    def current(self) -> npt.NDArray[np.bool_]:
        """Which entries are their interval's current (highest) version."""
        last = np.ones(len(self.end), dtype=bool)
        if len(self.end) > 1:
            last[:-1] = self.end[1:] != self.end[:-1]
        return last

    def rows(
        self,
        meter_id: int | Sequence[int],
        channel: str | Sequence[str],
        keep: npt.NDArray[np.bool_] | None = None,
    ) -> list[StoredInterval]:
        """The versions (those ``keep`` selects) as ``StoredInterval``s: of one meter and
        channel, or of the meter and channel given for each version selected."""
        picked = np.arange(len(self.end)) if keep is None else np.flatnonzero(keep)
        if len(picked) == 0:
            return []
        meters = [meter_id] * len(picked) if isinstance(meter_id, int) else meter_id
        channels = [channel] * len(picked) if isinstance(channel, str) else channel
        texts: list[str | None] = [None, *self.texts]
        raws: list[int | None] = [None, *self.raw_reads]
        times = [from_epoch_micro(us) for us in self.times]
        base = datetime(1970, 1, 1, tzinfo=UTC)
        ends = self.end[picked].tolist()
        versions = self.version[picked].tolist()
        values = self.value[picked].tolist()
        value_null = self.value_null[picked].tolist()
        captures = self.capture[picked].tolist()
        capture_null = self.capture_null[picked].tolist()
        qualities = self.quality[picked].tolist()
        flags = self.flags[picked].tolist()
        statuses = self.status[picked].tolist()
        status_null = self.status_null[picked].tolist()
        methods = self.method[picked].tolist()
        rules = self.rules[picked].tolist()
        inputs = self.inputs[picked].tolist()
        authors = self.created_by[picked].tolist()
        raw_reads = self.raw_read[picked].tolist()
        created = self.created_at[picked].tolist()
        return [
            StoredInterval(
                meters[i],
                channels[i],
                base + timedelta(seconds=ends[i]),
                versions[i],
                None if value_null[i] else Decimal(values[i]).scaleb(-SCALE),
                None if capture_null[i] else Decimal(captures[i]).scaleb(-SCALE),
                _QUALITIES[qualities[i]],
                flags[i],
                None if status_null[i] else statuses[i],
                texts[methods[i]],
                texts[rules[i]],
                texts[inputs[i]],
                raws[raw_reads[i]],
                texts[authors[i]] or "",
                times[created[i]],
            )
            for i in range(len(picked))
        ]


QUALITIES = _QUALITIES


def quality_code(quality: Quality | str) -> int:
    try:
        return _QUALITY_CODE[quality]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"{quality!r} is not a quality") from None


class _Table:
    """Distinct values in first-seen order; ``index`` counts from ``base``."""

    def __init__(self, base: int, values: Sequence[Any] = ()) -> None:
        self.base = base
        self.values: list[Any] = list(values)
        self.position: dict[Any, int] = {v: i + base for i, v in enumerate(self.values)}

    def index(self, value: Any) -> int:
        found = self.position.get(value)
        if found is None:
            found = len(self.values) + self.base
            if found > _MAX_TABLE:
                raise ValueError("more distinct texts or references in one day than a block keeps")
            self.values.append(value)
            self.position[value] = found
        return found


def columns_of(versions: Sequence[Sequence[Any]]) -> Columns:
    """Versions given as sequences of ``FIELDS`` values (interval end, version, value,
    cumulative, quality, flags, status, method, rules, inputs, raw read id, created by,
    created at), quantities as ``Decimal`` or integer counts of 10**-SCALE, as ``Columns``
    in the order given; what a block cannot keep raises ``ValueError``."""
    n = len(versions)
    texts, raws, times = _Table(1), _Table(1), _Table(0)
    end = [0] * n
    version = [0] * n
    value, value_null = [0] * n, [False] * n
    capture, capture_null = [0] * n, [False] * n
    quality, flags = [0] * n, [0] * n
    status, status_null = [0] * n, [False] * n
    method, rules, inputs, by, raw, at = ([0] * n for _ in range(6))
    last_when: datetime | None = None
    last_at = 0
    last_who: Any = _UNSET
    last_rr: Any = _UNSET
    last_by = last_raw = 0
    for i, (e, ver, v, c, q, f, st, m, r, inp, rr, who, when) in enumerate(versions):
        second = epoch_micro(e)
        if second % 1_000_000:
            raise ValueError(f"interval end {e.isoformat()} is not a whole second")
        end[i] = second // 1_000_000
        if not 0 <= ver <= _MAX_VERSION:
            raise ValueError(f"version {ver} is outside 0..{_MAX_VERSION}")
        version[i] = ver
        count = v if v is None or type(v) is int else micro(v)
        if count is None:
            value_null[i] = True
        else:
            value[i] = _checked(count)
        count = c if c is None or type(c) is int else micro(c)
        if count is None:
            capture_null[i] = True
        else:
            capture[i] = _checked(count)
        if st is None:
            status_null[i] = True
        else:
            status[i] = st
        code = _QUALITY_CODE.get(q)
        quality[i] = quality_code(q) if code is None else code
        flags[i] = int(f)
        if m is not None:
            method[i] = texts.index(m)
        if r is not None:
            rules[i] = texts.index(r)
        if inp is not None:
            inputs[i] = texts.index(inp)
        if who is not last_who:
            last_who, last_by = who, texts.index(who)
        by[i] = last_by
        if rr is not None:
            if rr is not last_rr:
                last_rr, last_raw = rr, raws.index(int(rr))
            raw[i] = last_raw
        if when is not last_when:
            last_when, last_at = when, times.index(epoch_micro(when))
        at[i] = last_at
    return Columns(
        end=np.array(end, dtype=np.int64),
        version=np.array(version, dtype=np.int64),
        value=np.array(value, dtype=np.int64),
        value_null=np.array(value_null, dtype=bool),
        capture=np.array(capture, dtype=np.int64),
        capture_null=np.array(capture_null, dtype=bool),
        quality=np.array(quality, dtype=np.uint8),
        flags=np.array(flags, dtype=np.int64),
        status=np.array(status, dtype=np.int64),
        status_null=np.array(status_null, dtype=bool),
        method=np.array(method, dtype=np.uint16),
        rules=np.array(rules, dtype=np.uint16),
        inputs=np.array(inputs, dtype=np.uint16),
        created_by=np.array(by, dtype=np.uint16),
        raw_read=np.array(raw, dtype=np.uint16),
        created_at=np.array(at, dtype=np.uint16),
        texts=texts.values,
        raw_reads=raws.values,
        times=times.values,
    )


def _checked(count: int) -> int:
    if not -_INT64 <= count < _INT64:
        raise ValueError(f"{count} (10**-{SCALE} kWh) is beyond what the store keeps")
    return count


ARRAY_FIELDS = tuple(
    name for name in Columns.__dataclass_fields__ if name not in ("texts", "raw_reads", "times")
)


def merged(first: Columns, second: Columns) -> Columns:
    """The versions of both, ordered by interval end then version; the same version of an
    interval in both raises ``ValueError``."""
    if first.end.size == 0 and _ordered(second.end, second.version):
        return second  # nothing to merge with, and already in order
    texts = _Table(1, first.texts)
    raws = _Table(1, first.raw_reads)
    times = _Table(0, first.times)
    text_map = np.array([0, *(texts.index(t) for t in second.texts)], dtype=np.uint16)
    raw_map = np.array([0, *(raws.index(r) for r in second.raw_reads)], dtype=np.uint16)
    time_map = np.array([times.index(t) for t in second.times] or [0], dtype=np.uint16)
    parts: dict[str, Any] = {}
    for name in ARRAY_FIELDS:
        other = getattr(second, name)
        if name in ("method", "rules", "inputs", "created_by"):
            other = text_map[other]
        elif name == "raw_read":
            other = raw_map[other]
        elif name == "created_at":
            other = time_map[other]
        parts[name] = np.concatenate([getattr(first, name), other])
    order = np.lexsort((parts["version"], parts["end"]))
    for name in ARRAY_FIELDS:
        parts[name] = parts[name][order]
    end, version = parts["end"], parts["version"]
    twice = (end[1:] == end[:-1]) & (version[1:] == version[:-1])
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(end[i]))
        raise ValueError(f"interval {at.isoformat()} version {int(version[i])} given twice")
    return Columns(**parts, texts=texts.values, raw_reads=raws.values, times=times.values)


def _ordered(end: npt.NDArray[np.int64], version: npt.NDArray[np.int64]) -> bool:
    """Whether the (end, version) pairs strictly increase, so none is there twice."""
    later, same = end[1:] > end[:-1], end[1:] == end[:-1]
    return bool(np.all(later | (same & (version[1:] > version[:-1]))))


def pack(day: date, versions: Sequence[Sequence[Any]]) -> bytes:
    """Pack the versions of one meter channel's intervals ending in ``day`` (UTC), given as
    ``columns_of`` takes them, each (end, version) at most once."""
    empty = columns_of([])
    return pack_columns(day, merged(empty, columns_of(versions)))


def pack_columns(day: date, cols: Columns) -> bytes:
    """Pack versions ordered by interval end then version, all ending in ``day`` (UTC)."""
    n = len(cols)
    start = day_start(day)
    ends = cols.end
    if n and (ends.min() <= start or ends.max() > start + 86400):
        raise ValueError(f"an interval given does not end in {day.isoformat()} (UTC)")
    offsets = np.diff(ends, prepend=start)
    # a later version of the same interval: its value as the difference from the one before
    same = np.zeros(n, dtype=bool)
    same[1:] = offsets[1:] == 0
    value = np.where(cols.value_null, 0, cols.value)
    residual = value.copy()
    residual[same] -= value[np.flatnonzero(same) - 1]
    # a capture: its difference from the previous capture plus this interval's value
    has = np.flatnonzero(~cols.capture_null)
    capture_residual = np.zeros(n, dtype=np.int64)
    if len(has):
        predicted = np.zeros(len(has), dtype=np.int64)
        predicted[1:] = cols.capture[has[:-1]]
        predicted += value[has]
        capture_residual[has] = cols.capture[has] - predicted
    scale = _common_scale(residual, capture_residual)
    entries = np.zeros(n, dtype=_ENTRY)
    entries["offset"] = offsets
    entries["version"] = cols.version
    entries["value"] = residual // 10**scale
    entries["capture"] = capture_residual // 10**scale
    entries["status"] = np.where(cols.status_null, 0, cols.status)
    entries["flags"] = cols.flags
    entries["quality"] = cols.quality
    entries["nulls"] = (
        cols.value_null * _VALUE_NULL
        + cols.capture_null * _CAPTURE_NULL
        + cols.status_null * _STATUS_NULL
    )
    entries["method"] = cols.method
    entries["rules"] = cols.rules
    entries["inputs"] = cols.inputs
    entries["created_by"] = cols.created_by
    entries["raw_read"] = cols.raw_read
    entries["created_at"] = cols.created_at
    head = json.dumps(
        [n, scale, cols.texts, cols.raw_reads, cols.times], separators=(",", ":")
    ).encode()
    planes = entries.view(np.uint8).reshape(n, _ENTRY.itemsize).T.tobytes()
    body = len(head).to_bytes(4, "little") + head + planes
    return bytes([FORMAT]) + zlib.compress(body, 6)


def _common_scale(*arrays: npt.NDArray[np.int64]) -> int:
    """The largest k <= SCALE such that 10**k divides every number of the arrays."""
    joined = np.concatenate(arrays)
    joined = joined[joined != 0]
    for k in range(SCALE, 0, -1):
        if not np.any(joined % 10**k):
            return k
    return 0


def _opened(data: bytes) -> tuple[Any, int, list[str], list[int], list[int]]:
    """A block's entries, one row of bytes each (a view of the planes, not yet in entry
    order in memory), its power of ten and its tables; not a block: ``ValueError``."""
    if not data or data[0] != FORMAT:
        raise ValueError("not an interval block of a known format")
    body = zlib.decompress(data[1:])
    size = int.from_bytes(body[:4], "little")
    n, scale, texts, raws, times = json.loads(body[4 : 4 + size])
    planes = np.frombuffer(body, dtype=np.uint8, offset=4 + size)
    if len(planes) != n * _ENTRY.itemsize:
        raise ValueError("an interval block's length does not match its count")
    return planes.reshape(_ENTRY.itemsize, n).T, scale, texts, raws, times


def _undone(value: npt.NDArray[np.int64], offsets: Any) -> npt.NDArray[np.int64]:
    """Values undone from their differences between versions of one interval (an entry
    whose offset is 0 follows another version of its interval), run by run."""
    same = np.zeros(len(value), dtype=bool)
    same[1:] = offsets[1:] == 0
    if not same.any():
        return value
    run_start = np.maximum.accumulate(np.where(~same, np.arange(len(value)), 0))
    totals = np.cumsum(value)
    return totals - np.where(run_start > 0, totals[run_start - 1], 0)


def unpack(data: bytes, day: date) -> Columns:
    """The versions packed in ``data`` (a block of ``day``) as arrays; a block that is not
    one raises ``ValueError``."""
    rows, scale, texts, raws, times = _opened(data)
    entries = np.ascontiguousarray(rows).view(_ENTRY).reshape(-1)
    return _Unpacked(entries, day_start(day), 10**scale, list(texts), list(raws), list(times))


class _Unpacked(Columns):
    """The columns of a packed block, each decoded when first asked for: a reader that
    needs a few of them (a boundary capture, the current values) pays for those only."""

    def __init__(  # no dataclass __init__: the arrays come from ``__getattr__``
        self,
        entries: Any,
        start: int,
        factor: int,
        texts: list[str],
        raw_reads: list[int],
        times: list[int],
    ) -> None:
        self._entries = entries
        self._start = start
        self._factor = factor
        self.texts = texts
        self.raw_reads = raw_reads
        self.times = times

    def __len__(self) -> int:
        return len(self._entries)

    def __getattr__(self, name: str) -> Any:
        decode = _DECODERS.get(name)
        if decode is None:
            raise AttributeError(name)
        value = decode(self)
        setattr(self, name, value)
        return value


def _offsets(c: _Unpacked) -> Any:
    return c._entries["offset"].astype(np.int64)


def _values(c: _Unpacked) -> Any:
    """Values undone from their differences between versions of one interval, run by run."""
    value = _undone(c._entries["value"].astype(np.int64) * c._factor, c._entries["offset"])
    return np.where(c.value_null, 0, value)


def _captures(c: _Unpacked) -> Any:
    capture = np.zeros(len(c._entries), dtype=np.int64)
    has = np.flatnonzero(~c.capture_null)
    if len(has):
        steps = c._entries["capture"][has].astype(np.int64) * c._factor
        steps += c.value[has]
        capture[has] = np.cumsum(steps)
    return capture


def _flag(bit: int) -> Any:
    return lambda c: (c._entries["nulls"] & bit).astype(bool)


def _field(name: str, kind: Any) -> Any:
    return lambda c: c._entries[name].astype(kind)


_DECODERS: dict[str, Any] = {
    "end": lambda c: c._start + np.cumsum(_offsets(c)),
    "version": _field("version", np.int64),
    "value": _values,
    "value_null": _flag(_VALUE_NULL),
    "capture": _captures,
    "capture_null": _flag(_CAPTURE_NULL),
    "quality": _field("quality", np.uint8),
    "flags": _field("flags", np.int64),
    "status": _field("status", np.int64),
    "status_null": _flag(_STATUS_NULL),
    **{name: _field(name, np.uint16) for name in
       ("method", "rules", "inputs", "created_by", "raw_read", "created_at")},
}  # fmt: skip


def versions_of(columns: Columns) -> list[tuple[Any, ...]]:
    """The block's versions as ``pack`` takes them (quantities as integer counts)."""
    texts: list[str | None] = [None, *columns.texts]
    raws: list[int | None] = [None, *columns.raw_reads]
    base = datetime(1970, 1, 1, tzinfo=UTC)
    out = []
    for i in range(len(columns)):
        out.append(
            (
                base + timedelta(seconds=int(columns.end[i])),
                int(columns.version[i]),
                None if columns.value_null[i] else int(columns.value[i]),
                None if columns.capture_null[i] else int(columns.capture[i]),
                _QUALITIES[int(columns.quality[i])],
                int(columns.flags[i]),
                None if columns.status_null[i] else int(columns.status[i]),
                texts[int(columns.method[i])],
                texts[int(columns.rules[i])],
                texts[int(columns.inputs[i])],
                raws[int(columns.raw_read[i])],
                texts[int(columns.created_by[i])],
                from_epoch_micro(columns.times[int(columns.created_at[i])]),
            )
        )
    return out


def unpack_many(blocks: Sequence[tuple[bytes, date]]) -> tuple[Columns, npt.NDArray[np.int64]]:
    """The versions of many blocks at once, as one set of arrays in the blocks' order (each
    block's in interval end then version order), and for each entry the position of its
    block in ``blocks``: one pass of NumPy over all of them instead of one per block. The
    tables of texts, raw reads and times are the blocks' joined."""
    parts, starts, factors, sizes = [], [], [], []
    texts: list[str] = []
    raws: list[int] = []
    times: list[int] = []
    text_base, raw_base, time_base = [], [], []
    for data, day in blocks:
        rows, scale, block_texts, block_raws, block_times = _opened(data)
        parts.append(rows)
        starts.append(day_start(day))
        factors.append(10**scale)
        sizes.append(len(rows))
        text_base.append(len(texts))
        raw_base.append(len(raws))
        time_base.append(len(times))
        texts.extend(block_texts)
        raws.extend(block_raws)
        times.extend(block_times)
    if not parts:
        return columns_of([]), np.zeros(0, dtype=np.int64)
    entries = np.ascontiguousarray(np.concatenate(parts)).view(_ENTRY).reshape(-1)
    count = np.array(sizes, dtype=np.int64)
    block = np.repeat(np.arange(len(sizes), dtype=np.int64), count)
    first = np.cumsum(count) - count  # each block's first entry
    offsets = entries["offset"].astype(np.int64)
    walked = np.cumsum(offsets)
    before = (walked - offsets)[first[count > 0]]
    block_before = np.zeros(len(sizes), dtype=np.int64)
    block_before[count > 0] = before
    end = np.array(starts, dtype=np.int64)[block] + walked - block_before[block]
    factor = np.array(factors, dtype=np.int64)[block]
    nulls = entries["nulls"]
    value_null = (nulls & _VALUE_NULL).astype(bool)
    capture_null = (nulls & _CAPTURE_NULL).astype(bool)
    # a block's first entry ends after the day's start (its offset is never 0), so the runs
    # of one interval's versions never cross blocks
    value = _undone(entries["value"].astype(np.int64) * factor, offsets)
    value = np.where(value_null, 0, value)
    capture = np.zeros(len(value), dtype=np.int64)
    has = np.flatnonzero(~capture_null)
    if len(has):
        steps = entries["capture"][has].astype(np.int64) * factor[has] + value[has]
        summed = np.cumsum(steps)
        owner = block[has]
        starts_here = np.ones(len(has), dtype=bool)
        starts_here[1:] = owner[1:] != owner[:-1]
        base = np.zeros(len(sizes), dtype=np.int64)
        base[owner[starts_here]] = (summed - steps)[starts_here]
        capture[has] = summed - base[owner]

    def indexed(name: str, bases: list[int], zero_is_none: bool) -> npt.NDArray[np.int64]:
        local = entries[name].astype(np.int64)
        shifted = local + np.array(bases, dtype=np.int64)[block]
        return np.where(local == 0, 0, shifted) if zero_is_none else shifted

    cols = Columns(
        end=end,
        version=entries["version"].astype(np.int64),
        value=value,
        value_null=value_null,
        capture=capture,
        capture_null=capture_null,
        quality=entries["quality"].copy(),
        flags=entries["flags"].astype(np.int64),
        status=entries["status"].astype(np.int64),
        status_null=(nulls & _STATUS_NULL).astype(bool),
        method=indexed("method", text_base, True),
        rules=indexed("rules", text_base, True),
        inputs=indexed("inputs", text_base, True),
        created_by=indexed("created_by", text_base, True),
        raw_read=indexed("raw_read", raw_base, True),
        created_at=indexed("created_at", time_base, False),
        texts=texts,
        raw_reads=raws,
        times=times,
    )
    return cols, block
