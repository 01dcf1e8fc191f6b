"""Surveying a meter: which objects it has, how they are defined, and how it behaves.

``survey`` reads, over an open session, the association's object list (class 15, attribute
2); where the meter refuses it, it tries the caller's candidate OBIS codes one by one by
their logical name (a class-inconsistent answer tries the candidate's next class). Then, for
the objects the caller wants: each value object's attribute 2 (its type) and scaler_unit, each
profile's capture objects, capture period, entries in use and capacity, the clock, the
disconnect control's mode. With ``try_quirks`` it also tries GET with list, range and entry
access on the load profile and a list holding an item the meter lacks, and measures by how
much the meter's answers run past the PDU it took (``overrun``). ``discover_meter``
opens the session itself and adds what only the session's ends show: the PDU size the meter
announced, the HDLC parameters it took and whether it answered the release.

What is not decided here: what a value means (the caller classifies OBIS codes) and what a
device profile makes of the survey. Parsing is sans-IO (``parse_object_list``,
``parse_clock``); everything a meter sends is decoded inside ``translating``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from headend.domain.obis import Obis, ObisError
from headend.domain.survey import (
    OBJECT_LIST,
    PROBED,
    Behaviour,
    FoundClock,
    FoundObject,
    FoundProfile,
    FoundValue,
    Survey,
)
from headend.protocol import axdr, overrun
from headend.protocol.cosem_time import TimePolicy
from headend.protocol.definitions import parse_capture_objects, parse_capture_period
from headend.protocol.errors import DATA_ACCESS_RESULTS as RESULT_NAMES
from headend.protocol.errors import DataAccessError, DecodeError, translating
from headend.protocol.plan import (
    CLOCK_CLASS,
    DATA_CLASS,
    DEMAND_REGISTER_CLASS,
    EXTENDED_REGISTER_CLASS,
    PROFILE_GENERIC_CLASS,
    REGISTER_CLASS,
)
from headend.protocol.registers import parse_scaler_unit
from headend.protocol.security import InvocationCounterStore
from headend.protocol.session import LIST_UNRELIABLE, MeterSession
from headend.protocol.streams import Traffic
from headend.protocol.target import MeterTarget, build_transport
from headend.protocol.transports import HdlcTransport
from headend.protocol.xdlms import AttributeRef, Result, entry_access, range_access

ASSOCIATION_CLASS = 15
DISCONNECT_CONTROL_CLASS = 70
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
CLASS_INCONSISTENT = 9
MAX_OBJECT_LIST_BYTES = 1024 * 1024  # a meter's object list runs to tens of kilobytes
MAX_PROFILES = 16  # profiles surveyed at most; the rest are noted
# an object no meter has, for the list holding a missing item
NOWHERE = Obis(0, 0, 96, 254, 254, 254)
VALUE_CLASSES = (DATA_CLASS, REGISTER_CLASS, EXTENDED_REGISTER_CLASS, DEMAND_REGISTER_CLASS)

Wanted = Callable[[Obis, int], bool]  # whether the caller cares about this object
Candidates = Sequence[tuple[Obis, tuple[int, ...]]]  # OBIS -> classes to try, in order


def parse_object_list(data: bytes) -> list[FoundObject]:
    """The object list (attribute 2 of an association LN): class, version, logical name and
    the access selectors of attribute 2 of each object."""
    value = axdr.decode(data)
    if not isinstance(value, list):
        raise DecodeError("the object list is not an array")
    found = []
    for item in value:
        if not isinstance(item, tuple) or len(item) < 3:
            raise DecodeError(f"object list entry {item!r} is not a structure of 3 or more")
        class_id, version, name = item[0], item[1], item[2]
        if (
            not isinstance(class_id, int)
            or isinstance(class_id, bool)
            or not isinstance(name, bytes)
        ):
            raise DecodeError(f"object list entry {item!r} has no class id and logical name")
        try:
            obis = Obis.from_bytes(name)
        except ObisError as exc:
            raise DecodeError(f"object list entry {item!r}: {exc}") from exc
        selectors: tuple[int, ...] = ()
        rights = item[3] if len(item) > 3 else None
        if isinstance(rights, tuple) and rights and isinstance(rights[0], list):
            for access in rights[0]:
                if isinstance(access, tuple) and len(access) == 3 and access[0] == 2:
                    chosen = access[2]
                    if isinstance(chosen, list):
                        selectors = tuple(s for s in chosen if isinstance(s, int))
        found.append(
            FoundObject(obis, class_id, version if isinstance(version, int) else None, selectors)
        )
    return found


def parse_clock(
    time_data: bytes, zone_data: bytes | None, obis: Obis, sent: float, received: float
) -> FoundClock:
    """The clock's time (attribute 2) as the meter wrote it, and its time_zone (3)."""
    raw = axdr.decode(time_data)
    if not isinstance(raw, bytes) or len(raw) != 12:
        raise DecodeError(f"the clock time is not a 12-octet date-time: {raw!r}")
    year = (raw[0] << 8) | raw[1]
    second = 0 if raw[7] == 0xFF else raw[7]
    try:
        local = datetime(year, raw[2], raw[3], raw[5], raw[6], second)
    except ValueError as exc:
        raise DecodeError(f"the clock time {raw.hex()} is not a date: {exc}") from exc
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    zone = axdr.decode(zone_data) if zone_data is not None else None
    return FoundClock(
        obis=obis,
        meter_local=local,
        system_utc=datetime.fromtimestamp((sent + received) / 2, UTC),
        deviation=None if deviation == -0x8000 else deviation,
        time_zone_attribute=zone if isinstance(zone, int) and not isinstance(zone, bool) else None,
        status=None if raw[11] == 0xFF else raw[11],
    )


