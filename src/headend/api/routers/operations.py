"""Operations: the meter registry, gateways and read plans (operator role)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from headend.api.auth import Operator
from headend.api.deps import Ctx
from headend.api.problems import PROBLEM_RESPONSES, Problem
from headend.api.schemas import PlanIn, PlanOut
from headend.domain.enums import MeterStatus, ReadKind
from headend.services.collection.plans import PlanInfo, PlanSpec
from headend.services.registry.service import COLUMNS, READ_ONLY

router = APIRouter(tags=["operations"], responses=PROBLEM_RESPONSES)
# a meter's entry may be sent back as it was shown: its read-only fields are not written
WRITABLE = (frozenset(COLUMNS) - {"meter_id"}) | frozenset(READ_ONLY)
_EXAMPLE = {
    "service_point": "SP-0001",
    "customer_ref": "PA01000001",
    "gateway": "gw-tcp-01",
    "gateway_kind": "tcp_wrapper",
    "gateway_host": "10.20.0.15",
    "gateway_port": "4059",
    "transport": "wrapper",
    "auth": "none",
    "device_profile": "single_phase_residential",
    "status": "active",
}


@router.get("/meters")
def meters(
    ctx: Ctx,
    _: Operator,
    after: Annotated[
        str | None, Query(description="Cursor: the last meter id already seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    gateway: str | None = None,
    device_profile: str | None = None,
    status: MeterStatus | None = None,
) -> list[dict[str, str]]:
    """The registry, one page at a time, ordered by meter id (secrets are never returned)."""
    return ctx.registry.meters(
        after=after, limit=limit, gateway=gateway, device_profile=device_profile, status=status
    )


@router.get("/meters/{meter_id}")
def meter(meter_id: str, ctx: Ctx, _: Operator) -> dict[str, str]:
    """One meter's registry entry, with the firmware its last read reported ("" until one
    did)."""
    return ctx.registry.meter(meter_id)


@router.put("/meters/{meter_id}")
def put_meter(
    meter_id: str,
    ctx: Ctx,
    who: Operator,
    fields: Annotated[dict[str, str | None], Body(examples=[_EXAMPLE])],
) -> dict[str, str]:
    """Create or replace a meter. The fields are the columns of the registry CSV (README) and
    are checked as an import checks them; every problem is listed and nothing is stored.
    ``firmware`` is accepted (an entry may be sent back as shown) and not written."""
    unknown = sorted(set(fields) - WRITABLE)
    if unknown:
        raise Problem(
            422,
            f"{', '.join(unknown)}: not a registry field",
            errors=[{"field": f, "message": "is not a registry field"} for f in unknown],
        )
    ctx.registry.put(meter_id, fields, actor=who.actor)
    return ctx.registry.meter(meter_id)


@router.post("/meters/{meter_id}/deactivate")
def deactivate_meter(meter_id: str, ctx: Ctx, who: Operator) -> dict[str, str]:
    """Stop reading a meter (its data stays)."""
    return ctx.registry.set_status(meter_id, MeterStatus.INACTIVE, actor=who.actor)


@router.get("/gateways")
def gateways(ctx: Ctx, _: Operator) -> list[dict[str, Any]]:
    return ctx.registry.gateways()


def _plan_out(plan: PlanInfo) -> PlanOut:
    return PlanOut(
        name=plan.name,
        cron=plan.cron,
        kinds=list(plan.read_kinds),
        selector=dict(plan.selector),
        window_minutes=plan.window_minutes,
        active=plan.active,
        last_fired_at=plan.last_fired_at,
    )


@router.get("/plans", response_model=list[PlanOut])
def plans(ctx: Ctx, _: Operator) -> list[PlanOut]:
    return [_plan_out(p) for p in ctx.plans.all()]


@router.put("/plans/{name}", response_model=PlanOut)
async def put_plan(name: str, body: PlanIn, ctx: Ctx, who: Operator) -> PlanOut:
    """Create or change a read plan; the scheduler follows at once."""
    keys = set(body.selector)
    if not (
        body.selector == {"all": True}
        or (
            len(keys) == 1
            and keys <= {"gateway", "device_profile", "tag"}
            and isinstance(next(iter(body.selector.values())), str)
        )
    ):
        raise Problem(
            422,
            'selector: use {"all": true} or one of gateway, device_profile, tag with a name',
            errors=[{"field": "selector", "message": "all, gateway, device_profile or tag"}],
        )
    spec = PlanSpec(
        name, body.cron, tuple(ReadKind(k) for k in body.kinds), body.selector, body.window_minutes
    )
    plan = await asyncio.to_thread(lambda: ctx.plans.save(spec, actor=who.actor))
    ctx.runtime.plans_changed()
    return _plan_out(plan)


@router.post("/plans/{name}/deactivate", response_model=PlanOut)
async def deactivate_plan(name: str, ctx: Ctx, who: Operator) -> PlanOut:
    await asyncio.to_thread(lambda: ctx.plans.deactivate(name, actor=who.actor))
    ctx.runtime.plans_changed()
    found = [p for p in await asyncio.to_thread(ctx.plans.all) if p.name == name]
    return _plan_out(found[0])
