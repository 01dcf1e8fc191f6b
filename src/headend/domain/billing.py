"""Billing determinants: what a bill needs from one meter over one period, and how good it is.

A ``BillingRecord`` carries the opening and closing register reads of import (A+, 1.0.1.8.0)
and export (A-, 1.0.2.8.0, where the meter measures it), the consumption between them after
the CT/VT multiplier, the time-of-use split, the maximum demand, how complete the period's
validated intervals are, an overall ``quality``, whether the record is ``billable`` and why
not, and a ``version`` that changes whenever an input changes.

Consumption comes from the registers, as EVN bills: (closing - opening) x multiplier. Only
when a boundary read is missing does it come from the sum of the intervals (``source``
"intervals"), and then the record is not billable.

The time-of-use split comes from the tariff registers when the meter's device profile maps
them to every period (``tariffs.registers``; T1 normal, T2 peak, T3 off-peak on the EVN
profiles) and both ends have their reads; otherwise from the current intervals, each in the
period of its start in the utility's local time (``headend.domain.tou``).

Maximum demand is the demand register read at the period end, kept only when its maximum was
captured inside the period (after its start, at or before its end, as intervals end) and the
period lies in the local month the register runs over (it restarts each month), so that it is
the period's maximum; otherwise it is null.

``version`` hashes the record with the version numbers, counts and sums behind it: a new
version of any interval in the period (late data, VEE, an edit) or of a register read used
changes it; reading the record again does not.

The quality of a record, worst first (``judge``):

* ``missing``: no import read at either end and no import interval with a value.
* ``partial``: the period is not fully covered: an import (or export) register read is missing
  at the start or the end, or intervals are missing (no value, not even an estimate) or not
  yet validated (still as read, quality RAW).
* ``suspect``: the data is there but fails a check: suspect intervals (VEE held them), a
  register that went backwards, a suspect register read, or registers that disagree with
  intervals that are all actual.
* ``estimated``: complete and consistent, but some intervals are estimated or edited (the
  reason says how many), or a register read is an estimate.
* ``actual``: every interval of the period is actual and both register reads are there.

Only the energy directions the meter's device profile bills (``billing.quantities``; import
always, export where the profile names ``A-``) are judged. A direction the meter measures but
the profile does not bill (a household meter's export) is still reported, its name listed in
``not_billed``, and what it lacks is said in ``notes`` ("export not billed: no export register
read at the period start"); it never changes the quality or billability.

``billable`` is true for ``actual`` and ``estimated``. ``reason`` says why a record is not
billable ("no import register read at the period end; 3 of 2976 import intervals suspect"),
or for an estimated record what was estimated ("billable on estimates: 7 of 48 import
intervals estimated"); an actual record has none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from headend.domain.quality import Quality

Source = Literal["registers", "intervals"]


def plain(value: Decimal) -> Decimal:
    """The same number without trailing zeros and never in exponent form (1.500 -> 1.5)."""
    reduced = value.normalize()
    # a normalised number is written with "E+" exactly when its exponent is positive;
    # cheaper to ask than as_tuple(), and billing asks for every number of every record
    if "E+" in str(reduced):
        return reduced.quantize(_ONE)
    return reduced


_ONE = Decimal(1)


class RecordQuality(StrEnum):
    ACTUAL = "actual"
    ESTIMATED = "estimated"
    SUSPECT = "suspect"
    PARTIAL = "partial"
    MISSING = "missing"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Frozen):
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    label: str  # "2026-11", "2026-11-05" or "<start>/<end>"
    timezone: str  # the utility's time zone, in which months, days and TOU periods are taken


class RegisterRead(_Frozen):
    """A register at a period boundary, as the meter showed it (before the multiplier).

    ``source`` is "register" for a register or billing-profile read taken at that instant,
    "load_profile" for the load profile's capture of the register at an interval end.
    """

    obis: str
    value_kwh: Decimal
    read_at: datetime
    quality: Quality
    source: Literal["register", "load_profile"]


class IntervalCompleteness(_Frozen):
    """The period's intervals of one channel by the quality of their current version.

    ``expected`` follows from the capture period; ``missing`` intervals have no value at all
    (never read and not estimated, or MISSING); ``unvalidated`` ones are still as read (RAW).
    """

    channel: str
    interval_minutes: int
    expected: int
    actual: int
    estimated: int
    edited: int
    suspect: int
    unvalidated: int
    missing: int

    @property
    def with_value(self) -> int:
        return self.actual + self.estimated + self.edited + self.suspect + self.unvalidated


class Energy(_Frozen):
    """One energy direction over the period; kWh after the multiplier unless named otherwise."""

    obis: str
    opening: RegisterRead | None
    closing: RegisterRead | None
    consumption_kwh: Decimal | None
    source: Source | None  # where consumption_kwh comes from
    interval_kwh: Decimal | None  # the sum of the current interval values, as a cross-check
    intervals: IntervalCompleteness


class TouSplit(_Frozen):
    """Import by time-of-use period, kWh after the multiplier.

    "registers": the meter's tariff registers, mapped to periods by its device profile;
    "intervals": validated intervals, each in the period of its start in the utility's time.
    """

    peak_kwh: Decimal | None
    normal_kwh: Decimal | None
    off_peak_kwh: Decimal | None
    source: Source


class MaxDemand(_Frozen):
    """The maximum-demand register at the period end, when its maximum fell in the period."""

    kw: Decimal  # after the multiplier
    at: datetime  # when the maximum was captured
    read_at: datetime
    quality: Quality


class BillingRecord(_Frozen):
    meter_id: str
    service_point: str | None
    customer_ref: str | None
    device_profile: str
    period: Period
    multiplier: Decimal  # ct_ratio x vt_ratio
    ct_ratio: Decimal
    vt_ratio: Decimal
    import_energy: Energy
    export_energy: Energy | None  # None: the meter does not measure export
    tou: TouSplit
    max_demand: MaxDemand | None
    quality: RecordQuality
    billable: bool
    reason: str | None
    # energy directions reported in the record but not billed (the device profile's
    # ``billing.quantities`` leaves them out): "export"; they never make a record unbillable
    not_billed: tuple[str, ...] = ()
    notes: str | None = None  # what the directions not billed lack, for information
    version: str  # a short hash of every input; changes with late data or an edit

    @classmethod
    def csv_header(cls) -> list[str]:
        return [name for name, _ in _columns(None)]

    def csv_row(self) -> list[str]:
        return [_cell(value) for _, value in _columns(self)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _columns(record: BillingRecord | None) -> Iterator[tuple[str, Any]]:
    """The flat CSV columns of a record (names only when ``record`` is None)."""
    r = record
    yield from (
        ("meter_id", r and r.meter_id),
        ("service_point", r and r.service_point),
        ("customer_ref", r and r.customer_ref),
        ("device_profile", r and r.device_profile),
        ("period_start", r and r.period.start),
        ("period_end", r and r.period.end),
        ("period_label", r and r.period.label),
        ("timezone", r and r.period.timezone),
        ("multiplier", r and r.multiplier),
        ("ct_ratio", r and r.ct_ratio),
        ("vt_ratio", r and r.vt_ratio),
    )
    for prefix in ("import", "export"):
        e = (r.import_energy if prefix == "import" else r.export_energy) if r else None
        for end in ("opening", "closing"):
            read = getattr(e, end) if e else None
            yield f"{prefix}_{end}_kwh", read and read.value_kwh
            yield f"{prefix}_{end}_at", read and read.read_at
            yield f"{prefix}_{end}_quality", read and read.quality.value
        yield f"{prefix}_kwh", e and e.consumption_kwh
        yield f"{prefix}_source", e and e.source
        yield f"{prefix}_interval_kwh", e and e.interval_kwh
        for count in IntervalCompleteness.model_fields:
            if count not in ("channel", "interval_minutes"):
                yield f"{prefix}_intervals_{count}", e and getattr(e.intervals, count)
    md = r.max_demand if r else None
    yield from (
        ("peak_kwh", r and r.tou.peak_kwh),
        ("normal_kwh", r and r.tou.normal_kwh),
        ("off_peak_kwh", r and r.tou.off_peak_kwh),
        ("tou_source", r and r.tou.source),
        ("max_demand_kw", md and md.kw),
        ("max_demand_at", md and md.at),
        ("quality", r and r.quality.value),
        ("billable", r and r.billable),
        ("reason", r and r.reason),
        ("version", r and r.version),
    )


# -- judging a record ---------------------------------------------------------------------


@dataclass
class Verdict:
    quality: RecordQuality
    billable: bool
    reason: str | None


@dataclass
class _Issues:
    partial: list[str] = field(default_factory=list)
    suspect: list[str] = field(default_factory=list)
    estimated: list[str] = field(default_factory=list)


def judge(energies: Sequence[tuple[str, Energy]]) -> Verdict:
    """The quality of a record from its energy blocks (``("import", ...)`` first), by the
    rules of the module docstring."""
    issues = _Issues()
    for name, energy in energies:
        _check(name, energy, issues)
    _, first = energies[0]
    if first.opening is None and first.closing is None and first.intervals.with_value == 0:
        return Verdict(RecordQuality.MISSING, False, "no import reads or intervals in the period")
    if issues.partial or issues.suspect:
        quality = RecordQuality.PARTIAL if issues.partial else RecordQuality.SUSPECT
        return Verdict(quality, False, "; ".join(issues.partial + issues.suspect))
    if issues.estimated:
        return Verdict(
            RecordQuality.ESTIMATED, True, "billable on estimates: " + ", ".join(issues.estimated)
        )
    return Verdict(RecordQuality.ACTUAL, True, None)


def notes_on(energies: Sequence[tuple[str, Energy]]) -> str | None:
    """What the energy directions reported but not billed lack or fail, for information:
    "export not billed: no export register read at the period start"; None if nothing."""
    found = []
    for name, energy in energies:
        issues = _Issues()
        _check(name, energy, issues)
        said = issues.partial + issues.suspect + issues.estimated
        if said:
            found.append(f"{name} not billed: " + "; ".join(said))
    return "; ".join(found) or None


def _check(name: str, energy: Energy, issues: _Issues) -> None:
    for end, read in (("start", energy.opening), ("end", energy.closing)):
        if read is None:
            issues.partial.append(f"no {name} register read at the period {end}")
        elif read.quality is Quality.SUSPECT:
            issues.suspect.append(f"the {name} register read at the period {end} is suspect")
        elif read.quality.is_estimate or read.quality is Quality.EDITED:
            issues.estimated.append(f"the {name} register read at the period {end}")
    counts = energy.intervals
    if counts.missing:
        issues.partial.append(f"{counts.missing} of {counts.expected} {name} intervals missing")
    if counts.unvalidated:
        issues.partial.append(
            f"{counts.unvalidated} of {counts.expected} {name} intervals not validated yet"
        )
    if counts.suspect:
        issues.suspect.append(f"{counts.suspect} of {counts.expected} {name} intervals suspect")
    if counts.estimated:
        issues.estimated.append(
            f"{counts.estimated} of {counts.expected} {name} intervals estimated"
        )
    if counts.edited:
        issues.estimated.append(f"{counts.edited} of {counts.expected} {name} intervals edited")
    opening, closing = energy.opening, energy.closing
    if opening is None or closing is None:
        return
    if closing.value_kwh < opening.value_kwh:
        issues.suspect.append(
            f"the {name} register went back from {opening.value_kwh} to {closing.value_kwh} kWh"
        )
    elif (
        counts.expected
        and counts.actual == counts.expected
        and energy.source == "registers"
        and energy.interval_kwh is not None
        and energy.interval_kwh != energy.consumption_kwh
    ):
        issues.suspect.append(
            f"the {name} registers give {energy.consumption_kwh} kWh but the intervals "
            f"add up to {energy.interval_kwh} kWh"
        )
