"""What every dashboard page shares: the templates, who is looking, forms and their CSRF
tokens, and the answers (pages with strict security headers, redirects, error pages)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from headend import __version__
from headend.api.context import ApiContext
from headend.api.deps import context
from headend.api.problems import status_of
from headend.api.sessions import COOKIE, WebSession
from headend.domain.enums import Role
from headend.services.access.keys import Principal
from headend.services.errors import ServiceError

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_FORM_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginNeeded(Exception):
    """The page needs a session; the handler sends the browser to the login form."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class PageError(Exception):
    """Answer with the error page: a status and what the person can do about it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PageRoute(APIRoute):
    """The route of a page: a service's refusal is answered with the error page, with the
    status the API gives that kind of refusal (``problems.status_of``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                raise PageError(status_of(exc), str(exc)) from exc

        return page


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page: their key's name and role, and their session."""

    principal: Principal
    session: WebSession

    @property
    def name(self) -> str:
        return self.principal.name

    def may(self, role: Role | str) -> bool:
        return self.principal.may(Role(role))


def local_time(moment: datetime | None, tz: ZoneInfo, seconds: bool = False) -> str:
    if moment is None:
        return "—"
    shown = moment.astimezone(tz)
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def kwh(value: Decimal | None, places: int = 3) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def percent(rate: Decimal | float | None) -> str:
    return "—" if rate is None else f"{float(rate) * 100:.1f} %"


def make_environment(tz: ZoneInfo) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = lambda moment, seconds=False: local_time(moment, tz, seconds)
    env.filters["kwh"] = kwh
    env.filters["percent"] = percent
    env.filters["urlquote"] = lambda text: quote(str(text), safe="")
    env.globals["version"] = __version__
    env.globals["tz_name"] = tz.key
    return env


def render(
    request: Request, template: str, viewer: Viewer | None, status: int = 200, **values: Any
) -> HTMLResponse:
    env: Environment = request.app.state.pages
    html = env.get_template(template).render(
        viewer=viewer,
        csrf=viewer.session.csrf if viewer else None,
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def current_viewer(request: Request, ctx: ApiContext) -> Viewer | None:
    """The person behind the request's session cookie, if it is live and its key valid."""
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    principal = ctx.dashboard.active_principal(session.key_prefix) if session else None
    if session is None or principal is None:
        ctx.sessions.close(request.cookies.get(COOKIE))
        return None
    return Viewer(principal, session)


def viewer(request: Request, ctx: Annotated[ApiContext, Depends(context)]) -> Viewer:
    """The person behind the session cookie; without a live session, the login form."""
    found = current_viewer(request, ctx)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginNeeded(target)
    if not found.may(Role.BILLING):
        raise PageError(403, "your key's role may not see the dashboard")
    return found


Page = Annotated[Viewer, Depends(viewer)]
Ctx = Annotated[ApiContext, Depends(context)]


def need(viewer: Viewer, role: Role, what: str) -> None:
    if not viewer.may(role):
        raise PageError(
            403,
            f"{what} needs the role {role} or above; you are logged in as {viewer.name} "
            f"({viewer.principal.role})",
        )


async def form_fields(request: Request) -> dict[str, str]:
    """An HTML form's fields (``application/x-www-form-urlencoded``), first value of each."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, "send this form from the page it belongs to")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "the form is too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(400, "the form could not be read") from exc
    return {name: values[0] for name, values in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def check_csrf(viewer: Viewer, form: dict[str, str]) -> None:
    """A form that changes data must carry the session's CSRF token."""
    if not viewer.session.csrf_ok(form.get("csrf")):
        raise PageError(
            403, "this form is out of date or did not come from this site; reload the page"
        )


def parse_day(text: str | None, default: date, field: str = "date") -> date:
    if not text:
        return default
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PageError(422, f"{field}: {text!r} is not a date like 2026-11-26") from None
    if not date(1970, 1, 2) <= day <= date(2199, 12, 31):
        raise PageError(422, f"{field}: {day} is outside 1970-01-02 to 2199-12-31")
    return day


def billing_periods(day: date, today: date) -> list[str]:
    """The billing periods a page about ``day`` offers: that day (the day before, if it is
    today and so not over) and the calendar month before it."""
    whole = day - timedelta(days=1) if day >= today else day
    return [whole.isoformat(), (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")]
