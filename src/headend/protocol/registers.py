"""Reading the clock and value objects into ``headend.domain.readings`` values.

Registers are read with their scaler_unit applied exactly (``Decimal`` scaled by a power of
ten). Scalers rarely change, so they are cached per meter, model and firmware and read only
on a miss. An object that the meter says is unavailable or denied is reported as
``Unavailable``, not as a failed read.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.readings import (
    ClockAction,
    ClockReading,
    ClockStatus,
    ClockSync,
    Column,
    DataValue,
    RegisterValue,
    Unavailable,
)
from headend.protocol import axdr
from headend.protocol.cosem_time import decode_datetime, encode_datetime
from headend.protocol.errors import (
    DataAccessError,
    DecodeError,
    data_access_error,
    translating,
)
from headend.protocol.plan import (
    CLOCK_CLASS,
    DATA_CLASS,
    DEMAND_REGISTER_CLASS,
    EXTENDED_REGISTER_CLASS,
    ObjectRead,
    ReadSpec,
)
from headend.protocol.session import MeterSession
from headend.protocol.units import unit_symbol
from headend.protocol.xdlms import AttributeRef, Result

# scaler_unit's scaler is an ``integer`` (IEC 62056-6-2): a power of ten within -128..127
MIN_SCALER, MAX_SCALER = -128, 127


def check_scaler(scaler: int, what: object = "a register") -> int:
    if not MIN_SCALER <= scaler <= MAX_SCALER:
        raise DecodeError(f"{what}: scaler {scaler} is outside {MIN_SCALER}..{MAX_SCALER}")
    return scaler


def scaled(raw: int | float, scaler: int, what: object = "a register") -> Decimal:
    """``raw * 10**scaler`` exactly (floats by their shortest decimal form).

    A value a meter sent: a NaN or an infinite value, or a scaler outside an ``integer``, is a
    ``DecodeError``."""
    check_scaler(scaler, what)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise DecodeError(f"{what}: the value {raw!r} is not a finite number")
    value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    return value.scaleb(scaler)


@dataclass
class DefinitionCache:
    """What a meter's objects define and rarely change, cached per (meter, model, firmware):
    scaler and unit of each register, capture objects and capture period of each profile (as
    the meter has them; a collection compares them with the device profile on every use, see
    ``headend.protocol.definitions``, and keeps only those that agreed)."""

    _scalers: dict[tuple[str, str, str], dict[Obis, tuple[int, int]]] = field(default_factory=dict)
    _profiles: dict[tuple[str, str, str], dict[Obis, tuple[tuple[Column, ...], int]]] = field(
        default_factory=dict
    )

    def table(self, meter_id: str, model: str, firmware: str = "") -> dict[Obis, tuple[int, int]]:
        """OBIS -> (scaler, unit code)."""
        return self._scalers.setdefault((meter_id, model, firmware), {})

    def profiles(
        self, meter_id: str, model: str, firmware: str = ""
    ) -> dict[Obis, tuple[tuple[Column, ...], int]]:
        """Profile OBIS -> (columns with their scalers, capture period in seconds)."""
        return self._profiles.setdefault((meter_id, model, firmware), {})

    def forget(self, meter_id: str) -> None:
        for store in (self._scalers, self._profiles):
            for key in [k for k in store if k[0] == meter_id]:
                del store[key]


def _scaler_attribute(class_id: int) -> int:
    return 4 if class_id == DEMAND_REGISTER_CLASS else 3


def parse_scaler_unit(data: bytes) -> tuple[int, int]:
    value = axdr.decode(data)
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], int)
        or not isinstance(value[1], int)
        or isinstance(value[0], bool)
        or isinstance(value[1], bool)
    ):
        raise DecodeError(f"scaler_unit is not a structure of two integers: {value!r}")
    if not 0 <= value[1] <= 255:
        raise DecodeError(f"scaler_unit: unit {value[1]} is not an enum")
    return check_scaler(value[0], "scaler_unit"), value[1]


async def read_clock(session: MeterSession, spec: ReadSpec) -> ClockReading:
    sent = time.time()
    data = await session.get(AttributeRef(CLOCK_CLASS, spec.clock, 2))
    received = time.time()
    with translating(f"clock {spec.clock}"):
        return clock_from(data, spec, sent, received)


async def synchronise_clock(
    session: MeterSession, spec: ReadSpec, before: ClockReading, threshold_s: float
) -> ClockSync:
    """Set the clock when its drift exceeds ``threshold_s``; say what was done."""
    if abs(before.drift_s) <= threshold_s:
        return ClockSync(before=before, threshold_s=threshold_s, action=ClockAction.NONE)
    target = datetime.now(UTC)
    raw = encode_datetime(target, spec.time, east_minutes=before.deviation_min)
    try:
        await session.set(AttributeRef(CLOCK_CLASS, spec.clock, 2), axdr.octet_string(raw))
    except DataAccessError as exc:
        return ClockSync(
            before=before,
            threshold_s=threshold_s,
            action=ClockAction.REFUSED,
            set_to=target,
            reason=str(exc),
        )
    after = await read_clock(session, spec)
    return ClockSync(
        before=before, threshold_s=threshold_s, action=ClockAction.SET, set_to=target, after=after
    )


def _plain(value: axdr.Value) -> str | int | bytes | None:
    if value is None or isinstance(value, str | int | bytes):
        if isinstance(value, bytes) and value and all(32 <= b < 127 for b in value):
            return value.decode("ascii")
        return value
    return repr(value)


def _unavailable(obis: Obis, result: Result) -> Unavailable:
    error = data_access_error(result.error if result.error is not None else 250, str(obis))
    return Unavailable(obis, error.category.value, str(error))


@dataclass
class RegisterRead:
    registers: dict[Obis, RegisterValue] = field(default_factory=dict)
    data: dict[Obis, DataValue] = field(default_factory=dict)
    unavailable: dict[Obis, Unavailable] = field(default_factory=dict)
    clock: ClockReading | None = None
    firmware: str | None = None  # the firmware identifier the meter reported


def clock_from(data: bytes, spec: ReadSpec, sent: float, received: float) -> ClockReading:
    raw = axdr.decode(data)
    if not isinstance(raw, bytes):
        raise DecodeError(f"the clock time is not an octet-string: {raw!r}")
    meter = decode_datetime(raw, spec.time)
    return ClockReading(
        meter_time=meter.at,
        system_time=datetime.fromtimestamp((sent + received) / 2, UTC),
        status=meter.status or ClockStatus(0),
        deviation_min=meter.deviation_min,
        offset_assumed=meter.offset_assumed,
    )


MAX_FIRMWARE_CHARS = 64  # the longest firmware identifier kept (the store's column)


def firmware_identifier(value: axdr.Value) -> str:
    """A firmware identifier as text: a visible string, or an octet string in ASCII as it
    is (padding of NULs and spaces removed), other octets in hex. Empty, or longer than
    ``MAX_FIRMWARE_CHARS``, is a ``DecodeError``."""
    if isinstance(value, bytes):
        raw = value.rstrip(b"\x00 ")
        text = raw.decode("ascii") if all(32 <= b < 127 for b in raw) else raw.hex()
    elif isinstance(value, str):
        text = value.rstrip("\x00 ")
    else:
        raise DecodeError(f"the firmware identifier {value!r} is not a string")
    if not text:
        raise DecodeError("the firmware identifier is empty")
    if len(text) > MAX_FIRMWARE_CHARS:
        raise DecodeError(f"the firmware identifier is longer than {MAX_FIRMWARE_CHARS} characters")
    return text


def _scaler_ref(obj: ObjectRead) -> AttributeRef:
    return AttributeRef(obj.class_id, obj.obis, _scaler_attribute(obj.class_id))


async def _change_firmware(
    session: MeterSession,
    spec: ReadSpec,
    objects: tuple[ObjectRead, ...] | list[ObjectRead],
    cache: DefinitionCache,
    results: dict[AttributeRef, Result],
    firmware: str,
) -> dict[Obis, tuple[int, int]]:
    """The meter runs ``firmware``, not the firmware the session's cached definitions were
    kept for: from now on the session takes them from (and keeps them under) ``firmware``,
    and the scalers this read took from the other firmware's cache are read again (one
    more request, only when the firmware changed). The new firmware's table of scalers."""
    session.firmware = firmware
    table = cache.table(session.target.meter_id, spec.model, firmware)
    stale = [
        _scaler_ref(obj)
        for obj in objects
        if obj.class_id != DATA_CLASS
        and obj.obis not in table
        and _scaler_ref(obj) not in results
        and results[AttributeRef(obj.class_id, obj.obis, 2)].data is not None
    ]
    if stale:
        batch = spec.list_batch if spec.supports_get_with_list else 1
        results.update(zip(stale, await session.get_many(stale, batch), strict=True))
    return table


