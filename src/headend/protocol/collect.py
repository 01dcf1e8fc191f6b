"""One collection from one meter: the reads a job asks for, in one session.

What is read bounds the session: :func:`session_budget` gives the time it may take (a base
plus an allowance per object and per day of profile; the session's own ceiling,
``Timeouts.session``, caps it) and :func:`profile_transfer_bytes` the bytes one block transfer
of a profile may bring (rows the period holds times a row's size, with a margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from headend.domain.obis import Obis
from headend.domain.readings import Event, MeterRead, Unavailable
from headend.protocol.buffers import (
    _columns_with_scalers,
    read_billing_profile,
    read_event_log,
    read_load_profile,
    selective_access,
)
from headend.protocol.definitions import LOAD_PROFILE, as_defined
from headend.protocol.errors import DataAccessError
from headend.protocol.plan import DATA_CLASS, ObjectRead, ProfileRead, ReadSpec
from headend.protocol.registers import DefinitionCache, read_objects, synchronise_clock
from headend.protocol.session import MeterSession


@dataclass(frozen=True)
class Collection:
    """What to read in this session."""

    start: datetime | None = None  # load profile (and billing, events) from ...
    end: datetime | None = None  # ... to
    clock: bool = True
    registers: bool = True
    load_profile: bool = True
    billing: bool = False
    events: bool = False
    clock_sync_threshold_s: float | None = None  # None: never set the clock
    # the probe: read each profile with the capture objects and period the meter has, not
    # checked against the device profile (a collection fails on a difference: configuration)
    as_the_meter_defines: bool = False


@dataclass(frozen=True)
class Allowance:
    """How much time and how many bytes a read may cost, per what it reads."""

    base_s: float = 60.0  # connect, link, association, clock and release
    per_object_s: float = 5.0  # each value object (register, data)
    per_profile_day_s: float = 15.0  # each day of each profile read
    transfer_floor: int = 256 * 1024  # the least one block transfer is allowed
    bytes_per_object: int = 512  # a value, its scaler and unit, with their tags
    bytes_per_column: int = 24  # one value of a profile row: a date-time is 14 with tags
    columns_unknown: int = 16  # columns assumed while the capture objects are not known
    period_unknown_s: int = 60  # capture period assumed while it is not known
    margin: int = 4  # rows a meter may legitimately add (entry access, a period's ends)


DEFAULT_ALLOWANCE = Allowance()


def _profile_days(what: Collection) -> float:
    if what.start is None or what.end is None:
        return 0.0
    return max(0.0, (what.end - what.start).total_seconds() / 86400)


def session_budget(
    spec: ReadSpec, what: Collection, allowance: Allowance = DEFAULT_ALLOWANCE
) -> float:
    """Seconds a session reading ``what`` may take."""
    objects = (len(spec.registers) + len(spec.extra_objects) if what.registers else 0) + 1
    profiles = 0
    if what.start is not None and what.end is not None:
        profiles += bool(what.load_profile and spec.load_profile is not None)
        profiles += bool(what.billing and spec.billing_profile is not None)
        profiles += len(spec.event_logs) if what.events else 0
    return (
        allowance.base_s
        + objects * allowance.per_object_s
        + profiles * (1 + _profile_days(what)) * allowance.per_profile_day_s
    )


def profile_transfer_bytes(
    profile: ProfileRead,
    spec: ReadSpec,
    start: datetime,
    end: datetime,
    allowance: Allowance = DEFAULT_ALLOWANCE,
    *,
    selective: tuple[bool, bool] | None = None,
) -> int | None:
    """Bytes one block transfer of ``profile`` from ``start`` to ``end`` may bring; None when
    the meter can only send its whole buffer (no selective access, by the model's settings or
    ``selective``: range and entry access as the session knows them), which only the ceiling
    bounds."""
    by_range, by_entry = selective or (spec.supports_range_access, spec.supports_entry_access)
    if not (by_range or by_entry):
        return None
    period = profile.capture_period_s or allowance.period_unknown_s
    rows = max(0.0, (end - start).total_seconds()) / period + 2
    columns = len(profile.capture_objects) or allowance.columns_unknown
    row_bytes = 4 + columns * allowance.bytes_per_column
    return allowance.transfer_floor + int(rows * row_bytes * allowance.margin)


async def collect(
    session: MeterSession,
    spec: ReadSpec,
    what: Collection,
    cache: DefinitionCache,
) -> MeterRead:
    """Serial number, firmware identifier, clock and registers in as few requests as the meter
    allows, then the profiles for the period; objects the meter lacks are reported, not fatal.
    A meter reporting another firmware than the target's is not read with definitions cached
    for the target's (``registers.read_objects``): its profiles too are read under the firmware
    it reported. A profile whose capture objects or capture period on the meter differ from
    the device profile fails the read (``ConfigurationError``), unless
    ``what.as_the_meter_defines``. The session's budget
    is narrowed to what this read needs, and each block transfer to what it asked."""
    session.limit_budget(session_budget(spec, what))
    objects: list[ObjectRead] = list(spec.registers) if what.registers else []
    extra: list[ObjectRead] = []
    if what.registers:  # the registry's extra objects, where the profile does not read them
        named = {o.obis for o in objects} | {spec.clock, spec.serial_number, spec.firmware}
        extra = [o for o in spec.extra_objects if o.obis not in named]
        objects += extra
    if spec.firmware is not None:  # in the same request: it keys the cached scalers
        objects.insert(0, ObjectRead(spec.firmware, DATA_CLASS))
    if spec.serial_number is not None:
        objects.insert(0, ObjectRead(spec.serial_number, DATA_CLASS))
    want_clock = what.clock or what.clock_sync_threshold_s is not None
    expected = DEFAULT_ALLOWANCE.transfer_floor + len(objects) * DEFAULT_ALLOWANCE.bytes_per_object
    with session.expecting(expected):
        got = await read_objects(
            session,
            spec,
            objects,
            cache,
            with_clock=want_clock,
            tolerant=frozenset(o.obis for o in extra),
        )
    unavailable: dict[Obis, Unavailable] = dict(got.unavailable)
    serial: str | None = None
    if spec.serial_number is not None and spec.serial_number in got.data:
        value = got.data.pop(spec.serial_number).value
        serial = None if value is None else str(value)
    clock = got.clock
    sync = None
    if clock is not None and what.clock_sync_threshold_s is not None:
        sync = await synchronise_clock(session, spec, clock, what.clock_sync_threshold_s)
    load = billing = None
    events: tuple[Event, ...] = ()
    if what.start is not None and what.end is not None:
        east = clock.deviation_min if clock is not None else None
        checked = not what.as_the_meter_defines
        if what.load_profile and spec.load_profile is not None:
            profile = spec.load_profile
            try:
                # the meter's definition (cached, checked) bounds the transfer, not the profile's
                columns, period = await _columns_with_scalers(
                    session, spec, profile, cache, LOAD_PROFILE, checked=checked
                )
                defined = as_defined(profile, columns, period)
                asked = profile_transfer_bytes(
                    defined, spec, what.start, what.end, selective=selective_access(session, spec)
                )
                with session.expecting(asked or session.target.max_transfer_bytes):
                    load = await read_load_profile(
                        session,
                        spec,
                        cache,
                        what.start,
                        what.end,
                        east_minutes=east,
                        checked=checked,
                    )
            except DataAccessError as exc:
                unavailable[profile.obis] = Unavailable(profile.obis, exc.category.value, str(exc))
        if what.billing and spec.billing_profile is not None:
            billing = await read_billing_profile(
                session, spec, cache, what.start, what.end, east_minutes=east, checked=checked
            )
        if what.events:
            found: list[Event] = []
            for log in spec.event_logs:
                found.extend(
                    await read_event_log(
                        session, spec, log, cache, what.start, what.end, east_minutes=east
                    )
                )
            events = tuple(found)
    return MeterRead(
        serial_number=serial,
        firmware=got.firmware,
        clock=clock if what.clock else None,
        registers=got.registers,
        data=got.data,
        unavailable=unavailable,
        load_profile=load,
        billing=billing,
        events=events,
        clock_sync=sync,
        learned=tuple(sorted(session.learned)),
    )
