"""What the billing service reads for a page of meters.

``PageReader.read`` runs a fixed handful of statements per page (listed in
``headend.services.billing``) and returns them as ``PageData``, from which
``headend.services.billing_records`` builds the records. ``current_intervals`` (the current
version of every interval in a span) is shared with the NEM12 writer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Select, Subquery, case, func, select, type_coerce
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from headend.domain.quality import Quality
from headend.domain.tou import TouCalendar, TouPeriod, utc_offsets
from headend.profiles import DeviceProfile, Quantity, load_profile
from headend.protocol.units import unit_symbol
from headend.store.base import table_of
from headend.store.models import IntervalReading, Meter, RegisterReading


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


_METER_COLUMNS = (
    Meter.id,
    Meter.meter_id,
    Meter.service_point,
    Meter.customer_ref,
    Meter.device_profile,
    Meter.ct_ratio,
    Meter.vt_ratio,
)


def meter_page(session: Session, after: str | None, size: int) -> list[MeterRow]:
    """The next ``size`` meters in meter-id order after ``after``."""
    query = select(*_METER_COLUMNS).order_by(Meter.meter_id).limit(size)
    if after is not None:
        query = query.where(Meter.meter_id > after)
    return [MeterRow(*row) for row in session.execute(query)]


def meters_named(session: Session, meter_ids: Sequence[str]) -> list[MeterRow]:
    query = select(*_METER_COLUMNS).where(Meter.meter_id.in_(list(meter_ids)))
    return [MeterRow(*row) for row in session.execute(query.order_by(Meter.meter_id))]


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
        )

    def channels(self) -> list[str]:
        """The load-profile channels a record counts: import, and export if captured."""
        wanted = [self.import_obis, self.export_obis]
        return [c for c in wanted if c is not None and c in self.captured]


def models_of(meters: Iterable[MeterRow]) -> dict[str, MeterModel]:
    return {name: MeterModel.of(load_profile(name)) for name in {m.device_profile for m in meters}}


# -- statements ---------------------------------------------------------------------------


class _EpochSeconds(FunctionElement[int]):
    """Seconds since 1970 of a UTC timestamp column, as an integer."""

    type = BigInteger()
    inherit_cache = True


@compiles(_EpochSeconds, "postgresql")
def _epoch_postgresql(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(_EpochSeconds, "sqlite")
def _epoch_sqlite(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text (headend.store.types.UtcDateTime)
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def current_intervals(
    session: Session,
    pks: Sequence[int],
    channels: Sequence[str],
    after: datetime,
    until: datetime,
    *extra: str,
) -> Subquery:
    """The current (highest) version of each interval ending in ``(after, until]``: columns
    meter_id, channel, interval_end, version, value (integer micro-kWh), quality, ``extra``."""
    t = table_of(IntervalReading)
    columns = [
        t.c.meter_id,
        t.c.channel,
        t.c.interval_end,
        t.c.version,
        type_coerce(t.c.value, BigInteger).label("value"),
        t.c.quality,
        *(t.c[name] for name in extra),
    ]
    where = (
        t.c.meter_id.in_(list(pks)),
        t.c.channel.in_(list(channels)),
        t.c.interval_end > after,
        t.c.interval_end <= until,
    )
    key = (t.c.meter_id, t.c.channel, t.c.interval_end)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # the unique index (meter_id, channel, interval_end, version) walked backwards
        newest = [c.desc() for c in (*key, t.c.version)]
        return _distinct_on(select(*columns).where(*where), key).order_by(*newest).subquery()
    if dialect == "sqlite":
        # SQLite takes the other columns of a max() group from the row holding the maximum
        columns[3] = func.max(t.c.version).label("version")
        return select(*columns).where(*where).group_by(*key).subquery()
    latest = func.max(t.c.version).over(partition_by=key).label("latest")
    ranked = select(*columns, latest).where(*where).subquery()
    names = [c.name for c in columns]
    return (
        select(*(ranked.c[n] for n in names)).where(ranked.c.version == ranked.c.latest).subquery()
    )


def _distinct_on(query: Select[Any], key: Sequence[ColumnElement[Any]]) -> Select[Any]:
    extension = getattr(postgresql, "distinct_on", None)  # SQLAlchemy 2.1; 2.0 had distinct()
    return query.ext(extension(*key)) if extension is not None else query.distinct(*key)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def _utc(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def _offset_spans(tz: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``[a, b)`` spans covering the instants ``[lo, hi)``, each with one UTC offset."""
    samples = np.append(np.arange(lo, hi, 3600, dtype=np.int64), np.int64(hi - 1))
    offsets = utc_offsets(tz, samples)
    spans: list[tuple[int, int, int]] = []
    start = lo
    for k in np.flatnonzero(np.diff(offsets)).tolist():
        before, after = int(samples[k]), int(samples[k + 1])  # it changes in (before, after]
        while after - before > 1:
            mid = (before + after) // 2
            same = utc_offsets(tz, np.array([mid], dtype=np.int64))[0] == offsets[k]
            before, after = (mid, after) if same else (before, mid)
        spans.append((start, after, int(offsets[k])))
        start = after
    spans.append((start, hi, int(offsets[-1])))
    return spans


