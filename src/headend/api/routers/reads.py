"""A meter's stored reads: intervals and registers over a time range."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from headend.api.auth import Billing
from headend.api.deps import Ctx, time_range
from headend.api.problems import PROBLEM_RESPONSES
from headend.api.schemas import IntervalOut, RegisterOut

router = APIRouter(prefix="/meters/{meter_id}", tags=["reads"], responses=PROBLEM_RESPONSES)

Start = Annotated[AwareDatetime, Query(examples=["2026-11-01T00:00:00+07:00"])]
End = Annotated[AwareDatetime, Query(examples=["2026-11-02T00:00:00+07:00"])]
VersionQ = Annotated[
    Literal["current", "raw"],
    Query(description="current: the latest version (validated, estimated, edited); raw: as read"),
]


@router.get("/intervals", response_model=list[IntervalOut])
def intervals(
    meter_id: str,
    ctx: Ctx,
    _: Billing,
    start: Start,
    end: End,
    channel: Annotated[str | None, Query(examples=["1.0.1.8.0.255"])] = None,
    version: VersionQ = "current",
) -> list[IntervalOut]:
    """Intervals ending in (start, end], with quality, method and version."""
    start, end = time_range(ctx, start, end)
    rows = ctx.readings.intervals(meter_id, start, end, channel, version)
    return [
        IntervalOut(
            channel=r.channel,
            interval_end=r.interval_end,
            value_kwh=r.value,
            cumulative_kwh=r.cumulative,
            quality=r.quality,
            method=r.method,
            flags=r.flags,
            status=r.status,
            version=r.version,
            created_by=r.created_by,
        )
        for r in rows
    ]


@router.get("/registers", response_model=list[RegisterOut])
def registers(
    meter_id: str,
    ctx: Ctx,
    _: Billing,
    start: Start,
    end: End,
    obis: Annotated[str | None, Query(examples=["1.0.1.8.0.255"])] = None,
    version: VersionQ = "current",
) -> list[RegisterOut]:
    """Register reads taken in (start, end]."""
    start, end = time_range(ctx, start, end)
    rows = ctx.readings.registers(meter_id, start, end, obis, version)
    return [
        RegisterOut(
            obis=r.obis,
            read_at=r.read_at,
            value=r.value,
            unit=r.unit,
            capture_time=r.capture_time,
            quality=r.quality,
            method=r.method,
            flags=r.flags,
            version=r.version,
            created_by=r.created_by,
        )
        for r in rows
    ]
