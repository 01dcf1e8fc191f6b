"""The FastAPI app factory: one router per resource under /api/v1, errors as problem
documents, metrics on every request, and the operators' dashboard pages (``headend.api.pages``).
No app exists until ``create_app`` is called."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from headend import __version__
from headend.api import problems
from headend.api.context import ApiContext
from headend.api.metrics import LatencyMiddleware, make_registry
from headend.api.pages import install as install_pages
from headend.api.routers import (
    billing,
    edits,
    jobs,
    keys,
    learned_quirks,
    operations,
    reads,
    reports,
    system,
)

DESCRIPTION = """\
Billing-ready consumption records, validated reads, on-demand meter reads and failed-read
reports of the headend AMI head-end.

Send an API key as `Authorization: Bearer <key>` (the dashboard's pages, at `/`, log in
with a key and call the API with their session cookie instead). Roles include each other:
`billing` reads validated data and billing records; `technician` also reads meters on demand;
`operator` also sees reports and edits data, read plans and the registry; `admin` also
manages keys. Errors are `application/problem+json` documents (RFC 9457).
"""


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="headend",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = context
    registry, latency = make_registry(context)
    app.state.metrics = registry
    problems.install(app)

    api = APIRouter(prefix="/api/v1")
    for module in (billing, reads, jobs, reports, edits, operations, keys, learned_quirks):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(system.router)
    install_pages(app, context)
    app.add_middleware(LatencyMiddleware, latency=latency)
    return app
