"""Logging in with an API key and out again.

The login form is protected against cross-site posting by a double-submitted token (a
cookie and a hidden field that must match); a successful login opens a server-side session
(``headend.api.sessions``) and sets its cookie: HttpOnly, SameSite=Strict, Secure over
HTTPS, for the whole site.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from headend.api.pages.web import (
    Ctx,
    Form,
    Page,
    PageRoute,
    check_csrf,
    redirect,
    render,
    safe_next,
)
from headend.api.sessions import COOKIE, LOGIN_CSRF_COOKIE

router = APIRouter(include_in_schema=False, route_class=PageRoute)
MAX_KEY = 200


def _set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=path,
    )


def _form(request: Request, next_path: str, error: str | None, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", None, status, next_path=next_path, error=error, login_csrf=token
    )
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, "/login")
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, ctx: Ctx) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        return redirect(next_path)
    return _form(request, next_path, None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, ctx: Ctx, form: Form) -> Response:
    next_path = safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
        return _form(request, next_path, "The form had expired; please try again.", 403)
    key = form.get("key", "").strip()
    if not key:
        return _form(request, next_path, "Enter your API key.", 422)
    principal = await asyncio.to_thread(ctx.keys.authenticate, key[:MAX_KEY])
    prefix = ctx.dashboard.key_prefix(key)
    if principal is None or prefix is None:
        return _form(request, next_path, "That key is not valid or was revoked.", 401)
    token, _ = ctx.sessions.open(prefix, principal.name, principal.role)
    response = redirect(next_path)
    _set_cookie(request, response, COOKIE, token, "/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    await asyncio.to_thread(ctx.audit.login, principal.actor)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, viewer: Page, form: Form) -> Response:
    check_csrf(viewer, form)
    ctx.sessions.close(request.cookies.get(COOKIE))
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response
