"""Health and metrics: for load balancers and Prometheus, no key needed."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from headend.api.deps import Ctx
from headend.api.schemas import Health, LoopHealth, WorkerHealth

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(ctx: Ctx) -> Response:
    """The database answers; whether the scheduler runs in this process; the executor; this
    process's role in collection; and the workers heard from in the last day.

    The role is "leader" when this process runs the collection side: with the local executor
    once its scheduler runs, with the Celery executor while it holds the coordinator's lock.
    "standby" is a Celery coordinator waiting for that lock; null, a process that collects
    nothing (``serve --no-collect``) or whose scheduler is not running (yet). The status is
    "degraded" (503) only when the database does not answer, never for a lost worker or a
    standby role: a load balancer keeps sending the API to either coordinator. The workers
    are read only from a database that answers."""
    database: Literal["ok", "unreachable"] = (
        "ok" if ctx.health.database_answers() else "unreachable"
    )
    workers = ctx.health.workers() if database == "ok" else []
    body = Health(
        status="ok" if database == "ok" else "degraded",
        database=database,
        scheduler="running" if ctx.runtime.scheduler_running() else "not running",
        sessions_in_flight=ctx.runtime.sessions_in_flight(),
        loops={
            loop.name: LoopHealth(
                running=loop.running,
                crashes=loop.crashes,
                last_error=loop.last_error,
                last_crash_at=loop.last_crash_at,
            )
            for loop in ctx.health.loops()
        },
        executor=ctx.settings.executor,
        role=ctx.runtime.role(),
        workers=[WorkerHealth.model_validate(w, from_attributes=True) for w in workers],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if database == "ok" else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
