"""Building each meter's ``BillingRecord`` from what ``PageReader`` read for its page.

The rules of quality and billability are ``headend.domain.billing.judge``'s; this module
takes the readings to the record's values: boundary reads (a register read, else the load
profile's capture), consumption, the time-of-use split, maximum demand, interval counts, and
the version hash of every input used.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from headend.domain.billing import (
    BillingRecord,
    Energy,
    IntervalCompleteness,
    MaxDemand,
    Period,
    RegisterRead,
    TouSplit,
    judge,
    plain,
)
from headend.domain.quality import Quality
from headend.domain.tou import PERIODS, TouPeriod
from headend.services.billing_meters import MeterModel, MeterRow
from headend.services.billing_reads import PageData, has_tariff_reads
from headend.services.landing import normalise
from headend.services.local_days import seconds

RULES = "billing-1"  # part of every version hash: bump it when the rules change the numbers
MICRO = 6  # interval values are stored as integers of 10**-6 kWh


Built = tuple[BillingRecord, str]  # a record and its JSON (``model_dump_json``)


def build_records(page: PageData, meters: Sequence[MeterRow]) -> list[Built]:
    """The meters' records, each with its JSON, written once for the version hash and kept."""
    builder = _Builder(page)
    return [builder.record(m, page.models[m.device_profile], page.bounds[m.pk]) for m in meters]


