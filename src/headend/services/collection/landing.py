"""Landing a meter read in the store: the raw read first, then readings as version 0.

Landing is idempotent: the raw read is keyed by a hash of its content, readings by their
unique keys, so landing the same read twice stores it once. The firmware the read reported
becomes the meter's (``meters.firmware``), and what the session learned about the meter's
model lands with it, under that firmware (``quirks.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from headend.domain.enums import ReadKind
from headend.domain.quality import Flag, Quality
from headend.domain.readings import Column, LoadProfile, MeterRead, RegisterValue
from headend.services.collection.quirks import remember_learned
from headend.store.repositories.readings import ReadingsRepository
from headend.store.repositories.registry import RegistryRepository

# Units normalised on landing: energy in kWh / kvarh, power in kW / kvar.
_NORMALISE = {"Wh": ("kWh", 3), "varh": ("kvarh", 3), "W": ("kW", 3), "var": ("kvar", 3)}
ENERGY_UNITS = frozenset({"Wh", "varh", "kWh", "kvarh"})


def normalise(value: Decimal, unit: str | None) -> tuple[Decimal, str]:
    if unit in _NORMALISE:
        target, shift = _NORMALISE[unit]
        return value.scaleb(-shift), target
    return value, unit or ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def payload_of(read: MeterRead) -> dict[str, Any]:
    """The read as JSON-ready data: what the meter returned, nothing derived."""
    clock = read.clock
    lp = read.load_profile
    names = {c.obis: str(c.obis) for c in lp.columns} if lp is not None else {}
    return {
        "serial_number": read.serial_number,
        "firmware": read.firmware,
        "clock": None
        if clock is None
        else {
            "meter_time": _iso(clock.meter_time),
            "system_time": _iso(clock.system_time),
            "status": clock.status.bits,
            "deviation_min": clock.deviation_min,
            "offset_assumed": clock.offset_assumed,
        },
        "registers": {
            str(obis): {
                "value": str(r.value),
                "unit": r.unit,
                "scaler": r.scaler,
                "raw": str(r.raw),
                "captured_at": _iso(r.captured_at),
            }
            for obis, r in read.registers.items()
        },
        "data": {str(obis): _plain(d.value) for obis, d in read.data.items()},
        "unavailable": {str(obis): u.reason for obis, u in read.unavailable.items()},
        "load_profile": None
        if lp is None
        else {
            "obis": str(lp.obis),
            "capture_period_s": lp.capture_period_s,
            "access": lp.access,
            "columns": [
                {
                    "class_id": c.class_id,
                    "obis": str(c.obis),
                    "attribute": c.attribute,
                    "unit": c.unit,
                    "scaler": c.scaler,
                }
                for c in lp.columns
            ],
            "rows": [
                [
                    _iso(row.interval_end),
                    row.status,
                    {names[o]: str(v) for o, v in row.values.items()},
                ]
                for row in lp.rows
            ],
        },
        "billing": None
        if read.billing is None
        else {
            "obis": str(read.billing.obis),
            "rows": [
                [
                    _iso(row.captured_at),
                    {str(o): str(v) for o, v in row.values.items()},
                    {str(o): _iso(t) for o, t in row.times.items()},
                ]
                for row in read.billing.rows
            ],
        },
        "events": [[_iso(e.at), str(e.log), e.code] for e in read.events],
        "clock_sync": None
        if read.clock_sync is None
        else {
            "action": str(read.clock_sync.action),
            "drift_s": read.clock_sync.before.drift_s,
            "threshold_s": read.clock_sync.threshold_s,
            "set_to": _iso(read.clock_sync.set_to),
            "reason": read.clock_sync.reason,
        },
    }


def _plain(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Landed:
    raw_read_id: int
    new_raw: bool
    registers: int
    intervals: int
    events: int


def energy_columns(profile: LoadProfile) -> list[Column]:
    """The cumulative energy columns of a load profile."""
    return [c for c in profile.columns if c.class_id in (3, 4) and (c.unit or "") in ENERGY_UNITS]


def interval_rows(
    meter_pk: int,
    profile: LoadProfile,
    before: Mapping[str, tuple[datetime, Decimal]],
    raw_read_id: int,
) -> list[dict[str, Any]]:
    """Interval consumption from cumulative registers: each row minus the row before it.

    ``before`` gives, per channel, the stored capture closest before the first row; a row with
    no capture before it only serves as the base of the next. A row that follows a gap carries
    everything since the capture before it and is flagged LONG; VEE decides what to do. Rows
    may be older than what is stored already (a re-read): they land in their place.
    """
    period = timedelta(seconds=profile.capture_period_s)
    rows = sorted(profile.rows, key=lambda r: r.interval_end)
    result: list[dict[str, Any]] = []
    if not rows:
        return result
    long = int(Flag.LONG)
    for column in energy_columns(profile):
        obis, channel = column.obis, str(column.obis)
        shift = _NORMALISE[column.unit][1] if column.unit in _NORMALISE else 0
        previous = before.get(channel)
        for row in rows:
            raw_value = row.values.get(obis)
            if raw_value is None:
                continue
            cumulative = raw_value.scaleb(-shift) if shift else raw_value  # as ``normalise``
            end = row.interval_end
            if previous is not None:
                flags = int(row.flags)
                if end - previous[0] > period:
                    flags |= long
                result.append(
                    {
                        "meter_id": meter_pk,
                        "channel": channel,
                        "interval_end": end,
                        "version": 0,
                        "value": cumulative - previous[1],
                        "cumulative": cumulative,
                        "quality": Quality.RAW,
                        "flags": flags,
                        "status": row.status,
                        "raw_read_id": raw_read_id,
                        "created_by": "meter",
                    }
                )
            previous = (end, cumulative)
    return result


def register_rows(
    meter_pk: int, read: MeterRead, read_at: datetime, raw_read_id: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(
        obis: str, at: datetime, value: Decimal, unit: str | None, capture: datetime | None
    ) -> None:
        normalised, norm_unit = normalise(value, unit)
        rows.append(
            {
                "meter_id": meter_pk,
                "obis": obis,
                "read_at": at,
                "version": 0,
                "value": normalised,
                "unit": norm_unit,
                "capture_time": capture,
                "quality": Quality.RAW,
                "flags": 0,
                "raw_read_id": raw_read_id,
                "created_by": "meter",
            }
        )

    register: RegisterValue
    for obis, register in read.registers.items():
        add(str(obis), read_at, register.value, register.unit, register.captured_at)
    for obis, data in read.data.items():  # a data object holding a number: no unit
        if isinstance(data.value, int) and not isinstance(data.value, bool):
            add(str(obis), read_at, Decimal(data.value), None, None)
    if read.billing is not None:
        # a demand register is captured twice (value, attribute 2; time, attribute 5)
        units = {str(c.obis): c.unit for c in read.billing.columns if c.attribute == 2}
        for brow in read.billing.rows:
            for obis_key, value in brow.values.items():
                add(
                    str(obis_key),
                    brow.captured_at,
                    value,
                    units.get(str(obis_key)),
                    brow.times.get(obis_key),
                )
    return rows


def land(
    session: Session,
    meter_pk: int,
    kind: ReadKind,
    read: MeterRead,
    read_at: datetime,
    job_id: int | None,
) -> Landed:
    """Land one read inside the caller's transaction."""
    payload = payload_of(read)
    # payload_of builds its keys in a fixed order, so its repr is a stable fingerprint
    digest = hashlib.sha256(repr(payload).encode()).hexdigest()
    repo = ReadingsRepository(session)
    inserted, new_raw = repo.land_raw(
        {
            "meter_id": meter_pk,
            "job_id": job_id,
            "kind": kind,
            "read_at": read_at,
            "meter_time": read.clock.meter_time if read.clock else None,
            "clock_status": read.clock.status.bits if read.clock else None,
            "payload": payload,
            "content_hash": digest,
        }
    )
    registers = repo.land_registers(register_rows(meter_pk, read, read_at, inserted))
    intervals = 0
    if read.load_profile is not None:
        profile = read.load_profile
        first = min((r.interval_end for r in profile.rows), default=None)
        channels = [str(c.obis) for c in energy_columns(profile)]
        before = repo.capture_before(meter_pk, channels, first) if first else {}
        rows = interval_rows(meter_pk, profile, before, inserted)
        intervals = repo.land_intervals(rows)
        if intervals:
            repo.mark_for_validation(meter_pk, min(row["interval_end"] for row in rows))
    events = 0
    if read.events:
        events = repo.land_events(
            [
                {
                    "meter_id": meter_pk,
                    "log": str(e.log),
                    "occurred_at": e.at,
                    "code": e.code,
                    "raw_read_id": inserted,
                }
                for e in read.events
            ]
        )
    # the firmware the read reported is the meter's from now on, and keys what it learned
    firmware = RegistryRepository(session).note_firmware(meter_pk, read.firmware)
    remember_learned(session, meter_pk, read.learned, read_at, firmware)
    return Landed(inserted, new_raw, registers, intervals, events)
