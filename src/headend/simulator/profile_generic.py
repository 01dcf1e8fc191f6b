"""Profile generic (class 7): load profile, daily billing profile, standard event log.

The buffer (attribute 2) is built from the consumption model at the moment of the request and
can be read whole, by time range (selector 1, restricted by the clock column) or by entry numbers
(selector 2, numbered from 1 = the oldest entry, 0 = the last); both selectors can pick columns.
``build_objects`` lays out every object a device profile declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from headend.domain.obis import Obis
from headend.profiles.model import (
    CaptureObjectSpec,
    DeviceProfile,
    ObjectSpec,
    ProfileSpec,
    Quantity,
)
from headend.simulator import cosem
from headend.simulator.cosem import CaptureRef, EntrySelector, RangeSelector
from headend.simulator.objects import (
    READ,
    AccessDenied,
    AssociationObject,
    ClockObject,
    Context,
    CosemObject,
    DataObject,
    DisconnectControlObject,
    RegisterObject,
    Result,
    encode_quantity,
)
from headend.simulator.spec import Quirk

_EPSILON = timedelta(microseconds=1)


class ProfileKind(StrEnum):
    LOAD = "load_profile"
    BILLING = "billing_profile"
    EVENTS = "event_log"


@dataclass(frozen=True)
class Row:
    """One buffer entry, whatever the profile: the fields its capture objects read."""

    time: datetime
    status: int = 0
    registers: Mapping[str, int] = field(default_factory=dict)
    max_demand_w: int = 0
    max_demand_time: datetime | None = None
    code: int = 0


class ProfileGenericObject(CosemObject):
    class_id = 7
    version = 1
    ATTRIBUTES: ClassVar[Mapping[int, int]] = {index: READ for index in range(1, 9)}
    METHODS = (1, 2)  # reset, capture: refused

    def __init__(self, spec: ProfileSpec, kind: ProfileKind, profile: DeviceProfile) -> None:
        super().__init__(spec.obis)
        self.spec = spec
        self.kind = kind
        self.clock_obis = profile.clock.obis
        self.columns: list[tuple[CaptureObjectSpec, ObjectSpec | None]] = [
            (capture, profile.object_by_obis(capture.obis)) for capture in spec.capture_objects
        ]
        quirks = profile.quirks
        allowed = (1,) * quirks.supports_range_access + (2,) * quirks.supports_entry_access
        self.selectors = {2: allowed} if allowed else {}

    # --- attributes ---------------------------------------------------------------------------

    def get(self, attribute: int, selection: object, ctx: Context) -> bytes:
        if attribute != 2 or selection is None:
            return super().get(attribute, selection, ctx)
        if ctx.spec.has(Quirk.NO_SELECTIVE_ACCESS):
            raise AccessDenied(Result.OTHER_REASON)
        if isinstance(selection, RangeSelector) and 1 in self.selectors.get(2, ()):
            return self._by_range(selection, ctx)
        if isinstance(selection, EntrySelector) and 2 in self.selectors.get(2, ()):
            return self._by_entry(selection, ctx)
        raise AccessDenied(Result.OTHER_REASON)

    def read(self, attribute: int, ctx: Context) -> bytes:
        if attribute == 2:
            return self._encode(self.rows(ctx), range(len(self.columns)), ctx)
        if attribute == 3:
            return cosem.array([self._ref(capture).to_bytes() for capture, _ in self.columns])
        if attribute == 4:
            return cosem.double_long_unsigned(self.capture_period_s(ctx))
        if attribute == 5:
            return cosem.enum(1)  # fifo
        if attribute == 6:
            return CaptureRef(0, Obis(0, 0, 0, 0, 0, 0), 0).to_bytes()
        if attribute == 7:
            return cosem.double_long_unsigned(len(self.rows(ctx)))
        return cosem.double_long_unsigned(self.spec.profile_entries)

    def capture_period_s(self, ctx: Context) -> int:
        if self.kind is ProfileKind.LOAD:
            return ctx.spec.capture_period_s
        return self.spec.capture_period_s

    @staticmethod
    def _ref(capture: CaptureObjectSpec) -> CaptureRef:
        return CaptureRef(capture.class_id, capture.obis, capture.attribute, capture.data_index)

    # --- the buffer ---------------------------------------------------------------------------

    def rows(
        self, ctx: Context, low: datetime | None = None, high: datetime | None = None
    ) -> list[Row]:
        """The entries in use, oldest first, limited to ``low <= time <= high`` when given."""
        now = ctx.now
        entries = self.spec.profile_entries
        if self.kind is ProfileKind.LOAD:
            period = timedelta(seconds=ctx.spec.capture_period_s)
            newest = datetime.fromtimestamp(
                now.timestamp() // period.total_seconds() * period.total_seconds(), now.tzinfo
            )
            start = max(ctx.data.first_interval_end(now), newest - (entries - 1) * period)
            lo = max(start, low) if low else start
            hi = min(now, high) if high else now
            if lo > hi:
                return []
            return [
                Row(time=row.end, status=row.status, registers=row.registers)
                for row in ctx.data.intervals(lo - _EPSILON, hi)
                if lo <= row.end <= hi
            ]
        found: Sequence[Row]
        if self.kind is ProfileKind.BILLING:
            window = now - timedelta(days=entries + 1)
            found = [
                Row(
                    time=row.time,
                    registers=row.registers,
                    max_demand_w=row.max_demand_w,
                    max_demand_time=row.max_demand_time,
                )
                for row in ctx.data.billing_rows(window, now)
            ][-entries:]
        else:
            window = now - timedelta(days=ctx.spec.history_days + 2)
            found = [Row(time=row.time, code=row.code) for row in ctx.data.events(window, now)]
            found = found[-entries:]
        return [
            row
            for row in found
            if (low is None or row.time >= low) and (high is None or row.time <= high)
        ]

    def _by_range(self, selector: RangeSelector, ctx: Context) -> bytes:
        restricting = selector.restricting
        if (restricting.class_id, restricting.obis, restricting.attribute) != (
            8,
            self.clock_obis,
            2,
        ):
            raise AccessDenied(Result.OTHER_REASON)
        try:
            low = ctx.decode_time(selector.from_raw)
            high = ctx.decode_time(selector.to_raw)
        except cosem.DataError as exc:
            raise AccessDenied(Result.OTHER_REASON) from exc
        columns: Sequence[int] = range(len(self.columns))
        if selector.selected:
            refs = [self._ref(capture) for capture, _ in self.columns]
            try:
                columns = [refs.index(ref) for ref in selector.selected]
            except ValueError as exc:
                raise AccessDenied(Result.OTHER_REASON) from exc
        return self._encode(self.rows(ctx, low, high), columns, ctx)

    def _by_entry(self, selector: EntrySelector, ctx: Context) -> bytes:
        rows = self.rows(ctx)
        first = max(selector.from_entry, 1)
        last = selector.to_entry or len(rows)
        first_column = max(selector.from_selected_value, 1)
        last_column = selector.to_selected_value or len(self.columns)
        if first_column > len(self.columns) or last_column > len(self.columns):
            raise AccessDenied(Result.OTHER_REASON)
        return self._encode(rows[first - 1 : last], range(first_column - 1, last_column), ctx)

    def _encode(self, rows: list[Row], columns: Sequence[int], ctx: Context) -> bytes:
        cells = [self._column(index, ctx) for index in columns]
        return cosem.array([cosem.structure(*(cell(row) for cell in cells)) for row in rows])

    def _column(self, index: int, ctx: Context) -> Callable[[Row], bytes]:
        """How one column's cell is encoded from a row."""
        capture, obj = self.columns[index]
        if capture.class_id == 8:
            return lambda row: ctx.encode_time(row.time)
        if obj is None:
            return lambda row: cosem.null()
        quantity = obj.quantity
        if quantity is Quantity.AMR_STATUS:
            return lambda row: encode_quantity(obj, row.status)
        if quantity is Quantity.EVENT_CODE:
            return lambda row: encode_quantity(obj, row.code)
        if quantity is Quantity.SERIAL_NUMBER:
            return lambda row: encode_quantity(obj, ctx.data.serial_number(row.time))
        if quantity is Quantity.FIRMWARE:
            return lambda row: encode_quantity(obj, ctx.spec.firmware)
        if quantity is Quantity.MAX_DEMAND:
            if capture.attribute == 5:
                return lambda row: ctx.encode_time(row.max_demand_time or row.time)
            return lambda row: encode_quantity(obj, row.max_demand_w)
        name = quantity.value

        def register(row: Row) -> bytes:
            found = row.registers.get(name)
            return cosem.null() if found is None else encode_quantity(obj, found)

        return register


def build_objects(profile: DeviceProfile) -> list[CosemObject]:
    """The meter's objects in object-list order."""
    objects: list[CosemObject] = [ClockObject(profile.clock.obis)]
    for spec in profile.objects:
        objects.append(DataObject(spec) if spec.class_id == 1 else RegisterObject(spec))
    kinds = {p.value: p for p in ProfileKind}
    for section, profile_spec in profile.profiles().items():
        objects.append(ProfileGenericObject(profile_spec, kinds[section], profile))
    if profile.disconnect_control is not None:
        control = profile.disconnect_control
        objects.append(DisconnectControlObject(control.obis, control.control_mode))
    objects.append(AssociationObject(profile.association.obis))
    return objects
