"""What the billing service reads for a page of meters.

``PageReader.read`` runs a fixed handful of statements per page (listed in
``headend.services.billing.service``) and returns them as ``PageData``, from which
``headend.services.billing.records`` builds the records. Which days of each meter come from
the day rollups and which from the intervals is ``headend.store.queries.day_rollups``'s split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from headend.domain.local_days import SECONDS_PER_DAY, LocalDays, offset_spans, seconds, utc
from headend.domain.quality import Quality
from headend.domain.tou import PERIODS, TouCalendar, TouPeriod
from headend.services.billing.meters import (
    MeterModel,
    MeterRow,
    Span,
    meter_page,
    meters_named,
    models_of,
    rolled_channels,
)
from headend.store.queries.billing import (
    boundary_captures,
    boundary_registers,
    interval_sums,
    segment_sums,
)
from headend.store.queries.day_rollups import (
    Split,
    Sums,
    bounds,
    read_day_ends,
    read_rollups,
    split_period,
)
from headend.store.queries.intervals import Capture
from headend.store.queries.rollups import rollup_basis

__all__ = [
    "MeterModel",
    "MeterRow",
    "PageData",
    "PageReader",
    "Span",
    "has_tariff_reads",
    "meter_page",
    "meters_named",
    "models_of",
]

# -- the page reader ----------------------------------------------------------------------

Key = tuple[int, str, int]  # meter pk, OBIS code, instant (epoch seconds: cheap to hash)
_KEPT_INSTANTS = 1024  # boundary instants whose local day the reader keeps
Summary = dict[tuple[int, str], list[tuple[str, int, int, int, int]]]


@dataclass(frozen=True)
class PageData:
    """What a page of meters needs for its records, as read from the store.

    ``registers``: the newest version of each register read at a boundary, keyed by epoch
    seconds; ``captures``: the load profile's register captures at those instants, at least
    of every channel and end without its register read; ``summary``: per meter and channel,
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
    def __init__(
        self,
        tz: ZoneInfo,
        calendar: TouCalendar,
        *,
        rollups: bool = True,
        profiles_dir: Path | None = None,
    ) -> None:
        """``profiles_dir``: the folder of device profiles (None: the shipped one)."""
        self.tz = tz
        self.profiles_dir = profiles_dir
        self.calendar = calendar
        self.rollups = rollups
        self.days = LocalDays(tz)
        self._midnights: dict[datetime, int | None] = {}  # see _day_ended
        minutes = {
            t.hour * 60 + t.minute
            for version in calendar.versions
            for day in (*version.week, *(s for _, s in version.special_days))
            for t, _ in day.switches
        }
        self.segments = sorted(minutes)  # minutes of the day where some day's period changes
        self._periods: dict[tuple[int, int], TouPeriod] = {}  # (local day, segment) -> period

    @cached_property
    def basis(self) -> str:
        """The basis of rollups this reader can use (the profiles as first read); one no
        stored rollups have when it reads intervals alone."""
        if not self.rollups:
            return "intervals alone"
        return rollup_basis(self.tz, self.calendar, rolled_channels(self.profiles_dir))

    def read(self, session: Session, meters: Sequence[MeterRow], span: Span) -> PageData:
        """Everything the records of these meters need, in a fixed number of statements (one
        fewer when every boundary read is a register read)."""
        models = models_of(meters, self.profiles_dir)
        start, end = seconds(span.start), seconds(span.end)
        bounds: dict[int, tuple[datetime, datetime]] = {}
        for m in meters:  # the last interval ends at or before each end of the period
            period_s = models[m.device_profile].period_s
            bounds[m.pk] = (utc(start // period_s * period_s), utc(end // period_s * period_s))
        pks = [m.pk for m in meters]
        instants = sorted({at for pair in bounds.values() for at in pair})
        codes = {o for mo in models.values() for o in _register_codes(mo)}
        registers = self._registers(session, pks, codes, instants)
        channels = sorted({c for mo in models.values() for c in mo.channels()})
        # a boundary read falls back on the load profile's capture only where the register
        # read is not there: on most pages the export channel alone
        lacking = [
            (m, channel, at)
            for m in meters
            for channel in models[m.device_profile].channels()
            for at in bounds[m.pk]
            if (m.pk, channel, seconds(at)) not in registers
        ]
        captures = self._captures(session, lacking) if lacking else {}
        split = split_period(self.days, span.start, span.end, meters, self.basis)
        imports = {mo.import_obis for mo in models.values()}
        rolled = read_rollups(session, split.runs, sorted({*channels, *imports}))
        summary = self._summary(session, pks, channels, split, rolled)
        by_intervals: dict[tuple[int, str], list[int]] = defaultdict(list)
        for m in meters:
            model = models[m.device_profile]
            if not has_tariff_reads(m.pk, model, registers, bounds[m.pk]):
                by_intervals[(model.period_s, model.import_obis)].append(m.pk)
        tou = self._tou(session, by_intervals, split, rolled)
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
        rows = boundary_registers(session, pks, sorted(codes), instants)
        found: dict[Key, Any] = {}
        for row in rows:
            key = (row.meter_id, row.obis, row.at)
            if row.value is not None and (key not in found or row.version > found[key].version):
                found[key] = row
        return found

    def _captures(
        self, session: Session, lacking: list[tuple[MeterRow, str, datetime]]
    ) -> dict[Key, Any]:
        """The load profile's captures as read at these instants: at a local midnight whose
        day the meter's rollups hold, from the day ends the rollup pass kept; elsewhere (part
        days, days not rolled up yet) from the interval blocks."""
        ends: dict[tuple[int, str, int], int] = {}  # (meter, channel, day) -> instant
        elsewhere: set[Key] = set()
        instants: set[datetime] = set()  # those of elsewhere
        for m, channel, at in lacking:
            day = self._day_ended(at)
            if day is not None and self._rolled(m, day):
                ends[(m.pk, channel, day)] = seconds(at)
            else:
                elsewhere.add((m.pk, channel, seconds(at)))
                instants.add(at)
        found: dict[Key, Any] = {}
        if ends:
            pks = sorted({pk for pk, _, _ in ends})
            channels = sorted({channel for _, channel, _ in ends})
            numbers = sorted({day for _, _, day in ends})
            for key, (capture, quality) in read_day_ends(session, pks, channels, numbers).items():
                end = ends.get(key)
                if end is not None:
                    found[(key[0], key[1], end)] = Capture(key[0], key[1], end, capture, quality)
        if elsewhere:
            rows = boundary_captures(
                session,
                sorted({pk for pk, _, _ in elsewhere}),
                sorted({channel for _, channel, _ in elsewhere}),
                sorted(instants),
            )
            for r in rows:
                if (r.meter_id, r.channel, r.at) in elsewhere:
                    found[(r.meter_id, r.channel, r.at)] = r
        return found

    def _day_ended(self, at: datetime) -> int | None:
        """The local day ending at ``at`` when ``at`` is a local midnight, else None (kept:
        the same few boundary instants come back page after page)."""
        if at in self._midnights:
            return self._midnights[at]
        second = seconds(at)
        midnight = (second + self.days.offset(second)) % SECONDS_PER_DAY == 0
        if len(self._midnights) >= _KEPT_INSTANTS:
            self._midnights.clear()
        found = self._midnights[at] = self.days.day_of_end(at) if midnight else None
        return found

    def _rolled(self, meter: MeterRow, day: int) -> bool:
        """Whether the meter's stored rollups hold local day ``day`` exactly."""
        if meter.rollup_basis != self.basis:
            return False
        return meter.rollup_from is None or day < self.days.day_of_end(meter.rollup_from)

    def _summary(
        self, session: Session, pks: list[int], channels: list[str], split: Split, rolled: Sums
    ) -> Summary:
        """Per meter and channel: (quality, rows, rows with a value, sum, sum of versions),
        from the rollups and the intervals of the rest of the period."""
        counts: Sums = defaultdict(dict)
        for key, by_quality in rolled.items():
            if key[1] in channels:
                for quality, sums in by_quality.items():
                    counts[key][quality] = sums[:4]
        groups = split.by_ranges(pks)
        if channels and groups:
            after, until = bounds(groups)
            rows = interval_sums(session, groups, channels, after, until)
            for pk, channel, code, n, valued, total, versions in rows:
                sums = [int(n), int(valued), int(total or 0), int(versions)]
                before = counts[(pk, channel)].get(Quality(code))
                counts[(pk, channel)][Quality(code)] = (
                    sums if before is None else [x + y for x, y in zip(before, sums, strict=True)]
                )
        found: Summary = {}
        for key, by_quality in counts.items():
            found[key] = sorted((q.value, s[0], s[1], s[2], s[3]) for q, s in by_quality.items())
        return found

    def _tou(
        self,
        session: Session,
        groups: dict[tuple[int, str], list[int]],
        split: Split,
        rolled: Sums,
    ) -> dict[int, dict[TouPeriod, int]]:
        """Import of each meter by period (micro-kWh), intervals taken by their local start:
        the rollups' sums, and the rest of the period from the intervals."""
        sums: dict[int, dict[TouPeriod, int]] = defaultdict(lambda: dict.fromkeys(PERIODS, 0))
        for (_, channel), pks in groups.items():
            for pk in pks:
                for quality_sums in rolled.get((pk, channel), {}).values():
                    if quality_sums[1]:  # some interval with a value
                        for period, value in zip(PERIODS, quality_sums[4:], strict=True):
                            sums[pk][period] += value
        for (period_s, channel), pks in groups.items():
            ranged = split.by_ranges(pks)
            if not ranged:
                continue
            lo, hi = (seconds(at) for at in bounds(ranged))
            # interval starts run over [lo - p + 1, hi - p + 1)
            for a, b, offset in offset_spans(self.tz, lo - period_s + 1, hi - period_s + 1):
                after, until = utc(a + period_s - 1), utc(b + period_s - 1)
                rows = segment_sums(
                    session, ranged, channel, after, until, offset - period_s, self.segments
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
    if not model.tariffs:
        return False
    instants = [seconds(at) for at in bounds]
    return all((pk, obis, at) in registers for obis, _ in model.tariffs for at in instants)
