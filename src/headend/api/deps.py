"""Dependency aliases the routers share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from headend.api.context import ApiContext
from headend.api.problems import invalid


async def context(request: Request) -> ApiContext:  # async: no worker thread for this
    found: ApiContext = request.app.state.context
    return found


Ctx = Annotated[ApiContext, Depends(context)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A stored row's id")]


EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)  # what a request may ask about, at most
LATEST = datetime(2199, 12, 31, tzinfo=UTC)


def in_bounds(field: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment <= LATEST:
        raise invalid(
            field, f"{moment.isoformat()} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}"
        )
    return moment


def time_range(
    ctx: ApiContext, start: datetime, end: datetime, start_field: str = "start"
) -> tuple[datetime, datetime]:
    """A request's [start, end]: both with an offset, end after start, not too long."""
    for name, value in ((start_field, start), ("end", end)):
        if value.tzinfo is None:
            raise invalid(name, "needs a time zone offset, e.g. 2026-11-01T00:00:00+07:00")
        try:
            in_bounds(name, value.astimezone(UTC))
        except OverflowError:
            raise invalid(name, f"{value.isoformat()} is out of range") from None
    if end <= start:
        raise invalid("end", f"{end.isoformat()} is not after start {start.isoformat()}")
    limit = ctx.settings.api_max_range_days
    if (end - start).total_seconds() > limit * 86400:
        raise invalid("end", f"the range is longer than {limit} days; ask for less at a time")
    return start, end
