"""Reports for operators: failed reads of a day, read success rates, open VEE findings."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from headend.api.auth import Operator
from headend.api.deps import Ctx
from headend.api.problems import PROBLEM_RESPONSES, invalid
from headend.services.reporting.reports import ReportService

router = APIRouter(prefix="/reports", tags=["reports"], responses=PROBLEM_RESPONSES)
MAX_DAYS = 366
FIRST, LAST = date(1970, 1, 2), date(2199, 12, 31)  # days a report can be asked for


def _day(field: str, day: date) -> date:
    if not FIRST <= day <= LAST:
        raise invalid(field, f"{day} is outside {FIRST} to {LAST}")
    return day


@router.get("/failed-reads")
def failed_reads(
    ctx: Ctx,
    _: Operator,
    day: Annotated[date, Query(alias="date", examples=["2026-11-26"])],
    gateway: str | None = None,
    device_profile: str | None = None,
    category: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Meters whose reads failed on a day (in the utility's time zone): last success,
    consecutive failures, category and detail, gateway and device profile."""
    day = _day("date", day)
    rows = ctx.reports.failed_reads(
        day, gateway=gateway, device_profile=device_profile, category=category
    )
    if format == "csv":
        out = io.StringIO()
        ReportService.failed_reads_csv(rows, out)
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="failed-reads-{day}.csv"'},
        )
    return rows


@router.get("/read-success")
def read_success(
    ctx: Ctx,
    _: Operator,
    start: Annotated[date, Query(examples=["2026-11-01"])],
    end: Annotated[date, Query(examples=["2026-11-26"])],
    by: Literal["gateway", "device_profile", "all"] = "gateway",
) -> Any:
    """The daily read-success rate per gateway or device profile over [start, end]."""
    start, end = _day("start", start), _day("end", end)
    if end < start:
        raise invalid("end", f"{end} is before start {start}")
    if (end - start).days >= MAX_DAYS:
        raise invalid("end", f"ask for at most {MAX_DAYS} days at a time")
    return ctx.reports.success_rates(start, end, by)


@router.get("/findings")
def findings(
    ctx: Ctx,
    _: Operator,
    meter_id: str | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Cursor: the last finding id seen")
    ] = None,
) -> Any:
    """Open VEE findings, oldest first."""
    return ctx.reports.open_findings(meter_id=meter_id, rule=rule, limit=limit, after_id=after)
