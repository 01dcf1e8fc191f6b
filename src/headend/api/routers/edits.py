"""Operator edits of interval data and resolving VEE findings; each is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from headend.api.auth import Operator
from headend.api.deps import Ctx, RowId, time_range
from headend.api.problems import PROBLEM_RESPONSES, Problem
from headend.api.schemas import EditRequest, ResolveRequest
from headend.services.validation.edits import EditError, UnknownEdit, UnknownFinding

router = APIRouter(tags=["edits"], responses=PROBLEM_RESPONSES)


def _refused(exc: EditError) -> Problem:
    field = getattr(exc, "field", None) or "request"
    return Problem(422, str(exc), errors=[{"field": field, "message": str(exc)}])


@router.post("/meters/{meter_id}/edits", status_code=201)
def edit_intervals(meter_id: str, body: EditRequest, ctx: Ctx, who: Operator) -> Any:
    """Replace the intervals of a channel ending in (start, end]: each gets a new version,
    marked edited, with the reason; the versions before stay."""
    start, end = time_range(ctx, body.start, body.end)
    try:
        result = ctx.edits.edit_intervals(
            meter_id,
            body.channel,
            start,
            end,
            body.value_kwh,
            body.reason_code,
            body.comment,
            who.name,
        )
    except EditError as exc:
        raise _refused(exc) from exc
    ctx.audit.record(
        who.name, "interval.edit", f"meter:{meter_id}", body.model_dump(mode="json"), str(who.role)
    )
    return result


@router.post("/edits/{edit_id}/revert")
def revert_edit(edit_id: RowId, ctx: Ctx, who: Operator) -> Any:
    try:
        result = ctx.edits.revert_edit(edit_id, who.name)
    except UnknownEdit as exc:
        raise Problem(404, f"there is no edit {edit_id}") from exc
    except EditError as exc:
        raise _refused(exc) from exc
    ctx.audit.record(who.name, "interval.revert", f"edit:{edit_id}", {}, str(who.role))
    return result


@router.post("/findings/{finding_id}/resolve")
def resolve_finding(finding_id: RowId, body: ResolveRequest, ctx: Ctx, who: Operator) -> Any:
    try:
        result = ctx.edits.resolve_finding(finding_id, who.name, body.note)
    except UnknownFinding as exc:
        raise Problem(404, f"there is no VEE finding {finding_id}") from exc
    except EditError as exc:
        raise _refused(exc) from exc
    ctx.audit.record(
        who.name, "finding.resolve", f"finding:{finding_id}", {"note": body.note}, str(who.role)
    )
    return result