def _failure(result: Result) -> str:
    code = result.error if result.error is not None else 250
    return RESULT_NAMES.get(code, f"result {code}")


async def _object_list(session: MeterSession, association: Obis, out: Survey) -> bool:
    ref = AttributeRef(ASSOCIATION_CLASS, association, 2)
    try:
        with session.expecting(MAX_OBJECT_LIST_BYTES):
            data = await session.get(ref)
    except DataAccessError as exc:
        out.object_list_refusal = str(exc)
        return False
    with translating(f"object list of {association}"):
        for found in parse_object_list(data):
            out.objects.setdefault(found.obis, found)
    return True


async def _probe(session: MeterSession, candidates: Candidates, out: Survey) -> None:
    """Each candidate by a GET of its logical name, trying its classes in turn."""
    pending = [(obis, list(classes)) for obis, classes in candidates if classes]
    while pending:
        refs = [AttributeRef(classes[0], obis, 1) for obis, classes in pending]
        results = await session.get_many(refs)
        retry = []
        for (obis, classes), result in zip(pending, results, strict=True):
            if result.data is not None:
                out.objects.setdefault(obis, FoundObject(obis, classes[0]))
                out.absent.pop(obis, None)
            elif result.error == CLASS_INCONSISTENT and len(classes) > 1:
                retry.append((obis, classes[1:]))
            else:
                out.absent[obis] = f"{_failure(result)} as class {classes[0]}"
        pending = retry


async def _profiles(session: MeterSession, wanted: Wanted, out: Survey) -> None:
    found = [o for o in out.objects.values() if o.class_id == PROFILE_GENERIC_CLASS]
    chosen = [o for o in found if wanted(o.obis, o.class_id)]
    for skipped in chosen[MAX_PROFILES:]:
        out.notes.append(f"profile {skipped.obis} not surveyed: more than {MAX_PROFILES}")
    for obj in chosen[:MAX_PROFILES]:
        refs = [AttributeRef(PROFILE_GENERIC_CLASS, obj.obis, n) for n in (3, 4, 7, 8)]
        results = await session.get_many(refs)
        if results[0].data is None:
            out.notes.append(f"capture objects of {obj.obis}: {_failure(results[0])}")
            continue
        with translating(f"definition of profile {obj.obis}"):
            columns = parse_capture_objects(results[0].data)
            period = parse_capture_period(results[1].data) if results[1].data else None
            in_use, entries = (_count(r.data) if r.data is not None else None for r in results[2:])
        out.profiles[obj.obis] = FoundProfile(obj.obis, columns, period, entries, in_use)
        if out.source == PROBED:  # a listed meter's list is the whole truth
            for column in columns:
                if column.obis not in out.absent:
                    out.objects.setdefault(column.obis, FoundObject(column.obis, column.class_id))


