"""Workers: where meter sessions run. With the Celery executor, the ``headend worker``
processes heard from in the last day (their sites, sessions, capacity, whether they are alive)
and this coordinator's role; with the local executor, the sessions of this process."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headend.api.pages.web import Ctx, Page, PageRoute, need, render
from headend.domain.enums import Role
from headend.services.reporting.health import RECENT_WORKERS

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/workers", response_class=HTMLResponse)
async def workers(request: Request, ctx: Ctx, viewer: Page) -> HTMLResponse:
    need(viewer, Role.OPERATOR, "the workers page")
    found = await asyncio.to_thread(ctx.health.workers, RECENT_WORKERS)
    alive = [w for w in found if w.alive]
    # async, so the process's figures are read in the event loop the dispatcher runs in
    local = ctx.settings.executor == "local"
    return render(
        request,
        "workers.html",
        viewer,
        executor=ctx.settings.executor,
        role=ctx.runtime.role(),
        sessions=ctx.runtime.sessions_in_flight() if local else sum(w.sessions for w in alive),
        rows=found,
        alive=len(alive),
        recent_hours=int(RECENT_WORKERS.total_seconds() // 3600),
    )
