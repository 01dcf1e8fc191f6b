"""Who is calling, and may they: API keys as bearer tokens, roles that include each other.

No key is 401 (with ``WWW-Authenticate: Bearer``); a key whose role is too low is 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from headend.api.problems import Problem
from headend.domain.enums import Role
from headend.services.keys import Principal

_bearer = HTTPBearer(auto_error=False, description="An API key from `headend keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Problem(
            401,
            "this request needs an API key: send 'Authorization: Bearer <key>' "
            "(an administrator creates keys with `headend keys create`)",
            headers=_CHALLENGE,
        )
    principal: Principal | None = request.app.state.context.keys.authenticate(
        credentials.credentials
    )
    if principal is None:
        raise Problem(
            401, "the API key is not valid or was revoked; ask for a new one", headers=_CHALLENGE
        )
    request.state.principal = principal
    return principal


def require(role: Role) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not principal.may(role):
            raise Problem(
                403,
                f"the key {principal.name!r} has the role {principal.role}; "
                f"this needs the role {role} or above",
            )
        return principal

    return check


Billing = Annotated[Principal, Depends(require(Role.BILLING))]
Technician = Annotated[Principal, Depends(require(Role.TECHNICIAN))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
