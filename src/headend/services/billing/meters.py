"""The meters billing reads, and what each meter model measures.

``meter_page`` and ``meters_named`` give a page of meters with what their records need from
the registry, and the freshness of their day rollups (``rollup_from``, and the basis the
stored rollups were computed on); ``MeterModel`` is what a meter's device profile says it
measures. Shared by billing, the NEM12 export and the rollup pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from headend.domain.tou import EVN_TOU_2014, TouCalendar, TouPeriod, calendar_named
from headend.profiles import DeviceProfile, Quantity, load_all, load_profile
from headend.protocol.units import unit_symbol
from headend.store.queries.billing import meter_ids_page, meter_page_rows, named_meter_rows


class Span(Protocol):
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class MeterRow:
    pk: int
    meter_id: str
    service_point: str | None
    customer_ref: str | None
    device_profile: str
    ct_ratio: Decimal
    vt_ratio: Decimal
    rollup_from: datetime | None = None  # the meter's day rollups are stale from here on
    rollup_basis: str | None = None  # what the stored rollups were computed on


def meter_page(session: Session, after: str | None, size: int) -> list[MeterRow]:
    """The next ``size`` meters in meter-id order after ``after``."""
    return [MeterRow(*row) for row in meter_page_rows(session, after, size)]


def meter_ids_after(session: Session, after: str | None, size: int) -> list[str]:
    """The ids of the next ``size`` meters in meter-id order after ``after``."""
    return meter_ids_page(session, after, size)


def meters_named(session: Session, meter_ids: Sequence[str]) -> list[MeterRow]:
    return [MeterRow(*row) for row in named_meter_rows(session, meter_ids)]


@dataclass(frozen=True)
class MeterModel:
    """What a meter model measures, from its device profile."""

    period_s: int  # load-profile capture period
    import_obis: str
    export_obis: str | None  # None: no export register
    captured: frozenset[str]  # registers the load profile captures (its channels)
    tariffs: tuple[tuple[str, TouPeriod], ...]  # tariff register -> period; () if incomplete
    demand_obis: str | None
    demand_unit: str | None  # the profile's unit of the demand register, e.g. "W"
    export_billed: bool = True  # False: export is reported in records but never blocks a bill

    @classmethod
    def of(cls, profile: DeviceProfile) -> MeterModel:
        def obis_of(quantity: Quantity) -> str | None:
            found = next((o for o in profile.objects if o.quantity is quantity), None)
            return str(found.obis) if found is not None else None

        mapping = profile.tariffs.registers if profile.tariffs is not None else {}
        tariffs = tuple(
            (str(o.obis), TouPeriod(mapping[o.tariff]))
            for o in profile.objects
            if o.tariff is not None and o.tariff in mapping
        )
        if {period for _, period in tariffs} != set(TouPeriod):
            tariffs = ()  # registers that do not cover every period cannot split import
        demand = next((o for o in profile.objects if o.quantity is Quantity.MAX_DEMAND), None)
        return cls(
            period_s=profile.load_profile.capture_period_s,
            import_obis=obis_of(Quantity.IMPORT) or "1.0.1.8.0.255",
            export_obis=obis_of(Quantity.EXPORT),
            captured=frozenset(str(c.obis) for c in profile.load_profile.capture_objects),
            tariffs=tariffs,
            demand_obis=str(demand.obis) if demand is not None else None,
            demand_unit=unit_symbol(demand.unit) if demand and demand.unit else None,
            export_billed=profile.billed(Quantity.EXPORT),
        )

    def channels(self) -> list[str]:
        """The load-profile channels a record counts: import, and export if captured."""
        wanted = [self.import_obis, self.export_obis]
        return [c for c in wanted if c is not None and c in self.captured]


def models_of(
    meters: Iterable[MeterRow], profiles_dir: Path | None = None
) -> dict[str, MeterModel]:
    """The model of each meter's device profile, loaded from ``profiles_dir`` (the
    ``profiles_dir`` setting; None: the shipped ``protocols/`` folder)."""
    return {name: _model(name, profiles_dir) for name in {m.device_profile for m in meters}}


MODEL_FRESH_S = 2.0  # a profile file edited on disk is taken up within this many seconds
_MODELS: dict[tuple[str, Path | None], tuple[float, DeviceProfile, MeterModel]] = {}


def _model(name: str, profiles_dir: Path | None = None) -> MeterModel:
    """``MeterModel.of`` the named profile: the file is looked at (one ``stat``) at most every
    ``MODEL_FRESH_S`` seconds, and the model built again only when the file has changed."""
    now = time.monotonic()
    key = (name, profiles_dir)
    found = _MODELS.get(key)
    if found is not None and now - found[0] < MODEL_FRESH_S:
        return found[2]
    profile = load_profile(name, profiles_dir)
    model = found[2] if found is not None and found[1] is profile else MeterModel.of(profile)
    _MODELS[key] = (now, profile, model)
    return model


def rolled_channels(profiles_dir: Path | None = None) -> tuple[str, ...]:
    """The channels billing may read of any meter, and so the ones rolled up by day: every
    device profile's import register and the load-profile channels its records count."""
    found: set[str] = set()
    for profile in load_all(profiles_dir).values():
        model = MeterModel.of(profile)
        found.update(model.channels())
        found.add(model.import_obis)
    return tuple(sorted(found))


def profiles_calendar(tz: ZoneInfo, profiles_dir: Path | None = None) -> TouCalendar:
    """The time-of-use calendar the device profiles' tariff registers follow (their
    ``tariffs.calendar``), in ``tz``; the EVN calendar when no profile has tariffs. Billing
    and the day rollups split every meter's import on one calendar: profiles that name
    different calendars are refused."""
    names = {p.tariffs.calendar for p in load_all(profiles_dir).values() if p.tariffs is not None}
    if len(names) > 1:
        raise ValueError(
            "the device profiles name more than one time-of-use calendar: "
            + ", ".join(sorted(names))
        )
    return calendar_named(names.pop() if names else EVN_TOU_2014, tz)
