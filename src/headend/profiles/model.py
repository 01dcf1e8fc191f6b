"""The schema of a device profile: one meter model's objects, quirks and read plan.

A profile is the single description of a meter model that both sides use: the simulator serves
the objects it declares, the client reads what its ``reads`` section lists and interprets the
values with its scalers, clock semantics and status-bit meanings. Differences between meter
models are named settings here (``quirks``, ``clock.deviation``, value types), never code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis, ObisError
from headend.domain.quality import Flag
from headend.domain.tou import EVN_TOU_2014


def _parse_obis(value: object) -> Obis:
    if isinstance(value, Obis):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an OBIS code written as a string such as 1.0.1.8.0.255")
    try:
        return Obis.parse(value)
    except ObisError as exc:
        raise ValueError(str(exc)) from exc


ObisCode = Annotated[Obis, BeforeValidator(_parse_obis)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantity(StrEnum):
    """What a value object carries, by the names of the consumption model."""

    IMPORT = "A+"
    IMPORT_T1 = "A+T1"
    IMPORT_T2 = "A+T2"
    IMPORT_T3 = "A+T3"
    EXPORT = "A-"
    REACTIVE_IMPORT = "R+"
    MAX_DEMAND = "max_demand"
    SERIAL_NUMBER = "serial_number"
    FIRMWARE = "firmware"  # the active firmware identifier (usually 1.0.0.2.0.255)
    AMR_STATUS = "amr_status"
    EVENT_CODE = "event_code"

    @property
    def is_energy(self) -> bool:
        return self.value[0] in "AR"


class ValueType(StrEnum):
    """The DLMS data type a value is encoded with."""

    UNSIGNED = "unsigned"
    LONG_UNSIGNED = "long_unsigned"
    DOUBLE_LONG_UNSIGNED = "double_long_unsigned"
    LONG64_UNSIGNED = "long64_unsigned"
    OCTET_STRING = "octet_string"
    VISIBLE_STRING = "visible_string"


_DEFAULT_VALUE_TYPE = {
    Quantity.SERIAL_NUMBER: ValueType.OCTET_STRING,
    Quantity.FIRMWARE: ValueType.VISIBLE_STRING,
    Quantity.AMR_STATUS: ValueType.UNSIGNED,
    Quantity.EVENT_CODE: ValueType.LONG_UNSIGNED,
}
_STRING_TYPES = (ValueType.OCTET_STRING, ValueType.VISIBLE_STRING)
_STRING_QUANTITIES = (Quantity.SERIAL_NUMBER, Quantity.FIRMWARE)


class DeviationSemantics(StrEnum):
    """How the meter fills the deviation field of a date-time (clock, buffers, range access).

    ``minutes_to_utc``: the Blue Book reading, UTC = local time + deviation (UTC+7 is -420).
    ``minutes_from_utc``: the companion-standard reading, local = UTC + deviation (UTC+7 is 420).
    ``unspecified``: deviation 0x8000; the time is local time in ``clock.time_zone``.
    A client must read a date-time by these semantics; dlms-cosem returns a naive datetime for
    both 0x8000 and 0, so the profile, not the bytes, says what such a time means.
    """

    MINUTES_TO_UTC = "minutes_to_utc"
    MINUTES_FROM_UTC = "minutes_from_utc"
    UNSPECIFIED = "unspecified"


class Quirks(_Strict):
    """Behaviour that differs between meter models, as named settings.

    ``oversized_pdu_tolerance``: bytes by which this model's answers may run past the PDU size
    the head-end proposed (its client-max-receive-pdu-size) and still be accepted, for firmware
    known to overrun it a little. Default 0: strict, an answer larger than the proposed PDU
    (the TCP wrapper's declared length, or an HDLC answer reassembled from segments) is refused
    as a malformed frame before more of it is read.
    """

    supports_release: bool = True  # answers RLRQ with RLRE; if false it never answers one
    supports_range_access: bool = True  # profile buffers by time range (selector 1)
    supports_entry_access: bool = True  # profile buffers by entry numbers (selector 2)
    supports_get_with_list: bool = True  # GET with list (conformance multiple-references)
    max_pdu_size: int = Field(default=1024, ge=64, le=65535)  # the meter's max receive PDU
    hdlc_max_info_field: int = Field(default=128, ge=32, le=2030)
    hdlc_window: int = Field(default=1, ge=1, le=7)
    oversized_pdu_tolerance: int = Field(default=0, ge=0, le=65535)


class ClockSpec(_Strict):
    obis: ObisCode = Obis(0, 0, 1, 0, 0)
    time_zone: str = "Asia/Ho_Chi_Minh"  # the meter's local time
    deviation: DeviationSemantics = DeviationSemantics.MINUTES_TO_UTC

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class ObjectSpec(_Strict):
    """A value object: data (class 1), register (class 3) or extended register (class 4)."""

    name: str = Field(min_length=1)
    obis: ObisCode
    class_id: Literal[1, 3, 4]
    quantity: Quantity
    scaler: int | None = Field(default=None, ge=-9, le=9)
    unit: int | None = Field(default=None, ge=1, le=255)  # DLMS unit code: 30 Wh, 27 W, 32 varh
    tariff: Literal["T1", "T2", "T3"] | None = None
    value_type: ValueType | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ObjectSpec:
        if self.class_id == 1:
            if self.quantity not in _DEFAULT_VALUE_TYPE:
                raise ValueError(
                    f"quantity {self.quantity.value!r} needs a register (class_id 3 or 4)"
                )
            if self.scaler is not None or self.unit is not None:
                raise ValueError("a data object (class_id 1) has no scaler or unit")
        else:
            if self.quantity in _DEFAULT_VALUE_TYPE:
                raise ValueError(
                    f"quantity {self.quantity.value!r} belongs in a data object (class_id 1)"
                )
            if self.scaler is None or self.unit is None:
                raise ValueError("a register needs both scaler and unit")
        vtype = self.resolved_value_type
        if (vtype in _STRING_TYPES) != (self.quantity in _STRING_QUANTITIES):
            raise ValueError(f"value_type {vtype.value} does not fit quantity {self.quantity}")
        return self

    @property
    def resolved_value_type(self) -> ValueType:
        if self.value_type is not None:
            return self.value_type
        return _DEFAULT_VALUE_TYPE.get(self.quantity, ValueType.DOUBLE_LONG_UNSIGNED)


class CaptureObjectSpec(_Strict):
    obis: ObisCode
    class_id: int = Field(ge=1, le=255)
    attribute: int = Field(default=2, ge=1, le=127)
    data_index: int = Field(default=0, ge=0, le=65535)


class ProfileSpec(_Strict):
    """A profile generic object (class 7): capture objects, capture period and capacity."""

    obis: ObisCode
    capture_objects: list[CaptureObjectSpec] = Field(min_length=1)
    capture_period_s: int = Field(default=0, ge=0)  # 0: captured on events, not periodically
    profile_entries: int = Field(ge=1, le=100_000)

    PERIODIC: ClassVar[bool] = False  # captured every capture_period_s, never on events

    @field_validator("capture_period_s")
    @classmethod
    def _minutes(cls, value: int) -> int:
        if cls.PERIODIC and (value <= 0 or value % 60 or 86400 % value):
            raise ValueError("must be a positive multiple of 60 that divides a day")
        if value % 60:
            raise ValueError("must be a multiple of 60")
        return value


class LoadProfileSpec(ProfileSpec):
    PERIODIC: ClassVar[bool] = True


class DisconnectControlSpec(_Strict):
    obis: ObisCode = Obis(0, 0, 96, 3, 10)
    control_mode: int = Field(default=1, ge=0, le=6)


class AssociationSpec(_Strict):
    obis: ObisCode = Obis(0, 0, 40, 0, 0)


class TariffSpec(_Strict):
    """Which time-of-use period each tariff register accumulates."""

    calendar: str = EVN_TOU_2014
    registers: dict[Literal["T1", "T2", "T3"], Literal["normal", "peak", "off_peak"]]


_FLAG_NAMES = frozenset(name.lower() for name in Flag.__members__ if name != "NONE")


class StatusBits(_Strict):
    """Bit number -> informational flag (a lower-case ``headend.domain.quality.Flag`` name)."""

    amr_status: dict[int, str] = Field(default_factory=dict)

    @field_validator("amr_status")
    @classmethod
    def _known_bits(cls, value: dict[int, str]) -> dict[int, str]:
        for bit, flag in value.items():
            if not 0 <= bit <= 7:
                raise ValueError(f"bit {bit} is outside 0..7")
            if flag not in _FLAG_NAMES:
                raise ValueError(f"unknown flag {flag!r}; known: {', '.join(sorted(_FLAG_NAMES))}")
        return value


BilledQuantity = Literal["A+", "A-"]
_IMPORT_ONLY: list[BilledQuantity] = ["A+"]


class BillingSpec(_Strict):
    """What a billing record bills: the energy quantities whose reads at both ends of the
    period (and whose intervals) decide whether the record is billable. Active import (A+)
    is always billed, with its tariff registers (the time-of-use split); an energy register
    the profile declares but does not bill is still reported in the record, as not billed."""

    quantities: list[BilledQuantity] = Field(default_factory=lambda: _IMPORT_ONLY.copy())

    @field_validator("quantities")
    @classmethod
    def _import_first(cls, value: list[str]) -> list[str]:
        if "A+" not in value:
            raise ValueError("must include A+ (active import is always billed)")
        if len(set(value)) != len(value):
            raise ValueError("names a quantity twice")
        return value


class ReadPlan(_Strict):
    """What to read for each read kind, by OBIS code."""

    clock: ObisCode
    registers: list[ObisCode] = Field(min_length=1)
    load_profile: ObisCode
    billing_profile: ObisCode | None = None
    events: list[ObisCode] = Field(default_factory=list)

    def for_kind(self, kind: ReadKind) -> list[Obis]:
        if kind is ReadKind.CLOCK:
            return [self.clock]
        if kind is ReadKind.REGISTERS:
            return list(self.registers)
        if kind is ReadKind.LOAD_PROFILE:
            return [self.load_profile]
        if kind is ReadKind.BILLING_PROFILE:
            return [self.billing_profile] if self.billing_profile else []
        if kind is ReadKind.EVENTS:
            return list(self.events)
        return [self.clock, *self.registers, self.load_profile]


class DeviceProfile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    manufacturer: str | None = None
    register_resolution_wh: int = Field(default=1, ge=1)
    quirks: Quirks = Quirks()
    clock: ClockSpec = ClockSpec()
    objects: list[ObjectSpec] = Field(min_length=1)
    load_profile: LoadProfileSpec
    billing_profile: ProfileSpec | None = None
    event_log: ProfileSpec | None = None
    disconnect_control: DisconnectControlSpec | None = None
    association: AssociationSpec = AssociationSpec()
    tariffs: TariffSpec | None = None
    status_bits: StatusBits = StatusBits()
    billing: BillingSpec = BillingSpec()
    reads: ReadPlan

    @model_validator(mode="after")
    def _references_resolve(self) -> DeviceProfile:
        declared = self.declared_classes()
        seen: set[Obis] = set()
        for obj in self.objects:
            if obj.obis in seen:
                raise ValueError(f"objects: {obj.obis} is declared twice")
            seen.add(obj.obis)
        for section, spec in self.profiles().items():
            for index, capture in enumerate(spec.capture_objects):
                found = declared.get(capture.obis)
                if found is None:
                    raise ValueError(
                        f"{section}.capture_objects.{index}: {capture.obis} is not declared"
                    )
                if found != capture.class_id:
                    raise ValueError(
                        f"{section}.capture_objects.{index}: {capture.obis} is class {found}, "
                        f"not {capture.class_id}"
                    )
        plan = self.reads
        wanted = [plan.clock, *plan.registers, plan.load_profile, *plan.events]
        if plan.billing_profile is not None:
            wanted.append(plan.billing_profile)
        for code in wanted:
            if code not in declared:
                raise ValueError(f"reads: {code} is not declared in this profile")
        quantities = {obj.quantity.value for obj in self.objects}
        for index, billed in enumerate(self.billing.quantities):
            if billed != "A+" and billed not in quantities:
                raise ValueError(
                    f"billing.quantities.{index}: {billed} is billed but no object has "
                    "that quantity"
                )
        return self

    def billed(self, quantity: Quantity) -> bool:
        """Whether a billing record bills this energy quantity (``billing.quantities``)."""
        return quantity.value in self.billing.quantities

    def declared_classes(self) -> dict[Obis, int]:
        """Every object of the profile, OBIS -> class id."""
        found: dict[Obis, int] = {self.clock.obis: 8, self.association.obis: 15}
        found.update({obj.obis: obj.class_id for obj in self.objects})
        found.update({spec.obis: 7 for spec in self.profiles().values()})
        if self.disconnect_control is not None:
            found[self.disconnect_control.obis] = 70
        return found

    def profiles(self) -> dict[str, ProfileSpec]:
        found: dict[str, ProfileSpec] = {"load_profile": self.load_profile}
        if self.billing_profile is not None:
            found["billing_profile"] = self.billing_profile
        if self.event_log is not None:
            found["event_log"] = self.event_log
        return found

    def object_by_obis(self, obis: Obis) -> ObjectSpec | None:
        for obj in self.objects:
            if obj.obis == obis:
                return obj
        return None
