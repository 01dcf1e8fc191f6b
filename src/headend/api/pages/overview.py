"""The fleet at a glance: meters by state, the day's read-success rate, the last 30 days,
the gateways with the most failed meters and, for operators, the quirks learned of meter
models."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headend.api.pages.svg import DayRate, success_chart
from headend.api.pages.web import Ctx, Page, PageRoute, billing_periods, parse_day, render
from headend.domain.enums import JobState, MeterStatus

router = APIRouter(include_in_schema=False, route_class=PageRoute)
CHART_DAYS = 30
TOP_GATEWAYS = 5


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    day_text: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    day = parse_day(day_text, ctx.dashboard.today())
    first = day - timedelta(days=CHART_DAYS - 1)
    statuses = ctx.dashboard.meters_by_status()
    rates = {r.day: r for r in ctx.reports.success_rates(first, day, "all")}
    days = [
        DayRate(d, rates[d].attempted, rates[d].succeeded) if d in rates else DayRate(d, 0, 0)
        for d in (first + timedelta(days=i) for i in range(CHART_DAYS))
    ]
    today = days[-1]
    active = statuses[MeterStatus.ACTIVE]
    by_gateway = ctx.reports.success_rates(day, day, "gateway")
    worst = sorted(
        (r for r in by_gateway if r.failed), key=lambda r: (-r.failed, r.rate, r.group or "")
    )[:TOP_GATEWAYS]
    queue = ctx.jobs.queue_depth()
    return render(
        request,
        "overview.html",
        viewer,
        day=day,
        is_today=day == ctx.dashboard.today(),
        statuses=statuses,
        today=today,
        read_states=[
            ("Read", today.succeeded),
            ("Failed", today.attempted - today.succeeded),
            ("Not attempted", max(active - today.attempted, 0)),
        ],
        chart=success_chart(days),
        days=days,
        worst=worst,
        queue=[(state, queue.get(state, 0)) for state in JobState if state in queue],
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
        billing_periods=billing_periods(day, ctx.dashboard.today()),
        quirks=ctx.quirks.listing() if viewer.may("operator") else [],
    )
