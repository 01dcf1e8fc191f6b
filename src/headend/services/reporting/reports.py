"""Collection reports (failed reads, success rates) and the list of open VEE findings.

Rules, all evaluated over finished read attempts (``read_attempts``; an attempt belongs to the
local day, in the utility's time zone, on which it *started*):

* A meter is in the **failed-read report** of a day when its last attempt that day failed,
  i.e. it failed that day and did not succeed later that day. A success earlier in the day
  does not keep it out; a success after the last failure does. Its category and detail are
  those of that last attempt (``internal`` marks a bug of ours, reported apart from the
  meters' and the registry's faults); ``consecutive_failures`` counts its failed attempts since its
  last success (any earlier day), both as of the end of the day.
* A meter **succeeded** on a day when at least one of its attempts that day succeeded; it was
  **attempted** when it has any attempt that day. Days and groups with no attempt have no
  row. A meter is grouped under its current gateway and device profile.
* **Open findings** are listed oldest first (by id) and paged by id: pass the last id seen as
  ``after_id``. A VEE pass that validates a period again replaces that period's open findings
  with new rows, so a finding may disappear from a later page and come back with a higher id.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TextIO, get_args
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, ReadKind
from headend.domain.reports import FailedRead, Finding, Grouping, SuccessRate
from headend.services.errors import FieldError, Invalid
from headend.store.models import VeeFinding
from headend.store.repositories.reports import ReportRepository

MAX_DAYS = 366
MAX_PAGE = 5000
RESOLUTION_NOTE = "resolution_note"  # kept in the finding's params until it has a column
FAILED_READ_COLUMNS: tuple[str, ...] = (
    "meter_id",
    "gateway",
    "gateway_kind",
    "device_profile",
    "category",
    "detail",
    "last_attempt_at",
    "last_success_at",
    "consecutive_failures",
    "attempts",
    "job_state",
)
_RATE_PLACES = Decimal("0.0001")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReportError(Invalid):
    """A report asked for with parameters it cannot be made from; ``field`` names the one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field, errors=[FieldError(field, message)] if field else ())


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of a calendar day in ``tz``."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def finding_of(row: VeeFinding, meter_id: str) -> Finding:
    params = dict(row.params or {})
    note = params.pop(RESOLUTION_NOTE, None)
    return Finding(
        id=row.id,
        meter_id=meter_id,
        channel=row.channel,
        rule=row.rule,
        start=row.start,
        end=row.end,
        detail=row.detail,
        params=params,
        status="resolved" if row.status == "resolved" else "open",
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=str(note) if note is not None else None,
    )


def _category(value: str | FailureCategory | None) -> FailureCategory | None:
    if value is None or isinstance(value, FailureCategory):
        return value
    try:
        return FailureCategory(value)
    except ValueError:
        known = ", ".join(c.value for c in FailureCategory)
        raise ReportError(
            f"unknown failure category {value!r}; one of {known}", "category"
        ) from None


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class ReportService:
    def __init__(self, session_factory: sessionmaker[Session], tz: ZoneInfo) -> None:
        self.session_factory = session_factory
        self.tz = tz

    def failed_reads(
        self,
        day: date,
        *,
        gateway: str | None = None,
        device_profile: str | None = None,
        category: str | FailureCategory | None = None,
        kind: ReadKind | None = None,
    ) -> list[FailedRead]:
        """Meters whose reads failed on ``day`` (local) and did not succeed later that day,
        most consecutive failures first, then by meter id. ``kind`` keeps only attempts of
        jobs of that read kind (e.g. the scheduled ``full`` reads, leaving out on-demand
        clock reads)."""
        wanted = _category(category)
        lo, hi = local_day_bounds(day, self.tz)
        with self.session_factory() as session:
            rows = ReportRepository(session).failed_reads(
                lo,
                hi,
                gateway=gateway,
                device_profile=device_profile,
                category=wanted,
                kind=kind,
            )
            return [
                FailedRead(
                    meter_id=row.meter_id,
                    gateway=row.gateway,
                    gateway_kind=row.gateway_kind,
                    device_profile=row.device_profile,
                    category=row.category,
                    detail=row.detail,
                    last_attempt_at=row.last_attempt_at,
                    last_success_at=row.last_success_at,
                    consecutive_failures=int(row.consecutive_failures),
                    attempts=int(row.attempts),
                    job_state=row.job_state,
                    internal=row.category == FailureCategory.INTERNAL,
                )
                for row in rows
            ]

    def success_rates(self, start: date, end: date, by: Grouping) -> list[SuccessRate]:
        """Per local day in ``[start, end]`` and per group: meters attempted and read."""
        if by not in get_args(Grouping):
            raise ReportError(f"cannot group by {by!r}; use gateway, device_profile or all", "by")
        if end < start:
            raise ReportError(f"end {end} is before start {start}", "end")
        days = (end - start).days + 1
        if days > MAX_DAYS:
            raise ReportError(f"{days} days asked for; at most {MAX_DAYS} at a time", "end")
        bounds = [local_day_bounds(start + timedelta(days=i), self.tz)[0] for i in range(days)]
        bounds.append(local_day_bounds(end, self.tz)[1])
        with self.session_factory() as session:
            rows = ReportRepository(session).success_counts(bounds, by)
        return [
            SuccessRate(
                day=start + timedelta(days=int(day)),
                group=group,
                attempted=attempted,
                succeeded=succeeded,
                failed=attempted - succeeded,
                rate=(Decimal(succeeded) / Decimal(attempted)).quantize(
                    _RATE_PLACES, rounding=ROUND_HALF_UP
                ),
            )
            for day, group, attempted, succeeded in rows
        ]

    def open_findings(
        self,
        *,
        meter_id: str | None = None,
        rule: str | None = None,
        limit: int = 500,
        after_id: int | None = None,
    ) -> list[Finding]:
        """Open VEE findings, oldest first; the next page starts after the last id seen."""
        if not 1 <= limit <= MAX_PAGE:
            raise ReportError(f"limit must be between 1 and {MAX_PAGE}, not {limit}", "limit")
        if after_id is not None and after_id < 0:
            raise ReportError(f"after_id must not be negative ({after_id})", "after_id")
        with self.session_factory() as session:
            rows = ReportRepository(session).open_findings(
                meter_id=meter_id, rule=rule, limit=limit, after_id=after_id
            )
            return [finding_of(row, meter) for row, meter in rows]

    @staticmethod
    def failed_reads_csv(rows: Iterable[FailedRead], out: TextIO) -> None:
        """Write the report as CSV: a header, then one line per meter; times in UTC ISO 8601."""
        writer = csv.writer(out)
        writer.writerow(FAILED_READ_COLUMNS)
        for row in rows:
            writer.writerow([_cell(getattr(row, name)) for name in FAILED_READ_COLUMNS])
