"""Reading profile generic buffers (class 7): load profile, billing profile, event logs.

The capture objects and capture period (in **seconds**, as COSEM defines it; dlms-cosem 25.1.0
treats it as minutes) are read from the meter; ``headend.protocol.definitions`` parses them and,
in a collection, compares them with the device profile. The buffer is read by time range; where
the model or the meter refuses range access it is read by entry numbers instead, located from
the newest entry; where it refuses both, the whole buffer is read (within the same transfer
bound) and the period's rows kept. A refusal the device profile did not announce is learned by
the session.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.readings import (
    BillingProfile,
    BillingRow,
    Column,
    Event,
    LoadProfile,
    MeterTime,
    ProfileRow,
)
from headend.protocol import axdr
from headend.protocol.cosem_time import decode_datetime
from headend.protocol.definitions import (
    BILLING_PROFILE,
    EVENT_LOG,
    LOAD_PROFILE,
    check_definition,
    parse_capture_objects,
    parse_capture_period,
)
from headend.protocol.errors import (
    ConfigurationError,
    DataAccessError,
    DecodeError,
    translating,
)
from headend.protocol.plan import (
    CLOCK_CLASS,
    DATA_CLASS,
    PROFILE_GENERIC_CLASS,
    ProfileRead,
    ReadSpec,
)
from headend.protocol.registers import (
    DefinitionCache,
    _scaler_attribute,
    check_scaler,
    parse_scaler_unit,
    scaled,
)
from headend.protocol.session import ENTRY_ACCESS_REFUSED, RANGE_ACCESS_REFUSED, MeterSession
from headend.protocol.units import unit_symbol
from headend.protocol.xdlms import UINT32_MAX, AttributeRef, entry_access, range_access

Row = tuple[axdr.Value, ...]


async def _columns_with_scalers(
    session: MeterSession,
    spec: ReadSpec,
    profile: ProfileRead,
    cache: DefinitionCache,
    role: str = LOAD_PROFILE,
    *,
    checked: bool = True,
) -> tuple[tuple[Column, ...], int]:
    """The meter's capture objects, each numeric column with its scaler and unit; its period.

    Read once per meter, model and firmware, then taken from the cache. ``checked``: compared
    with the device profile every time (a difference is a ``ConfigurationError``, and what
    differs is not kept, so the next session reads the meter again)."""
    obis = profile.obis
    target = session.target
    known = cache.profiles(target.meter_id, spec.model, session.firmware)
    if obis in known:
        if checked:
            check_definition(role, spec.model, profile, *known[obis])
        return known[obis]
    refs = [
        AttributeRef(PROFILE_GENERIC_CLASS, obis, 3),
        AttributeRef(PROFILE_GENERIC_CLASS, obis, 4),
    ]
    results = await session.get_many(refs, 2 if spec.supports_get_with_list else 1)
    if results[0].data is None:
        await session.get(refs[0])  # raises the meter's data-access error
    assert results[0].data is not None
    with translating(f"capture objects of {obis}"):
        columns = parse_capture_objects(results[0].data)
        period = profile.capture_period_s
        if results[1].data is not None:
            sent = parse_capture_period(results[1].data)
            if sent is not None:
                period = sent  # seconds, as COSEM defines capture_period
    if checked:
        check_definition(role, spec.model, profile, columns, period)
    table = cache.table(target.meter_id, spec.model, session.firmware)
    missing = [
        c for c in columns if c.class_id in (3, 4, 5) and c.attribute == 2 and c.obis not in table
    ]
    if missing:
        scaler_refs = [
            AttributeRef(c.class_id, c.obis, _scaler_attribute(c.class_id)) for c in missing
        ]
        scalers = await session.get_many(
            scaler_refs, spec.list_batch if spec.supports_get_with_list else 1
        )
        with translating(f"scalers of {obis}"):
            for column, result in zip(missing, scalers, strict=True):
                if result.data is not None:
                    table[column.obis] = parse_scaler_unit(result.data)
    out = []
    for c in columns:
        scaler, unit = table.get(c.obis, (0, 255)) if c.attribute == 2 else (0, 255)
        scaler = check_scaler(scaler, c.obis)  # once per column, not once per value
        out.append(Column(c.class_id, c.obis, c.attribute, c.data_index, unit_symbol(unit), scaler))
    known[obis] = (tuple(out), period)
    return known[obis]


def _rows(data: bytes) -> list[Row]:
    with translating("profile buffer"):
        return parse_rows(data)


def parse_rows(data: bytes) -> list[Row]:
    """The entries of a profile buffer (joined from blocks or not), each a structure."""
    value = axdr.decode(data)
    if not isinstance(value, list):
        raise DecodeError("a profile buffer is not an array")
    rows: list[Row] = []
    for entry in value:
        if not isinstance(entry, tuple):
            raise DecodeError("a profile buffer entry is not a structure")
        rows.append(entry)
    return rows


def _times(
    rows: list[Row], columns: tuple[Column, ...], spec: ReadSpec, period_s: int
) -> list[MeterTime | None]:
    with translating("profile buffer times"):
        return row_times(rows, columns, spec, period_s)


def row_times(
    rows: list[Row], columns: tuple[Column, ...], spec: ReadSpec, period_s: int
) -> list[MeterTime | None]:
    """Each row's time; a null time (compressed buffer) follows the previous by the period."""
    index = next(
        (i for i, c in enumerate(columns) if c.class_id == CLOCK_CLASS and c.attribute == 2), None
    )
    if index is None:
        raise DecodeError("the profile captures no clock")
    times: list[MeterTime | None] = []
    previous: MeterTime | None = None
    for row in rows:
        if len(row) != len(columns):
            raise DecodeError(f"a buffer entry has {len(row)} values for {len(columns)} columns")
        raw = row[index]
        if isinstance(raw, bytes):
            previous = decode_datetime(raw, spec.time)
        elif raw is None and previous is not None and period_s > 0:
            try:
                at = previous.at + timedelta(seconds=period_s)
            except OverflowError as exc:
                raise DecodeError(f"a null time after {previous.at} is past any date") from exc
            previous = MeterTime(
                at, previous.deviation_min, previous.status, previous.offset_assumed
            )
        else:
            raise DecodeError("a buffer entry has no time and none can be inferred")
        times.append(previous)
    return times