# -- the page reader ----------------------------------------------------------------------

Key = tuple[int, str, datetime]  # meter pk, OBIS code, instant
Summary = dict[tuple[int, str], list[tuple[str, int, int, int, int]]]


@dataclass(frozen=True)
class PageData:
    """What a page of meters needs for its records, as read from the store.

    ``registers``: the newest version of each register read at a boundary; ``captures``: the
    load profile's register captures at those instants; ``summary``: per meter and channel,
    (quality, intervals, intervals with a value, sum in micro-kWh, sum of version numbers);
    ``tou``: import by period (micro-kWh) of the meters whose split comes from intervals;
    ``month_start``: where the maximum-demand register's month begins.
    """

    span: Span
    tz: ZoneInfo
    models: dict[str, MeterModel]
    bounds: dict[int, tuple[datetime, datetime]]  # the boundary instants of each meter
    registers: dict[Key, Any]
    captures: dict[Key, Any]
    summary: Summary
    tou: dict[int, dict[TouPeriod, int]]
    month_start: datetime


class PageReader:
    def __init__(self, tz: ZoneInfo, calendar: TouCalendar) -> None:
        self.tz = tz
        self.calendar = calendar
        minutes = {
            t.hour * 60 + t.minute
            for version in calendar.versions
            for day in (*version.week, *(s for _, s in version.special_days))
            for t, _ in day.switches
        }
        self.segments = sorted(minutes)  # minutes of the day where some day's period changes
        self._periods: dict[tuple[int, int], TouPeriod] = {}  # (local day, segment) -> period

    def read(self, session: Session, meters: Sequence[MeterRow], span: Span) -> PageData:
        """Everything the records of these meters need, in a fixed number of statements."""
        models = models_of(meters)
        start, end = _seconds(span.start), _seconds(span.end)
        bounds: dict[int, tuple[datetime, datetime]] = {}
        for m in meters:  # the last interval ends at or before each end of the period
            period_s = models[m.device_profile].period_s
            bounds[m.pk] = (_utc(start // period_s * period_s), _utc(end // period_s * period_s))
        pks = [m.pk for m in meters]
        instants = sorted({at for pair in bounds.values() for at in pair})
        codes = {o for mo in models.values() for o in _register_codes(mo)}
        registers = self._registers(session, pks, codes, instants)
        channels = sorted({c for mo in models.values() for c in mo.channels()})
        captures = self._captures(session, pks, channels, instants)
        summary = self._summary(session, pks, channels, span)
        by_intervals: dict[tuple[int, str], list[int]] = defaultdict(list)
        for m in meters:
            model = models[m.device_profile]
            if not has_tariff_reads(m.pk, model, registers, bounds[m.pk]):
                by_intervals[(model.period_s, model.import_obis)].append(m.pk)
        tou = self._tou(session, by_intervals, span)
        month_start = datetime.combine(
            (span.end - timedelta(microseconds=1)).astimezone(self.tz).date().replace(day=1),
            time(),
            self.tz,
        )
        return PageData(
            span, self.tz, models, bounds, registers, captures, summary, tou, month_start
        )

    def _registers(
        self, session: Session, pks: list[int], codes: set[str], instants: list[datetime]
    ) -> dict[Key, Any]:
        t = table_of(RegisterReading)
        rows = session.execute(
            select(
                t.c.meter_id,
                t.c.obis,
                t.c.read_at,
                t.c.version,
                t.c.value,
                t.c.unit,
                t.c.capture_time,
                t.c.quality,
            ).where(t.c.meter_id.in_(pks), t.c.obis.in_(sorted(codes)), t.c.read_at.in_(instants))
        )
        found: dict[Key, Any] = {}
        for row in rows:
            key = (row.meter_id, row.obis, row.read_at)
            if row.value is not None and (key not in found or row.version > found[key].version):
                found[key] = row
        return found

    def _captures(
        self, session: Session, pks: list[int], channels: list[str], instants: list[datetime]
    ) -> dict[Key, Any]:
        t = table_of(IntervalReading)
        rows = session.execute(
            select(t.c.meter_id, t.c.channel, t.c.interval_end, t.c.cumulative, t.c.quality).where(
                t.c.meter_id.in_(pks),
                t.c.channel.in_(channels),
                t.c.interval_end.in_(instants),
                t.c.version == 0,
                t.c.cumulative.is_not(None),
            )
        )
        return {(r.meter_id, r.channel, r.interval_end): r for r in rows}

    def _summary(
        self, session: Session, pks: list[int], channels: list[str], span: Span
    ) -> Summary:
        """Per meter and channel: (quality, rows, rows with a value, sum, sum of versions)."""
        found: Summary = defaultdict(list)
        if not channels:
            return found
        cur = current_intervals(session, pks, channels, span.start, span.end)
        rows = session.execute(
            select(
                cur.c.meter_id,
                cur.c.channel,
                cur.c.quality,
                func.count(),
                func.count(cur.c.value),
                func.sum(cur.c.value),
                func.sum(cur.c.version),
            ).group_by(cur.c.meter_id, cur.c.channel, cur.c.quality)
        )
        for pk, channel, quality, n, valued, total, versions in rows:
            found[(pk, channel)].append(
                (Quality(quality).value, int(n), int(valued), int(total or 0), int(versions))
            )
        for entries in found.values():
            entries.sort()
        return found

    def _tou(
        self, session: Session, groups: dict[tuple[int, str], list[int]], span: Span
    ) -> dict[int, dict[TouPeriod, int]]:
        """Import of each meter by period (micro-kWh), intervals taken by their local start."""
        sums: dict[int, dict[TouPeriod, int]] = defaultdict(lambda: dict.fromkeys(TouPeriod, 0))
        start, end = _seconds(span.start), _seconds(span.end)
        for (period_s, channel), pks in groups.items():
            # interval starts run over [start - p + 1, end - p + 1)
            for a, b, offset in _offset_spans(self.tz, start - period_s + 1, end - period_s + 1):
                after, until = _utc(a + period_s - 1), _utc(b + period_s - 1)
                cur = current_intervals(session, pks, [channel], after, until)
                local = _EpochSeconds(cur.c.interval_end) + (offset - period_s)
                minute = local % 86400 // 60
                segment = case(
                    *((minute < m, k) for k, m in enumerate(self.segments[1:])),
                    else_=len(self.segments) - 1,
                )
                parts = (
                    select(
                        cur.c.meter_id,
                        (local // 86400).label("day"),
                        segment.label("seg"),
                        cur.c.value,
                    )
                    .where(cur.c.value.is_not(None))
                    .subquery()
                )
                rows = session.execute(
                    select(
                        parts.c.meter_id, parts.c.day, parts.c.seg, func.sum(parts.c.value)
                    ).group_by(parts.c.meter_id, parts.c.day, parts.c.seg)
                )
                for pk, day, seg, total in rows:
                    sums[pk][self._period_of(int(day), int(seg))] += int(total)
        return sums

    def _period_of(self, day: int, segment: int) -> TouPeriod:
        found = self._periods.get((day, segment))
        if found is None:
            local = date(1970, 1, 1) + timedelta(days=day)
            schedule = self.calendar.version_on(local).day_schedule(local)
            found = self._periods[(day, segment)] = schedule.period_at_minute(
                self.segments[segment]
            )
        return found


def _register_codes(model: MeterModel) -> list[str]:
    codes = [model.import_obis, *(o for o, _ in model.tariffs)]
    return codes + [c for c in (model.export_obis, model.demand_obis) if c is not None]


def has_tariff_reads(
    pk: int, model: MeterModel, registers: dict[Key, Any], bounds: tuple[datetime, datetime]
) -> bool:
    return bool(model.tariffs) and all(
        (pk, obis, at) in registers for obis, _ in model.tariffs for at in bounds
    )
