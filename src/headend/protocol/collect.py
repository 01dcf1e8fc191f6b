"""One collection from one meter: the reads a job asks for, in one session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from headend.domain.obis import Obis
from headend.domain.readings import Event, MeterRead, Unavailable
from headend.protocol.buffers import read_billing_profile, read_event_log, read_load_profile
from headend.protocol.errors import DataAccessError
from headend.protocol.plan import DATA_CLASS, ObjectRead, ReadSpec
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


async def collect(
    session: MeterSession,
    spec: ReadSpec,
    what: Collection,
    cache: DefinitionCache,
) -> MeterRead:
    """Serial number, clock and registers in as few requests as the meter allows, then the
    profiles for the period; objects the meter lacks are reported, not fatal."""
    objects: list[ObjectRead] = list(spec.registers) if what.registers else []
    if spec.serial_number is not None:
        objects.insert(0, ObjectRead(spec.serial_number, DATA_CLASS))
    want_clock = what.clock or what.clock_sync_threshold_s is not None
    got = await read_objects(session, spec, objects, cache, with_clock=want_clock)
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
        if what.load_profile and spec.load_profile is not None:
            try:
                load = await read_load_profile(
                    session, spec, cache, what.start, what.end, east_minutes=east
                )
            except DataAccessError as exc:
                obis = spec.load_profile.obis
                unavailable[obis] = Unavailable(obis, exc.category.value, str(exc))
        if what.billing and spec.billing_profile is not None:
            billing = await read_billing_profile(
                session, spec, cache, what.start, what.end, east_minutes=east
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
        clock=clock if what.clock else None,
        registers=got.registers,
        data=got.data,
        unavailable=unavailable,
        load_profile=load,
        billing=billing,
        events=events,
        clock_sync=sync,
    )
