"""Operator edits of interval data and resolving VEE findings; each is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from headend.api.auth import Operator
from headend.api.deps import Ctx, RowId, time_range
from headend.api.problems import PROBLEM_RESPONSES
from headend.api.schemas import EditRequest, ResolveRequest

router = APIRouter(tags=["edits"], responses=PROBLEM_RESPONSES)


@router.post("/meters/{meter_id}/edits", status_code=201)
def edit_intervals(meter_id: str, body: EditRequest, ctx: Ctx, who: Operator) -> Any:
    """Replace the intervals of a channel ending in (start, end]: each gets a new version,
    marked edited, with the reason; the versions before stay."""
    start, end = time_range(ctx, body.start, body.end)
    return ctx.edits.edit_intervals(
        meter_id,
        body.channel,
        start,
        end,
        body.value_kwh,
        body.reason_code,
        body.comment,
        actor=who.actor,
    )


@router.post("/edits/{edit_id}/revert")
def revert_edit(edit_id: RowId, ctx: Ctx, who: Operator) -> Any:
    return ctx.edits.revert_edit(edit_id, actor=who.actor)


@router.post("/findings/{finding_id}/resolve")
def resolve_finding(finding_id: RowId, body: ResolveRequest, ctx: Ctx, who: Operator) -> Any:
    return ctx.edits.resolve_finding(finding_id, body.note, actor=who.actor)
