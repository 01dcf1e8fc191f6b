"""The operators' dashboard: server-rendered pages behind a login with the API's keys.

Pages live in this package (one router per page), templates in ``headend/api/templates``,
the stylesheet and the one small script in ``headend/api/static``; nothing is loaded from
another site, so the dashboard works on a network without internet.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from headend.api.context import ApiContext
from headend.api.pages import (
    failed_reads,
    findings,
    gateways,
    login,
    meters,
    overview,
    workers,
)
from headend.api.pages.web import (
    STATIC,
    LoginNeeded,
    PageError,
    current_viewer,
    make_environment,
    render,
)

ROUTERS = (login, overview, failed_reads, meters, findings, gateways, workers)


def install(app: FastAPI, context: ApiContext) -> None:
    """Serve the dashboard's pages and static files from ``app``."""
    app.state.pages = make_environment(context.settings.tz)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in ROUTERS:
        app.include_router(module.router)

    async def on_login_needed(request: Request, exc: Exception) -> RedirectResponse:
        assert isinstance(exc, LoginNeeded)
        target = "/login" if exc.path == "/" else f"/login?{_next(exc.path)}"
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})

    async def on_page_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, PageError)
        viewer = await asyncio.to_thread(current_viewer, request, context)
        return render(request, "error.html", viewer, exc.status, message=exc.message)

    app.add_exception_handler(LoginNeeded, on_login_needed)
    app.add_exception_handler(PageError, on_page_error)


def _next(path: str) -> str:
    return urlencode({"next": path})