def _number(value: axdr.Value, column: Column) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"column {column.obis} holds {value!r}, not a number")
    if isinstance(value, float):  # NaN and infinities are refused there
        return scaled(value, column.scaler, column.obis)
    return Decimal(value).scaleb(column.scaler)  # the column's scaler was checked when read


def selective_access(session: MeterSession, spec: ReadSpec) -> tuple[bool, bool]:
    """Whether range and entry access are worth asking for: the model claims them and no
    session found the meter refusing them."""
    return (
        spec.supports_range_access and not session.knows(RANGE_ACCESS_REFUSED),
        spec.supports_entry_access and not session.knows(ENTRY_ACCESS_REFUSED),
    )


async def _buffer(
    session: MeterSession,
    spec: ReadSpec,
    profile: ProfileRead,
    columns: tuple[Column, ...],
    period_s: int,
    start: datetime,
    end: datetime,
    east_minutes: int | None,
) -> tuple[list[Row], list[MeterTime | None], str]:
    """The rows of [start, end]: by range, else by entries, else the whole buffer (kept to
    the period). A selector the meter refuses though the buffer reads otherwise is learned."""
    ref = AttributeRef(PROFILE_GENERIC_CLASS, profile.obis, 2)
    clock = next(c for c in columns if c.class_id == CLOCK_CLASS)
    by_range, by_entry = selective_access(session, spec)
    refused: list[str] = []
    if by_range:
        restricting = AttributeRef(clock.class_id, clock.obis, clock.attribute)
        access = range_access(restricting, start, end, spec.time, east_minutes=east_minutes)
        try:
            rows = _rows(await session.get(ref, access))
            return rows, _times(rows, columns, spec, period_s), "range"
        except DataAccessError:
            refused.append(RANGE_ACCESS_REFUSED)
    if by_entry:
        try:
            found = await _by_entries(session, spec, profile, columns, period_s, start, end)
        except DataAccessError:
            refused.append(ENTRY_ACCESS_REFUSED)
        else:
            session.learned.update(refused)  # the buffer is there: the range was refused
            return found
    rows = _rows(await session.get(ref))  # a meter lacking the profile fails here
    session.learned.update(refused)
    times = _times(rows, columns, spec, period_s)
    kept = [
        (r, t) for r, t in zip(rows, times, strict=True) if t is not None and start <= t.at <= end
    ]
    return [r for r, _ in kept], [t for _, t in kept], "all"


async def _by_entries(
    session: MeterSession,
    spec: ReadSpec,
    profile: ProfileRead,
    columns: tuple[Column, ...],
    period_s: int,
    start: datetime,
    end: datetime,
) -> tuple[list[Row], list[MeterTime | None], str]:
    ref = AttributeRef(PROFILE_GENERIC_CLASS, profile.obis, 2)
    in_use_data = await session.get(AttributeRef(PROFILE_GENERIC_CLASS, profile.obis, 7))
    with translating(f"entries_in_use of {profile.obis}"):
        in_use = axdr.decode(in_use_data)
    if not isinstance(in_use, int) or in_use <= 0:
        return [], [], "entry"
    if in_use > UINT32_MAX:
        raise DecodeError(f"profile {profile.obis}: entries_in_use {in_use} exceeds uint32")
    newest_rows = _rows(await session.get(ref, entry_access(in_use, in_use)))
    newest_times = _times(newest_rows, columns, spec, period_s)
    if not newest_rows or newest_times[0] is None:
        return [], [], "entry"
    newest = newest_times[0].at
    step = max(period_s, 1)
    # entries are in capture order: locate the first wanted one from the newest; gaps
    # (outages) only make the guess too late, so widen backwards until it covers ``start``
    back = math.ceil((newest - start).total_seconds() / step)
    first = max(1, in_use - back)
    last = max(first, min(in_use, in_use - math.floor((newest - end).total_seconds() / step)))
    for _ in range(8):
        rows = _rows(await session.get(ref, entry_access(first, last)))
        times = _times(rows, columns, spec, period_s)
        if first == 1 or not times or (times[0] is not None and times[0].at <= start):
            break
        first = max(1, first - max(back, 1))
    kept = [
        (r, t) for r, t in zip(rows, times, strict=True) if t is not None and start <= t.at <= end
    ]
    return [r for r, _ in kept], [t for _, t in kept], "entry"