def _count(data: bytes) -> int | None:
    value = axdr.decode(data)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _values(session: MeterSession, wanted: Wanted, out: Survey) -> None:
    chosen = [
        o
        for o in out.objects.values()
        if o.class_id in VALUE_CLASSES and wanted(o.obis, o.class_id)
    ]
    refs: list[AttributeRef] = []
    for obj in chosen:
        refs.append(AttributeRef(obj.class_id, obj.obis, 2))
        if obj.class_id != DATA_CLASS:
            scaler_at = 4 if obj.class_id == DEMAND_REGISTER_CLASS else 3
            refs.append(AttributeRef(obj.class_id, obj.obis, scaler_at))
    results = dict(zip(refs, await session.get_many(refs), strict=True))
    for obj in chosen:
        value = results[AttributeRef(obj.class_id, obj.obis, 2)]
        tag = value.data[0] if value.data else None
        problem = None if value.data is not None else f"value: {_failure(value)}"
        scaler = unit = None
        if obj.class_id != DATA_CLASS:
            scaler_at = 4 if obj.class_id == DEMAND_REGISTER_CLASS else 3
            answer = results[AttributeRef(obj.class_id, obj.obis, scaler_at)]
            if answer.data is None:
                problem = f"scaler_unit: {_failure(answer)}"
            else:
                with translating(f"scaler_unit of {obj.obis}"):
                    scaler, unit = parse_scaler_unit(answer.data)
        out.values[obj.obis] = FoundValue(obj.obis, obj.class_id, tag, scaler, unit, problem)


async def _clock(session: MeterSession, out: Survey) -> None:
    clock = next((o for o in out.objects.values() if o.class_id == CLOCK_CLASS), None)
    if clock is None:
        out.notes.append("no clock object (class 8) was found")
        return
    sent = time.time()
    try:
        data = await session.get(AttributeRef(CLOCK_CLASS, clock.obis, 2))
    except DataAccessError as exc:
        out.notes.append(f"clock: {exc}")
        return
    received = time.time()
    zone: bytes | None = None
    try:
        zone = await session.get(AttributeRef(CLOCK_CLASS, clock.obis, 3))
    except DataAccessError as exc:
        out.notes.append(f"clock time_zone: {exc}")
    with translating(f"clock {clock.obis}"):
        out.clock = parse_clock(data, zone, clock.obis, sent, received)


async def _disconnect_control(session: MeterSession, out: Survey) -> None:
    for obj in out.objects.values():
        if obj.class_id == DISCONNECT_CONTROL_CLASS:
            try:
                data = await session.get(AttributeRef(DISCONNECT_CONTROL_CLASS, obj.obis, 4))
            except DataAccessError as exc:
                out.notes.append(f"control mode of {obj.obis}: {exc}")
                return
            with translating(f"control mode of {obj.obis}"):
                out.control_mode = _count(data)
            return


async def _lists(session: MeterSession, association: Obis, clock: Obis, out: Survey) -> None:
    """GET with list of three attributes every meter has, then with one it lacks."""
    behaviour = out.behaviour
    if not session.association.supports_with_list:
        out.behaviour = replace(behaviour, list_offered=False, get_with_list=False)
        return
    good = [
        AttributeRef(CLOCK_CLASS, clock, 1),
        AttributeRef(CLOCK_CLASS, clock, 2),
        AttributeRef(ASSOCIATION_CLASS, association, 1),
    ]
    before = LIST_UNRELIABLE in session.learned
    results = await session.get_many(good, batch=len(good))
    works = not before and LIST_UNRELIABLE not in session.learned
    works = works and all(r.data is not None for r in results)
    whole: bool | None = None
    if works:
        await session.get_many([good[0], AttributeRef(DATA_CLASS, NOWHERE, 2), good[2]], batch=3)
        whole = LIST_UNRELIABLE not in session.learned
    out.behaviour = replace(
        behaviour, list_offered=True, get_with_list=works, list_with_a_missing_item=whole
    )


