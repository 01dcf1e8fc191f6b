"""On-demand reads: a technician queues a read of one meter and waits for its result."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from headend.api.auth import Technician
from headend.api.deps import Ctx, RowId, time_range
from headend.api.problems import PROBLEM_RESPONSES, Problem
from headend.api.schemas import JobOut, ReadRequest
from headend.domain.enums import ReadKind
from headend.services.collection.jobs import JobOutcome
from headend.services.errors import RateLimited

router = APIRouter(tags=["jobs"], responses=PROBLEM_RESPONSES)
MAX_WAIT_S = 120


def _out(outcome: JobOutcome) -> JobOut:
    return JobOut(
        job_id=outcome.job_id,
        state=outcome.state,
        attempts=outcome.attempts,
        failure_category=outcome.failure_category,
        failure_detail=outcome.failure_detail,
        values=outcome.values,
        links={"self": f"/api/v1/jobs/{outcome.job_id}"},
    )


@router.post(
    "/meters/{meter_id}/reads",
    status_code=202,
    response_model=JobOut,
    responses={429: {"description": "Too many on-demand reads of this meter"}},
)
async def request_read(
    meter_id: str, body: ReadRequest, ctx: Ctx, who: Technician, response: Response
) -> JobOut:
    """Queue a read of one meter, ahead of scheduled work. Answers 202 with the job; follow
    its link (with ``?wait=30``) for the outcome."""
    params: dict[str, object] = {}
    if body.start is not None or body.end is not None:
        if body.kind not in ("load_profile", "full"):
            raise Problem(
                422,
                "start: a range applies to load_profile and full reads only",
                errors=[{"field": "start", "message": "only for load_profile and full reads"}],
            )
        if body.start is None or body.end is None:
            field = "end" if body.end is None else "start"
            raise Problem(
                422,
                f"{field}: give both start and end, or neither",
                errors=[{"field": field, "message": "give both start and end, or neither"}],
            )
        start, end = time_range(ctx, body.start, body.end)
        params = {"start": start.isoformat(), "end": end.isoformat()}
    kind = ReadKind(body.kind)
    wait_s = ctx.rate_limit.take(meter_id)
    if wait_s is not None:
        raise RateLimited(
            f"meter {meter_id} had {ctx.rate_limit.limit} on-demand reads in the last "
            f"{int(ctx.rate_limit.window_s // 60)} minutes; try again in {int(wait_s) + 1} s",
            int(wait_s) + 1,
        )
    job_id = await asyncio.to_thread(
        lambda: ctx.jobs.request_read(meter_id, kind, params, f"api:{who.name}", actor=who.actor)
    )
    ctx.runtime.wake_dispatcher()
    outcome = await asyncio.to_thread(ctx.jobs.outcome, job_id)
    assert outcome is not None
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    return _out(outcome)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def job(
    job_id: RowId,
    ctx: Ctx,
    _: Technician,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_S, description="Wait up to this many seconds to end")
    ] = 0,
) -> JobOut:
    """A job's state, attempts, failure category and the values read."""
    if wait:
        outcome = await ctx.jobs.wait(job_id, wait, poll_s=0.2)
    else:
        outcome = await asyncio.to_thread(ctx.jobs.outcome, job_id)
    if outcome is None:
        raise Problem(404, f"there is no job {job_id}")
    return _out(outcome)
