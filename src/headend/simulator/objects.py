"""The COSEM objects of a simulated meter, declared by its device profile.

Each object answers GET, SET and ACTION by attribute or method index with encoded COSEM data, or
raises ``AccessDenied`` with the data-access-result a meter gives; nothing here raises for a
client's mistake. Values come from the meter's consumption model (``MeterDataSource``) at the
moment of the request; what a meter remembers between associations (its clock adjustment, the
disconnector) lives in ``MeterState``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from functools import cached_property
from typing import ClassVar
from zoneinfo import ZoneInfo

from headend.domain.obis import Obis
from headend.profiles.model import (
    DeviationSemantics,
    DeviceProfile,
    ObjectSpec,
    Quantity,
    ValueType,
)
from headend.simulator import cosem
from headend.simulator.cosem import Value
from headend.simulator.datasource import MeterDataSource
from headend.simulator.spec import MeterSpec, Quirk


class Result(IntEnum):
    """Data-access-result (also action-result) codes."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    OTHER_REASON = 250


class AccessDenied(Exception):
    """An attribute or method cannot be served; carries the result code to answer with."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.name)
        self.result = result


@dataclass
class MeterState:
    """What a meter keeps between associations."""

    clock_offset: timedelta = timedelta(0)
    output_connected: bool = True
    control_state: int = 1  # 0 disconnected, 1 connected, 2 ready for reconnection


@dataclass
class Context:
    """Everything an object needs to answer one request."""

    now: datetime  # the true time (aware UTC)
    data: MeterDataSource
    spec: MeterSpec
    profile: DeviceProfile
    state: MeterState
    association_status: int = 2  # 0 non-associated, 1 pending, 2 associated
    objects: list[CosemObject] = field(default_factory=list)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.profile.clock.time_zone)

    def encode_time(self, moment: datetime, status: int = 0) -> bytes:
        semantics = self.profile.clock.deviation
        if self.spec.has(Quirk.DEVIATION_UNSPECIFIED):
            semantics = DeviationSemantics.UNSPECIFIED
        return cosem.octet_string(cosem.encode_datetime(moment, self.zone, semantics, status))

    def decode_time(self, raw: bytes) -> datetime:
        return cosem.decode_datetime(raw, self.zone, self.profile.clock.deviation)

    def meter_time(self) -> datetime:
        return self.data.meter_time(self.now) + self.state.clock_offset


READ, WRITE, READ_WRITE = 1, 2, 3


class CosemObject:
    """Base: logical name (attribute 1) and the access rights of the object list."""

    class_id = 0
    version = 0
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {1: READ}  # attribute -> access mode
    METHODS: ClassVar[tuple[int, ...]] = ()

    def __init__(self, obis: Obis) -> None:
        self.obis = obis
        self.attributes: dict[int, int] = dict(self.ATTRIBUTES)
        self.methods: tuple[int, ...] = self.METHODS
        self.selectors: dict[int, tuple[int, ...]] = {}  # attribute -> access selectors

    def get(self, attribute: int, selection: object, ctx: Context) -> bytes:
        if attribute not in self.attributes:
            raise AccessDenied(Result.OBJECT_UNDEFINED)
        if not self.attributes[attribute] & READ:
            raise AccessDenied(Result.READ_WRITE_DENIED)
        if selection is not None:
            raise AccessDenied(Result.OTHER_REASON)
        if attribute == 1:
            return cosem.octet_string(self.obis.to_bytes())
        return self.read(attribute, ctx)

    def read(self, attribute: int, ctx: Context) -> bytes:
        raise AccessDenied(Result.OBJECT_UNAVAILABLE)

    def set(self, attribute: int, value: Value, ctx: Context) -> None:
        if attribute not in self.attributes:
            raise AccessDenied(Result.OBJECT_UNDEFINED)
        if not self.attributes[attribute] & WRITE:
            raise AccessDenied(Result.READ_WRITE_DENIED)
        self.write(attribute, value, ctx)

    def write(self, attribute: int, value: Value, ctx: Context) -> None:
        raise AccessDenied(Result.READ_WRITE_DENIED)

    def action(self, method: int, parameters: Value | None, ctx: Context) -> bytes | None:
        if method not in self.methods:
            raise AccessDenied(Result.OBJECT_UNDEFINED)
        return self.invoke(method, parameters, ctx)

    def invoke(self, method: int, parameters: Value | None, ctx: Context) -> bytes | None:
        raise AccessDenied(Result.READ_WRITE_DENIED)

    def object_list_entry(self) -> bytes:
        attribute_access = [
            cosem.structure(
                cosem.integer(index),
                cosem.enum(mode),
                cosem.array([cosem.integer(s) for s in self.selectors[index]])
                if index in self.selectors
                else cosem.null(),
            )
            for index, mode in sorted(self.attributes.items())
        ]
        method_access = [
            cosem.structure(cosem.integer(index), cosem.enum(1)) for index in self.methods
        ]
        return cosem.structure(
            cosem.long_unsigned(self.class_id),
            cosem.unsigned(self.version),
            cosem.octet_string(self.obis.to_bytes()),
            cosem.structure(cosem.array(attribute_access), cosem.array(method_access)),
        )


_ENCODERS: dict[ValueType, Callable[[int], bytes]] = {
    ValueType.UNSIGNED: cosem.unsigned,
    ValueType.LONG_UNSIGNED: cosem.long_unsigned,
    ValueType.DOUBLE_LONG_UNSIGNED: cosem.double_long_unsigned,
    ValueType.LONG64_UNSIGNED: cosem.long64_unsigned,
}
_BITS = {
    ValueType.UNSIGNED: 8,
    ValueType.LONG_UNSIGNED: 16,
    ValueType.DOUBLE_LONG_UNSIGNED: 32,
    ValueType.LONG64_UNSIGNED: 64,
}


def encode_quantity(spec: ObjectSpec, value: int | str) -> bytes:
    """A value in the object's type: scaled (raw = value / 10**scaler, truncated, as a meter
    display truncates) and wrapped at the type's width, as a register rolls over."""
    vtype = spec.resolved_value_type
    if vtype is ValueType.OCTET_STRING:
        return cosem.octet_string(str(value).encode("ascii"))
    if vtype is ValueType.VISIBLE_STRING:
        return cosem.visible_string(str(value))
    raw = int(value)
    scaler = spec.scaler or 0
    raw = raw // 10**scaler if scaler >= 0 else raw * 10**-scaler
    return _ENCODERS[vtype](raw % (1 << _BITS[vtype]))


