"""Gateways: each with its meters, the sessions it carries now, the day's failed meters, and
whether its circuit breaker has paused it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headend.api.pages.web import Ctx, Page, PageRoute, need, parse_day, render
from headend.domain.enums import Role
from headend.domain.reports import SuccessRate
from headend.services.reporting.dashboard import GatewayInfo

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@dataclass(frozen=True)
class GatewayRow:
    gateway: GatewayInfo
    sessions: int
    paused_until: datetime | None
    attempted: int
    failed: int


def _stored(ctx: Ctx, day: date) -> tuple[list[GatewayInfo], list[SuccessRate]]:
    return ctx.dashboard.gateways(), ctx.reports.success_rates(day, day, "gateway")


@router.get("/gateways", response_class=HTMLResponse)
async def gateways(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    day_text: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    need(viewer, Role.OPERATOR, "the gateways page")
    # async, so the collection's figures are read in the event loop the dispatcher runs in
    today = ctx.dashboard.today()
    day = parse_day(day_text, today)
    found, rates = await asyncio.to_thread(_stored, ctx, day)
    sessions = ctx.runtime.gateway_sessions()
    paused = ctx.runtime.paused_gateways()
    by_name = {r.group: r for r in rates}
    rows = [
        GatewayRow(
            g,
            sessions.get(g.id, 0),
            paused.get(g.id),
            by_name[g.name].attempted if g.name in by_name else 0,
            by_name[g.name].failed if g.name in by_name else 0,
        )
        for g in found
    ]
    return render(
        request,
        "gateways.html",
        viewer,
        rows=rows,
        day=day,
        is_today=day == today,
        in_flight=ctx.runtime.sessions_in_flight(),
        paused_count=sum(1 for r in rows if r.paused_until is not None),
    )
