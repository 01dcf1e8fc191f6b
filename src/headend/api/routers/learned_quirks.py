"""Learned quirks: what collection sessions found meter models doing off the standard, per
device profile and firmware (operator role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from headend.api.auth import Operator
from headend.api.deps import Ctx
from headend.api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/learned-quirks", tags=["learned quirks"], responses=PROBLEM_RESPONSES)


@router.get("")
def learned_quirks(
    ctx: Ctx,
    _: Operator,
    device_profile: Annotated[
        str | None, Query(max_length=64, description="Only this device profile's")
    ] = None,
) -> list[dict[str, Any]]:
    """Each quirk learned, by device profile, firmware (null: not known) and quirk: when it
    was first and last found, the meter it was first found on, and how many sessions found
    it. Sessions of meters of that profile and firmware start knowing it."""
    return ctx.quirks.as_json(device_profile)
