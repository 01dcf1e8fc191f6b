"""Meters: the registry list, and one meter's page (registry data, last register reads, its
intervals as a chart with their quality, open findings, read jobs, and "Read now")."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from headend.api.pages.interval_chart import interval_chart, quality_class
from headend.api.pages.web import (
    Ctx,
    Page,
    PageError,
    PageRoute,
    billing_periods,
    need,
    parse_day,
    redirect,
    render,
)
from headend.domain.enums import MeterStatus, ReadKind, Role
from headend.services.billing.service import parse_period
from headend.services.reporting.readings import RegisterRow

router = APIRouter(include_in_schema=False, route_class=PageRoute)
PAGE = 100
MAX_CHART_DAYS = 14
REGISTER_LOOKBACK = timedelta(days=35)
READ_KINDS = (ReadKind.REGISTERS, ReadKind.CLOCK, ReadKind.LOAD_PROFILE, ReadKind.FULL)


@router.get("/meters", response_class=HTMLResponse)
def meters(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    q: Annotated[str | None, Query(max_length=32)] = None,
    after: Annotated[str | None, Query(max_length=32)] = None,
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    status: MeterStatus | None = None,
) -> Response:
    need(viewer, Role.TECHNICIAN, "the meter registry")
    """The registry a page at a time; a meter id typed in the search box opens that meter,
    or, when there is none by that id, the list from where it would be."""
    missing = None
    if q and q.strip():
        wanted = q.strip()
        if ctx.registry.find(wanted) is None:
            missing, after = wanted, wanted
        else:
            return redirect(f"/meters/{quote(wanted, safe='')}")
    rows = ctx.registry.meters(
        after=after or None, limit=PAGE, gateway=gateway or None, status=status
    )
    return render(
        request,
        "meters.html",
        viewer,
        rows=rows,
        missing=missing,
        gateway=gateway or "",
        status_filter=status,
        statuses=list(MeterStatus),
        next_after=rows[-1]["meter_id"] if len(rows) == PAGE else None,
    )


def _latest_registers(rows: list[RegisterRow]) -> list[RegisterRow]:
    latest: dict[str, RegisterRow] = {}
    for row in rows:  # ordered by OBIS, then time
        latest[row.obis] = row
    return list(latest.values())


@router.get("/meters/{meter_id}", response_class=HTMLResponse)
def meter(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    meter_id: str,
    start_text: Annotated[str | None, Query(alias="start")] = None,
    end_text: Annotated[str | None, Query(alias="end")] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    need(viewer, Role.TECHNICIAN, "a meter's page")
    tz = ctx.settings.tz
    registry = ctx.registry.find(meter_id)
    if registry is None:
        raise PageError(404, f"there is no meter {meter_id} in the registry")
    today = ctx.dashboard.today()
    last_day = parse_day(end_text, today, "end")
    first_day = parse_day(start_text, last_day - timedelta(days=1), "start")
    if first_day > last_day:
        raise PageError(422, f"start: {first_day} is after end {last_day}")
    if (last_day - first_day).days >= MAX_CHART_DAYS:
        raise PageError(422, f"end: show at most {MAX_CHART_DAYS} days at a time")
    start = datetime.combine(first_day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    intervals = ctx.readings.intervals(meter_id, start, end)
    channels = sorted({r.channel for r in intervals})
    if channel not in channels:
        channel = "1.0.1.8.0.255" if "1.0.1.8.0.255" in channels else next(iter(channels), None)
    shown = [r for r in intervals if r.channel == channel]
    now = ctx.dashboard.clock()
    registers = _latest_registers(ctx.readings.registers(meter_id, now - REGISTER_LOOKBACK, now))
    billing = [
        ctx.billing.record(meter_id, parse_period(label, None, None, tz))
        for label in billing_periods(last_day, today)
    ]
    return render(
        request,
        "meter.html",
        viewer,
        meter_id=meter_id,
        registry=registry,
        registers=registers,
        billing=billing,
        first_day=first_day,
        last_day=last_day,
        max_days=MAX_CHART_DAYS,
        channel=channel,
        channels=channels,
        chart=interval_chart(shown, start, end, tz, channel) if shown and channel else None,
        intervals=[(r, quality_class(r)) for r in shown],
        findings=ctx.reports.open_findings(meter_id=meter_id, limit=100),
        jobs=ctx.dashboard.job_history(meter_id, 20),
        may_read=viewer.may(Role.TECHNICIAN),
        may_edit=viewer.may(Role.OPERATOR),
        read_kinds=READ_KINDS,
    )