async def read_objects(
    session: MeterSession,
    spec: ReadSpec,
    objects: tuple[ObjectRead, ...] | list[ObjectRead],
    cache: DefinitionCache,
    *,
    with_clock: bool = False,
    tolerant: frozenset[Obis] = frozenset(),
) -> RegisterRead:
    """Values of data and register objects (and the clock), in as few requests as the meter
    allows; scalers from the cache or read on a miss. A register of ``tolerant`` (objects
    named by the registry, not the profile) whose value or scaler_unit is not what its class
    holds is reported unavailable instead of failing the read.

    The firmware identifier (``spec.firmware``, when among ``objects``) comes back as
    ``RegisterRead.firmware``, not as data. Where it differs from the firmware the session's
    cache is keyed by (the target's), no scaler cached for the other firmware is used: see
    :func:`_change_firmware`."""
    out = RegisterRead()
    target = session.target
    table = cache.table(target.meter_id, spec.model, session.firmware)
    clock_ref = AttributeRef(CLOCK_CLASS, spec.clock, 2)
    refs: list[AttributeRef] = [clock_ref] if with_clock else []
    for obj in objects:
        refs.append(AttributeRef(obj.class_id, obj.obis, 2))
        if obj.class_id != DATA_CLASS and obj.obis not in table:
            refs.append(_scaler_ref(obj))
        if obj.class_id == EXTENDED_REGISTER_CLASS:
            refs.append(AttributeRef(obj.class_id, obj.obis, 5))
    batch = spec.list_batch if spec.supports_get_with_list else 1
    # the clock goes in the first request, timed on its own
    first = refs[: max(batch, 1)] if with_clock else []
    sent = time.time()
    answers = await session.get_many(first, batch)
    received = time.time()
    answers += await session.get_many(refs[len(first) :], batch)
    results = dict(zip(refs, answers, strict=True))
    firmware_ref = AttributeRef(DATA_CLASS, spec.firmware, 2) if spec.firmware else None
    if firmware_ref is not None and firmware_ref in results:
        found = results[firmware_ref]
        assert spec.firmware is not None
        if found.data is None:
            out.unavailable[spec.firmware] = _unavailable(spec.firmware, found)
        else:
            try:
                with translating(f"firmware identifier {spec.firmware}"):
                    out.firmware = firmware_identifier(axdr.decode(found.data))
            except DecodeError as exc:  # costs the identifier, not the read
                out.unavailable[spec.firmware] = Unavailable(
                    spec.firmware, "decode_error", str(exc)
                )
        if out.firmware is not None and out.firmware != session.firmware:
            table = await _change_firmware(session, spec, objects, cache, results, out.firmware)
    # what the meter sent is decoded inside the boundary: nothing but a ProtocolError leaves
    with translating("decoding registers"):
        if with_clock:
            clock = results[clock_ref]
            if clock.data is None:
                raise data_access_error(clock.error or 250, f"clock {spec.clock}")
            out.clock = clock_from(clock.data, spec, sent, received)
        for obj in objects:
            value_ref = AttributeRef(obj.class_id, obj.obis, 2)
            if value_ref == firmware_ref:
                continue
            value_result = results[value_ref]
            if value_result.data is None:
                out.unavailable[obj.obis] = _unavailable(obj.obis, value_result)
                continue
            value = axdr.decode(value_result.data)
            if obj.class_id == DATA_CLASS:
                out.data[obj.obis] = DataValue(obj.obis, _plain(value))
                continue
            scaler_ref = _scaler_ref(obj)
            if scaler_ref in results:
                scaler_result = results[scaler_ref]
                if scaler_result.data is None:
                    out.unavailable[obj.obis] = _unavailable(obj.obis, scaler_result)
                    continue
                try:
                    table[obj.obis] = parse_scaler_unit(scaler_result.data)
                except DecodeError as exc:
                    if obj.obis not in tolerant:
                        raise
                    out.unavailable[obj.obis] = Unavailable(obj.obis, "decode_error", str(exc))
                    continue
            scaler, unit = table[obj.obis]
            if not isinstance(value, int | float) or isinstance(value, bool):
                what = f"register {obj.obis} holds {value!r}, not a number"
                if obj.obis not in tolerant:
                    raise DecodeError(what)
                hint = f"{what}; name it 1:{obj.obis} to read it as a data object"
                out.unavailable[obj.obis] = Unavailable(obj.obis, "decode_error", hint)
                continue
            captured_at = None
            if obj.class_id == EXTENDED_REGISTER_CLASS:
                stamp = results[AttributeRef(obj.class_id, obj.obis, 5)]
                raw_time = axdr.decode(stamp.data) if stamp.data is not None else None
                if isinstance(raw_time, bytes) and len(raw_time) == 12:
                    captured_at = decode_datetime(raw_time, spec.time).at
            out.registers[obj.obis] = RegisterValue(
                obis=obj.obis,
                value=scaled(value, scaler, obj.obis),
                unit=unit_symbol(unit),
                scaler=scaler,
                raw=value if isinstance(value, int) else scaled(value, 0, obj.obis),
                captured_at=captured_at,
            )
    return out
