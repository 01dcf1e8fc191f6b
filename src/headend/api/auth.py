"""Who is calling, and may they: API keys as bearer tokens, roles that include each other.

A bearer key is looked at first; without one, the dashboard's session cookie is accepted
(``headend.api.sessions``), so the pages' script can call the API. A request that changes
something with the cookie must also send the session's CSRF token as ``X-CSRF-Token``.
No key and no session is 401 (with ``WWW-Authenticate: Bearer``); a key whose role is too
low is 403, as is a cookie request without its CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from headend.api.problems import Problem
from headend.api.sessions import COOKIE, CSRF_HEADER, SAFE_METHODS
from headend.domain.enums import Role
from headend.services.access.keys import Principal

_bearer = HTTPBearer(auto_error=False, description="An API key from `headend keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # async, so a key seen lately costs no trip to a worker thread; the store is asked in one
    if credentials is None:
        principal = None
        if request.cookies.get(COOKIE):
            principal = await run_in_threadpool(_session_caller, request)
        if principal is None:
            raise Problem(
                401,
                "this request needs an API key: send 'Authorization: Bearer <key>' "
                "(an administrator creates keys with `headend keys create`)",
                headers=_CHALLENGE,
            )
        request.state.principal = principal
        return principal
    keys = request.app.state.context.keys
    found: Principal | None = keys.remembered(credentials.credentials)
    if found is None:
        found = await run_in_threadpool(keys.authenticate, credentials.credentials)
    if found is None:
        raise Problem(
            401, "the API key is not valid or was revoked; ask for a new one", headers=_CHALLENGE
        )
    request.state.principal = found
    return found


def _session_caller(request: Request) -> Principal | None:
    """The owner of the request's dashboard session, if it has a live one whose key is
    still valid; a change asked for with the cookie must carry the session's CSRF token."""
    context = request.app.state.context
    session = context.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    principal: Principal | None = context.dashboard.active_principal(session.key_prefix)
    if principal is None:
        return None
    if request.method not in SAFE_METHODS and not session.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise Problem(
            403,
            f"a change made with the dashboard's session cookie needs the {CSRF_HEADER} "
            "header of the page it comes from; reload the page, or send an API key instead",
        )
    return principal


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
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
