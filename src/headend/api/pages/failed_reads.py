"""The failed-read report of a day as a table to filter, sort and download."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from headend.api.pages.web import Ctx, Page, PageRoute, need, parse_day, render
from headend.domain.enums import Role
from headend.domain.reports import FailedRead
from headend.services.reporting.reports import ReportService

router = APIRouter(include_in_schema=False, route_class=PageRoute)
SHOWN = 1000  # rows in the page at most; the CSV has them all
DayQ = Annotated[str | None, Query(alias="date")]


def _report(
    ctx: Ctx, day: date, gateway: str | None, profile: str | None, category: str | None
) -> tuple[list[FailedRead], list[FailedRead]]:
    """The day's whole report, and the rows the filters keep."""
    rows = ctx.reports.failed_reads(day, category=category or None)
    every = ctx.reports.failed_reads(day) if category else rows
    kept = [
        r
        for r in rows
        if (not gateway or r.gateway == gateway) and (not profile or r.device_profile == profile)
    ]
    return every, kept


@router.get("/failed-reads", response_class=HTMLResponse)
def failed_reads(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    day_text: DayQ = None,
    gateway: str | None = None,
    device_profile: str | None = None,
    category: str | None = None,
) -> HTMLResponse:
    need(viewer, Role.OPERATOR, "the failed-read report")
    day = parse_day(day_text, ctx.dashboard.today())
    every, kept = _report(ctx, day, gateway, device_profile, category)
    filters = {"gateway": gateway, "device_profile": device_profile, "category": category}
    return render(
        request,
        "failed_reads.html",
        viewer,
        day=day,
        rows=kept[:SHOWN],
        total=len(kept),
        whole=len(every),
        shown_max=SHOWN,
        gateways=sorted({r.gateway for r in every}),
        profiles=sorted({r.device_profile for r in every}),
        categories=sorted({str(r.category) for r in every if r.category}),
        filters=filters,
        csv_query=urlencode({"date": str(day), **{k: v for k, v in filters.items() if v}}),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    )


@router.get("/failed-reads.csv")
def failed_reads_csv(
    ctx: Ctx,
    viewer: Page,
    day_text: DayQ = None,
    gateway: str | None = None,
    device_profile: str | None = None,
    category: str | None = None,
) -> Response:
    need(viewer, Role.OPERATOR, "the failed-read report")
    day = parse_day(day_text, ctx.dashboard.today())
    _, kept = _report(ctx, day, gateway, device_profile, category)
    out = io.StringIO()
    ReportService.failed_reads_csv(kept, out)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="failed-reads-{day}.csv"',
            "Cache-Control": "no-store",
        },
    )