async def _selective_access(session: MeterSession, out: Survey) -> None:
    """Range, then entry access, on the load profile (1.0.99.1.0.255, else the first
    periodic profile with a clock column)."""
    periodic = [p for p in out.profiles.values() if p.capture_period_s]
    periodic.sort(key=lambda p: (p.obis != Obis(1, 0, 99, 1, 0, 255), str(p.obis)))
    profile = next(
        (p for p in periodic if any(c.class_id == CLOCK_CLASS for c in p.capture_objects)), None
    )
    if profile is None:
        out.notes.append("no periodic profile with a clock column: selective access not tried")
        return
    clock = next(c for c in profile.capture_objects if c.class_id == CLOCK_CLASS)
    ref = AttributeRef(PROFILE_GENERIC_CLASS, profile.obis, 2)
    now = out.clock.system_utc if out.clock is not None else datetime.now(UTC)
    step = timedelta(seconds=profile.capture_period_s or 900)
    restricting = AttributeRef(clock.class_id, clock.obis, clock.attribute)
    # a window wide enough that a clock hours off still answers the question: is it taken
    # the meter's own deviation field, as the meter writes it (None: unspecified)
    sent = out.clock.deviation if out.clock is not None else None
    east = TimePolicy().east_minutes(sent) if sent is not None else None
    access = range_access(restricting, now - 3 * step, now + step, TimePolicy(), east_minutes=east)
    behaviour = out.behaviour
    ranged = await _taken(session, ref, access, out, "range access")
    last = profile.entries_in_use or 1
    entry = await _taken(session, ref, entry_access(last, last), out, "entry access")
    out.behaviour = replace(behaviour, range_access=ranged, entry_access=entry)


async def _taken(
    session: MeterSession, ref: AttributeRef, access: bytes, out: Survey, what: str
) -> bool:
    try:
        data = await session.get(ref, access)
    except DataAccessError as exc:
        out.notes.append(f"{what} on {ref.obis}: {exc}")
        return False
    with translating(f"{what} on {ref.obis}"):
        axdr.decode(data)
    return True


async def survey(
    session: MeterSession,
    *,
    candidates: Candidates,
    wanted: Wanted,
    association: Obis = CURRENT_ASSOCIATION,
    try_quirks: bool = True,
) -> Survey:
    """What the meter behind ``session`` has of what ``wanted`` asks for (see the module)."""
    out = Survey(source=OBJECT_LIST)
    out.behaviour = Behaviour(server_max_pdu=session.association.server_max_pdu)
    if try_quirks:
        clock = next((obis for obis, classes in candidates if CLOCK_CLASS in classes), None)
        await _lists(session, association, clock or Obis(0, 0, 1, 0, 0, 255), out)
    if not await _object_list(session, association, out):
        out.source = PROBED
        await _probe(session, candidates, out)
    await _profiles(session, wanted, out)
    await _values(session, wanted, out)
    await _clock(session, out)
    await _disconnect_control(session, out)
    if try_quirks:
        await _selective_access(session, out)
        await overrun.fill_a_pdu(session, out)
        overrun.measure(session, out)
    out.learned |= session.learned
    return out


async def discover_meter(
    target: MeterTarget,
    *,
    candidates: Candidates,
    wanted: Wanted,
    counters: InvocationCounterStore | None = None,
    try_quirks: bool = True,
    release: bool = True,
) -> Survey:
    """Open a session to ``target``, survey the meter, release (trying whether the meter
    answers the release) and close. A failure of the session is a ``ProtocolError``.

    With ``try_quirks`` the session takes answers up to ``overrun.DISCOVERY_TOLERANCE`` bytes
    past the PDU, to see by how much the meter runs past it."""
    if try_quirks:
        tolerance = max(target.pdu_tolerance, overrun.DISCOVERY_TOLERANCE)
        target = replace(target, pdu_tolerance=tolerance)
    transport = build_transport(target, Traffic())
    session = MeterSession(target, counters=counters, transport=transport, release=release)
    async with session:
        found = await survey(session, candidates=candidates, wanted=wanted, try_quirks=try_quirks)
        if isinstance(transport, HdlcTransport):
            link = transport.link.negotiated
            found.behaviour = replace(
                found.behaviour,
                hdlc_max_info=min(link.max_info_transmit, link.max_info_receive),
                hdlc_window=min(link.window_transmit, link.window_receive),
            )
    if try_quirks and release:
        found.behaviour = replace(found.behaviour, release=bool(session.released_cleanly))
    return found