class ClockObject(CosemObject):
    """Class 8: time (2), time_zone (3), status (4), DST settings (5-8), clock_base (9)."""

    class_id = 8
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {
        1: READ,
        2: READ_WRITE,
        3: READ,
        4: READ,
        5: READ,
        6: READ,
        7: READ,
        8: READ,
        9: READ,
    }
    METHODS = (1, 2, 3, 4, 5, 6)
    _NO_DATE = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"

    def read(self, attribute: int, ctx: Context) -> bytes:
        if attribute == 2:
            return ctx.encode_time(ctx.meter_time())
        if attribute == 3:
            offset = ctx.meter_time().astimezone(ctx.zone).utcoffset() or timedelta(0)
            minutes = int(offset.total_seconds() // 60)
            from_utc = ctx.profile.clock.deviation is DeviationSemantics.MINUTES_FROM_UTC
            return cosem.long(minutes if from_utc else -minutes)
        if attribute == 4:
            return cosem.unsigned(0)
        if attribute in (5, 6):
            return cosem.octet_string(self._NO_DATE)
        if attribute == 7:
            return cosem.integer(0)
        if attribute == 8:
            return cosem.boolean(False)
        return cosem.enum(1)  # clock_base: internal crystal

    def write(self, attribute: int, value: Value, ctx: Context) -> None:
        if value.tag not in (cosem.OCTET_STRING, cosem.DATE_TIME):
            raise AccessDenied(Result.TYPE_UNMATCHED)
        try:
            wanted = ctx.decode_time(value.as_bytes())
        except cosem.DataError as exc:
            raise AccessDenied(Result.OTHER_REASON) from exc
        ctx.state.clock_offset = wanted - ctx.data.meter_time(ctx.now)

    def invoke(self, method: int, parameters: Value | None, ctx: Context) -> bytes | None:
        current = ctx.meter_time()
        if method in (1, 2, 3):
            step = {1: 900, 2: ctx.spec.capture_period_s, 3: 60}[method]
            epoch = current.replace(hour=0, minute=0, second=0, microsecond=0)
            seconds = (current - epoch).total_seconds()
            target = epoch + timedelta(seconds=round(seconds / step) * step)
        elif method == 6:
            if parameters is None or parameters.tag != cosem.LONG:
                raise AccessDenied(Result.TYPE_UNMATCHED)
            shift = parameters.as_int()
            if not -900 <= shift <= 900:
                raise AccessDenied(Result.OTHER_REASON)
            target = current + timedelta(seconds=shift)
        else:
            raise AccessDenied(Result.OBJECT_UNAVAILABLE)
        ctx.state.clock_offset += target - current
        return None


class DataObject(CosemObject):
    """Class 1: serial number, firmware identifier, AMR profile status, last event code."""

    class_id = 1
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {1: READ, 2: READ}

    def __init__(self, spec: ObjectSpec) -> None:
        super().__init__(spec.obis)
        self.spec = spec

    def read(self, attribute: int, ctx: Context) -> bytes:
        quantity = self.spec.quantity
        if quantity is Quantity.SERIAL_NUMBER:
            return encode_quantity(self.spec, ctx.data.serial_number(ctx.now))
        if quantity is Quantity.FIRMWARE:
            return encode_quantity(self.spec, ctx.spec.firmware)
        if quantity is Quantity.AMR_STATUS:
            period = timedelta(seconds=ctx.spec.capture_period_s)
            rows = ctx.data.intervals(ctx.now - period, ctx.now)
            return encode_quantity(self.spec, rows[-1].status if rows else 0)
        events = ctx.data.events(ctx.now - timedelta(days=ctx.spec.history_days + 1), ctx.now)
        return encode_quantity(self.spec, events[-1].code if events else 0)


class RegisterObject(CosemObject):
    """Class 3 register (value, scaler_unit) and class 4 extended register (+status,
    capture_time): energy totals, tariff registers, maximum demand."""

    def __init__(self, spec: ObjectSpec) -> None:
        super().__init__(spec.obis)
        self.spec = spec
        self.class_id = spec.class_id
        self.attributes = {1: READ, 2: READ, 3: READ}
        if spec.class_id == 4:
            self.attributes = {**self.attributes, 4: READ, 5: READ}
        self.methods = (1,)

    def scaler_unit(self) -> bytes:
        return cosem.structure(
            cosem.integer(self.spec.scaler or 0), cosem.enum(self.spec.unit or 255)
        )

    def read(self, attribute: int, ctx: Context) -> bytes:
        if attribute == 3:
            return self.scaler_unit()
        if attribute == 4:
            return cosem.unsigned(0)
        if self.spec.quantity is Quantity.MAX_DEMAND:
            demand, when = ctx.data.max_demand(ctx.now)
            return encode_quantity(self.spec, demand) if attribute == 2 else ctx.encode_time(when)
        if attribute == 2:
            return encode_quantity(
                self.spec, ctx.data.registers(ctx.now).get(self.spec.quantity, 0)
            )
        return ctx.encode_time(ctx.meter_time())


class DisconnectControlObject(CosemObject):
    """Class 70: output_state (2), control_state (3), control_mode (4); methods
    remote_disconnect (1) and remote_reconnect (2)."""

    class_id = 70
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {1: READ, 2: READ, 3: READ, 4: READ}
    METHODS = (1, 2)

    def __init__(self, obis: Obis, control_mode: int) -> None:
        super().__init__(obis)
        self.control_mode = control_mode

    def read(self, attribute: int, ctx: Context) -> bytes:
        if attribute == 2:
            return cosem.boolean(ctx.state.output_connected)
        if attribute == 3:
            return cosem.enum(ctx.state.control_state)
        return cosem.enum(self.control_mode)

    def invoke(self, method: int, parameters: Value | None, ctx: Context) -> bytes | None:
        if parameters is not None and parameters.tag != cosem.INTEGER:
            raise AccessDenied(Result.TYPE_UNMATCHED)
        ctx.state.output_connected = method == 2
        ctx.state.control_state = 1 if method == 2 else 0
        return None


class AssociationObject(CosemObject):
    """Class 15 (association LN): object_list (2), associated_partners_id (3),
    secret (7, never readable), association_status (8). Method 1, reply_to_HLS_authentication,
    is served by the association itself, which holds the challenges."""

    class_id = 15
    version = 1
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {1: READ, 2: READ, 3: READ, 7: WRITE, 8: READ}
    METHODS = (1,)

    def read(self, attribute: int, ctx: Context) -> bytes:
        if attribute == 2:
            if ctx.spec.has(Quirk.OBJECT_LIST_REFUSED):
                raise AccessDenied(Result.READ_WRITE_DENIED)
            return cosem.array([obj.object_list_entry() for obj in ctx.objects])
        if attribute == 3:
            return cosem.structure(
                cosem.integer(ctx.spec.client_sap), cosem.long_unsigned(ctx.spec.server_logical)
            )
        if attribute == 7:
            raise AccessDenied(Result.READ_WRITE_DENIED)
        return cosem.enum(ctx.association_status)
