"""Building each meter's ``BillingRecord`` from what ``PageReader`` read for its page.

The rules of quality and billability are ``headend.domain.billing.judge``'s; this module
takes the readings to the record's values: boundary reads (a register read, else the load
profile's capture), consumption, the time-of-use split, maximum demand, interval counts, and
the version hash of every input used.
"""

from __future__ import annotations

import hashlib
import json
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
    Source,
    TouSplit,
    judge,
    notes_on,
    plain,
)
from headend.domain.local_days import seconds
from headend.domain.quality import Quality
from headend.domain.tou import PERIODS, TouPeriod
from headend.services.billing.meters import MeterModel, MeterRow
from headend.services.billing.reads import PageData
from headend.services.collection.landing import normalise

RULES = "billing-1"  # part of every version hash: bump it when the rules change the numbers
MICRO = 6  # interval values are stored as integers of 10**-6 kWh


Built = tuple[BillingRecord, str]  # a record and its JSON (``model_dump_json``)

# json.dumps(default=str) without its check for cycles: the version hash's inputs have none
_encode = json.JSONEncoder(default=str, check_circular=False).encode


def build_records(page: PageData, meters: Sequence[MeterRow]) -> list[Built]:
    """The meters' records, each with its JSON, written once for the version hash and kept."""
    builder = _Builder(page)
    return [builder.record(m, page.models[m.device_profile], page.bounds[m.pk]) for m in meters]


def _micro(value: int) -> Decimal:
    return Decimal(value).scaleb(-MICRO)


class _Ends:
    """A meter's boundary instants (opening, closing), their epoch seconds (as in the keys of
    the page's reads) and their text in the version hash."""

    __slots__ = ("at", "seconds", "text")

    def __init__(
        self, at: tuple[datetime, datetime], seconds: tuple[int, int], text: tuple[str, str]
    ) -> None:
        self.at = at
        self.seconds = seconds
        self.text = text


