"""From what a meter session read (``headend.domain.readings``) to VEE's inputs.

A load profile usually captures the cumulative energy register (OBIS D = 8): an interval's
energy is the difference between consecutive rows, and only when they are one capture period
apart. Across a hole in the buffer the difference covers several intervals, so no interval is
made there; instead every row's cumulative value is also returned as a register read, which
lets E2 share the hole's energy out exactly. A profile column that already holds interval
energy (D = 29) is taken as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.readings import LoadProfile, RegisterValue
from headend.vee.model import IntervalRead, RegisterRead

CUMULATIVE = 8
INTERVAL_ENERGY = 29
TO_KWH: dict[str | None, Decimal] = {"Wh": Decimal("0.001"), "kWh": Decimal(1), None: Decimal(1)}


class AdaptError(ValueError):
    """A value cannot be turned into kWh or the profile has no such column."""


def _kwh(value: Decimal, unit: str | None) -> Decimal:
    factor = TO_KWH.get(unit)
    if factor is None:
        raise AdaptError(f"cannot express {unit!r} in kWh")
    return value * factor


def from_profile(
    meter_id: str, profile: LoadProfile, obis: Obis, before: Decimal | None = None
) -> tuple[list[IntervalRead], list[RegisterRead]]:
    """Intervals (and register reads) of column ``obis``; ``before`` is the cumulative value
    at the start of the first row's interval, when known."""
    column = next((c for c in profile.columns if c.obis == obis), None)
    if column is None:
        raise AdaptError(f"the load profile {profile.obis} has no column {obis}")
    channel = str(obis)
    step = timedelta(seconds=profile.capture_period_s)
    intervals: list[IntervalRead] = []
    registers: list[RegisterRead] = []
    previous_end = None
    previous = None if before is None else _kwh(before, column.unit)
    rows = sorted((r for r in profile.rows if obis in r.values), key=lambda r: r.interval_end)
    for row in rows:
        value = _kwh(row.values[obis], column.unit)
        status = row.status or 0
        if obis.d == CUMULATIVE:
            registers.append(RegisterRead(meter_id, obis, row.interval_end, value))
            adjacent = previous_end is None or row.interval_end - previous_end == step
            if previous is not None and adjacent:
                intervals.append(
                    IntervalRead(meter_id, channel, row.interval_end, value - previous, status)
                )
            previous, previous_end = value, row.interval_end
        else:
            intervals.append(IntervalRead(meter_id, channel, row.interval_end, value, status))
    return intervals, registers


def from_registers(
    meter_id: str, values: Iterable[RegisterValue], read_at: datetime
) -> list[RegisterRead]:
    """Register reads of the cumulative energy registers among ``values``, in kWh."""
    return [
        RegisterRead(meter_id, v.obis, v.captured_at or read_at, _kwh(v.value, v.unit))
        for v in values
        if v.obis.d == CUMULATIVE
    ]
