"""API keys (admin role). A new key is shown once, in the answer that creates it."""

from __future__ import annotations

from fastapi import APIRouter

from headend.api.auth import Admin
from headend.api.deps import Ctx
from headend.api.problems import PROBLEM_RESPONSES
from headend.api.schemas import KeyIn, KeyOut, NewKeyOut
from headend.services.access.keys import KeyInfo

router = APIRouter(prefix="/keys", tags=["keys"], responses=PROBLEM_RESPONSES)


def _out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        name=info.name,
        prefix=info.prefix,
        role=info.role,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
        last_used_at=info.last_used_at,
    )


@router.get("", response_model=list[KeyOut])
def keys(ctx: Ctx, _: Admin) -> list[KeyOut]:
    return [_out(k) for k in ctx.keys.list()]


@router.post("", status_code=201, response_model=NewKeyOut)
def create_key(body: KeyIn, ctx: Ctx, who: Admin) -> NewKeyOut:
    info, key = ctx.keys.create(body.name, body.role, actor=who.actor)
    return NewKeyOut(**_out(info).model_dump(), key=key)


@router.post("/{name}/revoke", response_model=KeyOut)
def revoke_key(name: str, ctx: Ctx, who: Admin) -> KeyOut:
    return _out(ctx.keys.revoke(name, actor=who.actor))