class _Builder:
    def __init__(self, page: PageData) -> None:
        span = self.span = page.span
        self.registers = page.registers
        self.captures = page.captures
        self.summary = page.summary
        self.tou = page.tou
        self.period = Period(start=span.start, end=span.end, label=span.label, timezone=page.tz.key)
        self.month_start = page.month_start
        self.texts: dict[tuple[int, int], tuple[str, str]] = {}

    def ends(self, bounds: tuple[datetime, datetime]) -> _Ends:
        key = (seconds(bounds[0]), seconds(bounds[1]))
        text = self.texts.get(key)
        if text is None:  # str(), as _encode's default writes a datetime
            text = self.texts[key] = (str(bounds[0]), str(bounds[1]))
        return _Ends(bounds, key, text)

    def record(
        self, meter: MeterRow, model: MeterModel, bounds: tuple[datetime, datetime]
    ) -> Built:
        pk = meter.pk
        ends = self.ends(bounds)
        multiplier = plain(meter.ct_ratio * meter.vt_ratio)
        used: list[Any] = []
        energies = [
            (name, self._energy(pk, model, obis, ends, multiplier, used))
            for name, obis in [("import", model.import_obis), ("export", model.export_obis)]
            if obis is not None
        ]
        # export is judged only where the profile bills it; otherwise it is only reported
        billed = [(n, e) for n, e in energies if n == "import" or model.export_billed]
        unbilled = [(n, e) for n, e in energies if n != "import" and not model.export_billed]
        verdict = judge(billed)
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
            tou=self._tou(pk, model, ends, multiplier, used),
            max_demand=self._demand(pk, model, ends, multiplier, used),
            quality=verdict.quality,
            billable=verdict.billable,
            reason=verdict.reason,
            not_billed=tuple(name for name, _ in unbilled),
            notes=notes_on(unbilled),
            version="",
        )
        used.append(sorted((c, self.summary.get((pk, c), [])) for c in model.channels()))
        content = record.model_dump_json(exclude={"version"})
        # a record that bills all it reports hashes as before these two fields were added
        hashed = (
            content.removesuffix(_ALL_BILLED) + "}" if content.endswith(_ALL_BILLED) else content
        )
        digest = hashlib.sha256(_encode([RULES, hashed, used]).encode())
        version = digest.hexdigest()[:16]
        # version is the last field: the whole record's JSON is the content's with it added
        text = f'{content[:-1]},"version":"{version}"}}'
        return record.model_copy(update={"version": version}), text

    def _read(
        self, pk: int, obis: str, ends: _Ends, side: int, used: list[Any]
    ) -> RegisterRead | None:
        key = (pk, obis, ends.seconds[side])
        row = self.registers.get(key)
        if row is not None:
            used.append((obis, ends.text[side], row.version))
            value, source = row.value, "register"
        else:
            row = self.captures.get(key)
            if row is None:
                return None
            value, source = row.cumulative, "load_profile"
        return RegisterRead(
            obis=obis,
            value_kwh=plain(value),
            read_at=ends.at[side],
            quality=row.quality,
            source=source,
        )

    def _energy(
        self,
        pk: int,
        model: MeterModel,
        obis: str,
        ends: _Ends,
        multiplier: Decimal,
        used: list[Any],
    ) -> Energy:
        """Reads at both ends (before the multiplier), consumption and interval sum after it."""
        opening = self._read(pk, obis, ends, 0, used)
        closing = self._read(pk, obis, ends, 1, used)
        p = model.period_s
        expected = 0
        if obis in model.captured:
            expected = seconds(self.span.end) // p - seconds(self.span.start) // p
        counts = dict.fromkeys(_BUCKETS, 0)
        with_value = total = 0
        for quality, _, valued, value, _ in self.summary.get((pk, obis), ()):
            counts[_BUCKET_OF[quality]] += valued
            with_value += valued
            total += value
        missing = max(expected - with_value, 0)
        intervals = IntervalCompleteness(
            channel=obis,
            interval_minutes=p // 60,
            expected=expected,
            actual=counts["actual"],
            estimated=counts["estimated"],
            edited=counts["edited"],
            suspect=counts["suspect"],
            unvalidated=counts["unvalidated"],
            missing=missing,
        )
        interval_kwh = plain(_micro(total) * multiplier) if with_value else None
        consumption, source = None, None
        if opening is not None and closing is not None:
            consumption = plain((closing.value_kwh - opening.value_kwh) * multiplier)
            source = "registers"
        elif expected and missing == 0 and interval_kwh is not None:
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
        self, pk: int, model: MeterModel, ends: _Ends, multiplier: Decimal, used: list[Any]
    ) -> TouSplit:
        reads = self._tariff_reads(pk, model, ends)
        if reads is not None:
            totals: dict[TouPeriod, Decimal] = dict.fromkeys(PERIODS, Decimal(0))
            for obis, period, opening, closing in reads:
                used.append((obis, ends.text[0], opening.version))
                used.append((obis, ends.text[1], closing.version))
                totals[period] += plain(closing.value) - plain(opening.value)
            source: Source = "registers"
        elif pk in self.tou:
            totals = {period: _micro(v) for period, v in self.tou[pk].items()}
            source = "intervals"
        else:
            return TouSplit(peak_kwh=None, normal_kwh=None, off_peak_kwh=None, source="intervals")
        return TouSplit(
            peak_kwh=plain(totals[TouPeriod.PEAK] * multiplier),
            normal_kwh=plain(totals[TouPeriod.NORMAL] * multiplier),
            off_peak_kwh=plain(totals[TouPeriod.OFF_PEAK] * multiplier),
            source=source,
        )

    def _tariff_reads(
        self, pk: int, model: MeterModel, ends: _Ends
    ) -> list[tuple[str, TouPeriod, Any, Any]] | None:
        """The register rows of every tariff at both ends, or None if a read is missing
        (as ``has_tariff_reads``, by which the reader chose the meters split by intervals)."""
        if not model.tariffs:
            return None
        first, last = ends.seconds
        reads = []
        for obis, period in model.tariffs:
            opening = self.registers.get((pk, obis, first))
            closing = self.registers.get((pk, obis, last))
            if opening is None or closing is None:
                return None
            reads.append((obis, period, opening, closing))
        return reads

    def _demand(
        self, pk: int, model: MeterModel, ends: _Ends, multiplier: Decimal, used: list[Any]
    ) -> MaxDemand | None:
        """The demand register at the period end, if its maximum is the period's: captured in
        the period, with the period inside the month the register's maximum runs over."""
        if model.demand_obis is None or self.span.start < self.month_start:
            return None
        row = self.registers.get((pk, model.demand_obis, ends.seconds[1]))
        if row is None or row.capture_time is None:
            return None
        if not self.span.start < row.capture_time <= self.span.end:
            return None  # captured at the end of its demand interval, as intervals end
        kw, unit = normalise(row.value, row.unit or model.demand_unit)
        if unit != "kW":
            return None
        used.append((model.demand_obis, ends.text[1], row.version))
        return MaxDemand(
            kw=plain(kw * multiplier), at=row.capture_time, read_at=ends.at[1], quality=row.quality
        )


_ALL_BILLED = ',"not_billed":[],"notes":null}'  # the end of such a record's JSON

_BUCKETS = ("actual", "estimated", "edited", "suspect", "unvalidated", "missing")


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


_BUCKET_OF = {q.value: _bucket(q) for q in Quality}  # the summary's quality text -> bucket
