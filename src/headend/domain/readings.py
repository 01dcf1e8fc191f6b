"""What a read returns: clock, registers, profile rows, events.

These are plain values, free of any DLMS library type, so that every layer above the protocol
(store, VEE, API) can hold them. Times are timezone-aware; values are exact ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from headend.domain.obis import Obis
from headend.domain.quality import Flag, flags_from_amr_status


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """The COSEM clock status byte, kept as read; the properties name its bits."""

    bits: int = 0

    @property
    def invalid(self) -> bool:
        return bool(self.bits & 0x01)

    @property
    def doubtful(self) -> bool:
        return bool(self.bits & 0x02)

    @property
    def different_base(self) -> bool:
        return bool(self.bits & 0x04)

    @property
    def invalid_status(self) -> bool:
        return bool(self.bits & 0x08)

    @property
    def daylight_saving_active(self) -> bool:
        return bool(self.bits & 0x80)


@dataclass(frozen=True, slots=True)
class MeterTime:
    """A date-time as a meter sent it, made aware.

    ``deviation_min`` is the UTC offset the meter declared (minutes east of UTC), or ``None``
    when the meter left it unspecified; in that case ``offset_assumed`` is true and the offset
    of ``at`` comes from the device profile (see ``headend.protocol.cosem_time``).
    """

    at: datetime
    deviation_min: int | None
    status: ClockStatus | None
    offset_assumed: bool


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The meter's clock compared with the head-end's at the moment of the read."""

    meter_time: datetime  # aware, as the meter stated it
    system_time: datetime  # aware UTC, head-end time at the middle of the exchange
    status: ClockStatus
    deviation_min: int | None  # declared UTC offset, minutes east of UTC; None: unspecified
    offset_assumed: bool

    @property
    def drift_s(self) -> float:
        """Seconds the meter is ahead of the head-end (negative: behind)."""
        return (self.meter_time - self.system_time).total_seconds()


class ClockAction(StrEnum):
    NONE = "none"  # drift within threshold
    SET = "set"  # clock written
    REFUSED = "refused"  # the meter refused the write


@dataclass(frozen=True, slots=True)
class ClockSync:
    """What clock synchronisation did: the record kept with the read."""

    before: ClockReading
    threshold_s: float
    action: ClockAction
    set_to: datetime | None = None
    after: ClockReading | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterValue:
    """A register value with scaler applied, exactly: ``value = raw * 10**scaler``."""

    obis: Obis
    value: Decimal
    unit: str | None  # symbol, e.g. "Wh", "W"; None for unit-less (count, none)
    scaler: int
    raw: int | Decimal
    captured_at: datetime | None = None  # for extended registers and demand registers


@dataclass(frozen=True, slots=True)
class DataValue:
    """A non-numeric COSEM value (serial number, firmware version, ...)."""

    obis: Obis
    value: str | int | bytes | None


@dataclass(frozen=True, slots=True)
class Unavailable:
    """An object the profile lists but the meter could not give; not a failed read."""

    obis: Obis
    reason: str  # failure category value, e.g. "object_unavailable" or "access_denied"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Column:
    """A capture object of a profile: which attribute of which object the column holds."""

    class_id: int
    obis: Obis
    attribute: int
    data_index: int = 0
    unit: str | None = None
    scaler: int = 0


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One entry of a load profile: the interval it closes and its values by OBIS."""

    interval_end: datetime  # aware
    status: int | None  # AMR profile status byte, kept as read
    values: dict[Obis, Decimal] = field(default_factory=dict)
    deviation_min: int | None = None
    clock_status: ClockStatus | None = None

    @property
    def flags(self) -> Flag:
        return flags_from_amr_status(self.status) if self.status is not None else Flag.NONE


@dataclass(frozen=True, slots=True)
class LoadProfile:
    obis: Obis
    capture_period_s: int
    columns: tuple[Column, ...]
    rows: tuple[ProfileRow, ...]
    access: str = "range"  # how it was read: "range", "entry" or "all"


@dataclass(frozen=True, slots=True)
class BillingRow:
    """One entry of a billing profile: the values captured at a billing reset."""

    captured_at: datetime
    values: dict[Obis, Decimal] = field(default_factory=dict)
    times: dict[Obis, datetime] = field(default_factory=dict)  # date-time columns (MD time)


@dataclass(frozen=True, slots=True)
class BillingProfile:
    obis: Obis
    columns: tuple[Column, ...]
    rows: tuple[BillingRow, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of an event log: when, which event code, and any further captured values."""

    at: datetime
    code: int
    log: Obis
    extra: dict[Obis, str | int | Decimal | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterRead:
    """Everything one session read from one meter."""

    serial_number: str | None
    clock: ClockReading | None = None
    firmware: str | None = None  # the active firmware identifier, where the profile names it
    registers: dict[Obis, RegisterValue] = field(default_factory=dict)
    data: dict[Obis, DataValue] = field(default_factory=dict)
    unavailable: dict[Obis, Unavailable] = field(default_factory=dict)
    load_profile: LoadProfile | None = None
    billing: BillingProfile | None = None
    events: tuple[Event, ...] = ()
    clock_sync: ClockSync | None = None
    # what the session learned about the meter not following the standard, by name (for
    # example "get_with_list_unreliable"), sorted, to be kept per device profile and firmware
    learned: tuple[str, ...] = ()