def _second(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def _micro(value: int) -> Decimal:
    return Decimal(value).scaleb(-MICRO)


class _Builder:
    def __init__(self, page: PageData) -> None:
        self.span = page.span
        self.registers = page.registers
        self.captures = page.captures
        self.summary = page.summary
        self.tou = page.tou
        self.month_start = page.month_start
        self.period = Period(
            start=page.span.start, end=page.span.end, label=page.span.label, timezone=page.tz.key
        )

    def record(
        self, meter: MeterRow, model: MeterModel, bounds: tuple[datetime, datetime]
    ) -> Built:
        multiplier = plain(meter.ct_ratio * meter.vt_ratio)
        used: list[Any] = []
        energies = [
            (name, self._energy(meter.pk, model, obis, bounds, multiplier, used))
            for name, obis in [("import", model.import_obis), ("export", model.export_obis)]
            if obis is not None
        ]
        verdict = judge(energies)
        record = BillingRecord(
            meter_id=meter.meter_id,
            service_point=meter.service_point,
            customer_ref=meter.customer_ref,
            device_profile=meter.device_profile,
            period=self.period,
            multiplier=multiplier,
            ct_ratio=plain(meter.ct_ratio),
            vt_ratio=plain(meter.vt_ratio),
            import_energy=energies[0][1],
            export_energy=energies[1][1] if len(energies) > 1 else None,
            tou=self._tou(meter.pk, model, bounds, multiplier, used),
            max_demand=self._demand(meter.pk, model, bounds[1], multiplier, used),
            quality=verdict.quality,
            billable=verdict.billable,
            reason=verdict.reason,
            version="",
        )
        used.append(sorted((c, self.summary.get((meter.pk, c), [])) for c in model.channels()))
        content = record.model_dump_json(exclude={"version"})
        digest = hashlib.sha256(json.dumps([RULES, content, used], default=str).encode())
        version = digest.hexdigest()[:16]
        # version is the last field: the whole record's JSON is the content's with it added
        text = f'{content[:-1]},"version":"{version}"}}'
        return record.model_copy(update={"version": version}), text

    def _read(self, pk: int, obis: str, at: datetime, used: list[Any]) -> RegisterRead | None:
        key = (pk, obis, seconds(at))
        row = self.registers.get(key)
        if row is not None:
            used.append((obis, at, row.version))
            value, source = row.value, "register"
        else:
            row = self.captures.get(key)
            if row is None:
                return None
            value, source = row.cumulative, "load_profile"
        return RegisterRead(
            obis=obis, value_kwh=plain(value), read_at=at, quality=row.quality, source=source
        )

    def _energy(
        self,
        pk: int,
        model: MeterModel,
        obis: str,
        bounds: tuple[datetime, datetime],
        multiplier: Decimal,
        used: list[Any],
    ) -> Energy:
        """Reads at both ends (before the multiplier), consumption and interval sum after it."""
        opening, closing = (self._read(pk, obis, at, used) for at in bounds)
        p = model.period_s
        expected = 0
        if obis in model.captured:
            expected = _second(self.span.end) // p - _second(self.span.start) // p
        counts: dict[str, int] = defaultdict(int)
        total = 0
        for quality, _, valued, value, _ in self.summary.get((pk, obis), []):
            counts[_bucket(Quality(quality))] += valued
            total += value
        with_value = sum(counts.values())
        intervals = IntervalCompleteness(
            channel=obis,
            interval_minutes=p // 60,
            expected=expected,
            missing=max(expected - with_value, 0),
            **{name: counts[name] for name in _BUCKETS},
        )
        interval_kwh = plain(_micro(total) * multiplier) if with_value else None
        consumption, source = None, None
        if opening is not None and closing is not None:
            consumption = plain((closing.value_kwh - opening.value_kwh) * multiplier)
            source = "registers"
        elif expected and intervals.missing == 0 and interval_kwh is not None:
            consumption, source = interval_kwh, "intervals"
        return Energy(
            obis=obis,
            opening=opening,
            closing=closing,
            consumption_kwh=consumption,
            source=source,
            interval_kwh=interval_kwh,
            intervals=intervals,
        )

    def _tou(
        self,
        pk: int,
        model: MeterModel,
        bounds: tuple[datetime, datetime],
        multiplier: Decimal,
        used: list[Any],
    ) -> TouSplit:
        totals: dict[TouPeriod, Decimal] = dict.fromkeys(PERIODS, Decimal(0))
        if has_tariff_reads(pk, model, self.registers, bounds):
            for obis, period in model.tariffs:
                opening, closing = (self._read(pk, obis, at, used) for at in bounds)
                assert opening is not None and closing is not None
                totals[period] += closing.value_kwh - opening.value_kwh
            source = "registers"
        elif pk in self.tou:
            totals = {period: _micro(v) for period, v in self.tou[pk].items()}
            source = "intervals"
        else:
            return TouSplit(peak_kwh=None, normal_kwh=None, off_peak_kwh=None, source="intervals")
        kwh = {period: plain(v * multiplier) for period, v in totals.items()}
        return TouSplit(
            peak_kwh=kwh[TouPeriod.PEAK],
            normal_kwh=kwh[TouPeriod.NORMAL],
            off_peak_kwh=kwh[TouPeriod.OFF_PEAK],
            source=source,
        )

    def _demand(
        self, pk: int, model: MeterModel, at: datetime, multiplier: Decimal, used: list[Any]
    ) -> MaxDemand | None:
        """The demand register at the period end, if its maximum is the period's: captured in
        the period, with the period inside the month the register's maximum runs over."""
        if model.demand_obis is None or self.span.start < self.month_start:
            return None
        row = self.registers.get((pk, model.demand_obis, seconds(at)))
        if row is None or row.capture_time is None:
            return None
        if not self.span.start < row.capture_time <= self.span.end:
            return None  # captured at the end of its demand interval, as intervals end
        kw, unit = normalise(row.value, row.unit or model.demand_unit)
        if unit != "kW":
            return None
        used.append((model.demand_obis, at, row.version))
        return MaxDemand(
            kw=plain(kw * multiplier), at=row.capture_time, read_at=at, quality=row.quality
        )


_BUCKETS = ("actual", "estimated", "edited", "suspect", "unvalidated")


def _bucket(quality: Quality) -> str:
    if quality in (Quality.VALID, Quality.VERIFIED):
        return "actual"
    if quality is Quality.EDITED:
        return "edited"
    if quality is Quality.SUSPECT:
        return "suspect"
    if quality is Quality.RAW:
        return "unvalidated"
    if quality is Quality.MISSING:
        return "missing"
    return "estimated"
