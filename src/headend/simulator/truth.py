"""The truth a simulated meter serves for a period: what a read should find, in kWh.

``Truth.to_json()`` is what ``headend simulate --expect METER_ID --start ISO --end ISO --json``
prints. Registers are the values the meter shows at the last interval end at or before each
end of the period (faults included); consumption is what the meter measured in between, per
channel and per tariff, independent of what a fault does to the registers. ``faults`` says, in
words, how each data fault of the meter bends its registers, rows or events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from headend.simulator.data_faults import DataFaults

UNITS = {"A+": "kWh", "A+T1": "kWh", "A+T2": "kWh", "A+T3": "kWh", "A-": "kWh", "R+": "kvarh"}
TARIFF_PERIODS = {"T1": "normal", "T2": "peak", "T3": "off_peak"}


@dataclass(frozen=True)
class FaultNote:
    kind: str
    start: datetime
    end: datetime | None  # None: from ``start`` on
    in_period: bool  # touches the truth's period
    effect: str


@dataclass(frozen=True)
class Truth:
    meter_id: str
    start: datetime
    end: datetime
    registers_at: tuple[datetime, datetime]  # the interval ends the registers are taken at
    serial_numbers: tuple[str, str]  # the serial number shown at each end
    registers_start: Mapping[str, Decimal]  # kWh (kvarh for R+), by quantity
    registers_end: Mapping[str, Decimal]
    consumption: Mapping[str, Decimal]  # "A+", "A-", "R+"
    tariffs: Mapping[str, Decimal]  # "T1" normal, "T2" peak, "T3" off-peak
    faults: tuple[FaultNote, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "meter_id": self.meter_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "registers_at": {
                "start": self.registers_at[0].isoformat(),
                "end": self.registers_at[1].isoformat(),
            },
            "serial_numbers": {"start": self.serial_numbers[0], "end": self.serial_numbers[1]},
            "units": UNITS,
            "registers": {
                "start": _strings(self.registers_start),
                "end": _strings(self.registers_end),
            },
            "consumption": _strings(self.consumption),
            "tariffs": _strings(self.tariffs),
            "tariff_periods": TARIFF_PERIODS,
            "faults": [
                {
                    "kind": note.kind,
                    "start": note.start.isoformat(),
                    "end": note.end.isoformat() if note.end is not None else None,
                    "in_period": note.in_period,
                    "effect": note.effect,
                }
                for note in self.faults
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _strings(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items()}


def describe_faults(
    faults: DataFaults,
    resolution_wh: int,
    modulus_units: int,
    meter_id: str,
    lo: int,
    hi: int,
    tz: ZoneInfo,
) -> tuple[FaultNote, ...]:
    """Notes on each data fault: where it is and how it bends what the meter serves."""

    def at(second: int) -> datetime:
        return datetime.fromtimestamp(second, UTC).astimezone(tz)

    def note(kind: str, start: int, end: int | None, effect: str) -> FaultNote:
        touches = start < hi and (end is None or end > lo)
        return FaultNote(kind, at(start), at(end) if end is not None else None, touches, effect)

    maximum = Decimal(modulus_units * resolution_wh).scaleb(-3)
    notes: list[FaultNote] = []
    if faults.outage is not None:
        o = faults.outage
        notes.append(note("outage", o.down, o.up, (
            "no load-profile rows while the power is off; the first row after it carries "
            "the power-down status bit (0x80); registers do not advance and nothing is "
            "measured; events 1 (power down) and 2 (power up)"
        )))  # fmt: skip
    if faults.spike is not None:
        s = faults.spike
        notes.append(note("spike", s.start, None, (
            f"the interval starting here imports {s.factor:g} times its normal energy; the "
            "registers and the consumption include it"
        )))  # fmt: skip
    if faults.backwards is not None:
        b = faults.backwards
        lowered = Decimal(b.units * resolution_wh).scaleb(-3)
        notes.append(note("backwards", b.at, None, (
            f"from here the A+ register reads {lowered} kWh lower than the sum of the "
            "intervals (and than A+T1+A+T2+A+T3); consumption is what was measured"
        )))  # fmt: skip
    if faults.rollover is not None:
        r = faults.rollover
        notes.append(note("rollover", r.at, None, (
            f"the A+ register passes its maximum here and restarts from zero: registers "
            f"count modulo {maximum} kWh, so A+T1+A+T2+A+T3 equals A+ only modulo that; "
            "consumption is unwrapped"
        )))  # fmt: skip
    if faults.exchange is not None:
        x = faults.exchange
        notes.append(note("exchange", x.at, None, (
            f"the meter was exchanged here: serial {meter_id} became {x.serial} and every "
            "register restarts from zero; rows, billing snapshots and events of the old "
            "meter are gone from the new one; consumption runs on across the exchange"
        )))  # fmt: skip
    if faults.drift_s:
        notes.append(FaultNote("clock_drift", at(lo), None, True, (
            f"the meter's clock is {faults.drift_s:+g} s off true time; times here are true"
        )))  # fmt: skip
    return tuple(notes)