def _status_index(columns: tuple[Column, ...]) -> int | None:
    for i, c in enumerate(columns):
        if c.class_id == DATA_CLASS and c.obis.c == 96 and c.obis.d == 10:
            return i
    return None


async def read_load_profile(
    session: MeterSession,
    spec: ReadSpec,
    cache: DefinitionCache,
    start: datetime,
    end: datetime,
    *,
    east_minutes: int | None = None,
    profile: ProfileRead | None = None,
    checked: bool = True,
) -> LoadProfile:
    """Rows whose interval ends in [start, end], with status bits and values by OBIS; with the
    meter's own capture objects and period when not ``checked`` against the device profile."""
    profile = profile or spec.load_profile
    if profile is None:
        raise ConfigurationError("the device profile has no load profile")
    columns, period_s = await _columns_with_scalers(
        session, spec, profile, cache, LOAD_PROFILE, checked=checked
    )
    rows, times, access = await _buffer(
        session, spec, profile, columns, period_s, start, end, east_minutes
    )
    status_at = _status_index(columns)
    out: list[ProfileRow] = []
    for row, stamp in zip(rows, times, strict=True):
        assert stamp is not None
        status = row[status_at] if status_at is not None else None
        values = {
            c.obis: v
            for c, raw in zip(columns, row, strict=True)
            if c.class_id in (3, 4, 5) and c.attribute == 2 and (v := _number(raw, c)) is not None
        }
        out.append(
            ProfileRow(
                interval_end=stamp.at,
                status=status if isinstance(status, int) else None,
                values=values,
                deviation_min=stamp.deviation_min,
                clock_status=stamp.status,
            )
        )
    return LoadProfile(profile.obis, period_s, columns, tuple(out), access)


async def read_billing_profile(
    session: MeterSession,
    spec: ReadSpec,
    cache: DefinitionCache,
    start: datetime,
    end: datetime,
    *,
    east_minutes: int | None = None,
    checked: bool = True,
) -> BillingProfile:
    profile = spec.billing_profile
    if profile is None:
        raise ConfigurationError("the device profile has no billing profile")
    columns, period_s = await _columns_with_scalers(
        session, spec, profile, cache, BILLING_PROFILE, checked=checked
    )
    rows, times, _ = await _buffer(
        session, spec, profile, columns, period_s, start, end, east_minutes
    )
    out = []
    for row, stamp in zip(rows, times, strict=True):
        assert stamp is not None
        values: dict[Obis, Decimal] = {}
        captured: dict[Obis, datetime] = {}
        for c, raw in zip(columns, row, strict=True):
            if c.class_id == CLOCK_CLASS:
                continue
            if isinstance(raw, bytes) and len(raw) == 12:
                captured[c.obis] = decode_datetime(raw, spec.time).at
            elif (number := _number(raw, c)) is not None:
                values[c.obis] = number
        out.append(BillingRow(stamp.at, values, captured))
    return BillingProfile(profile.obis, columns, tuple(out))


async def read_event_log(
    session: MeterSession,
    spec: ReadSpec,
    log: ProfileRead,
    cache: DefinitionCache,
    start: datetime,
    end: datetime,
    *,
    east_minutes: int | None = None,
) -> tuple[Event, ...]:
    columns, period_s = await _columns_with_scalers(session, spec, log, cache, EVENT_LOG)
    rows, times, _ = await _buffer(session, spec, log, columns, period_s, start, end, east_minutes)
    code_at = next((i for i, c in enumerate(columns) if c.class_id == DATA_CLASS), None)
    events = []
    for row, stamp in zip(rows, times, strict=True):
        assert stamp is not None
        code = row[code_at] if code_at is not None else None
        extra: dict[Obis, str | int | Decimal | None] = {
            c.obis: (v if isinstance(v, str | int | Decimal) or v is None else repr(v))
            for i, (c, v) in enumerate(zip(columns, row, strict=True))
            if i != code_at and c.class_id != CLOCK_CLASS
        }
        events.append(Event(stamp.at, code if isinstance(code, int) else -1, log.obis, extra))
    return tuple(events)
