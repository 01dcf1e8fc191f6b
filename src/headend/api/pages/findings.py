"""The VEE work queue: open findings, each with a form to edit the intervals it covers
(recording the reason, and resolving the finding in the same transaction) or to resolve it
as it is. Changes need the operator role and the session's CSRF token."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from headend.api.pages.web import (
    Ctx,
    Form,
    Page,
    PageError,
    PageRoute,
    Viewer,
    check_csrf,
    need,
    redirect,
    render,
    safe_next,
)
from headend.domain.enums import Role
from headend.domain.reports import Finding
from headend.services.errors import Invalid, ServiceError

router = APIRouter(include_in_schema=False, route_class=PageRoute)
PAGE = 50
REASON_CODES = ("ESTIMATE_OK", "FIELD_READ", "METER_EXCHANGE", "ZERO_CONFIRMED", "CUSTOMER_READ")
FindingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _list(
    request: Request,
    ctx: Ctx,
    viewer: Viewer,
    filters: dict[str, Any],
    *,
    notice: str | None = None,
    failed: tuple[int, str, dict[str, str]] | None = None,
    back: str | None = None,
) -> HTMLResponse:
    rows = ctx.reports.open_findings(
        meter_id=filters.get("meter_id") or None,
        rule=filters.get("rule") or None,
        limit=PAGE,
        after_id=filters.get("after"),
    )
    more = {k: v for k, v in filters.items() if v and k != "after"}
    return render(
        request,
        "findings.html",
        viewer,
        status=422 if failed else 200,
        rows=rows,
        filters=filters,
        notice=notice,
        failed=failed,
        may_edit=viewer.may(Role.OPERATOR),
        reason_codes=REASON_CODES,
        next_query=urlencode({**more, "after": rows[-1].id}) if len(rows) == PAGE else None,
        back=back or request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/findings", response_class=HTMLResponse)
def findings(
    request: Request,
    ctx: Ctx,
    viewer: Page,
    meter_id: Annotated[str | None, Query(max_length=32)] = None,
    rule: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    edited: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    edit: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    resolved: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    need(viewer, Role.OPERATOR, "the VEE findings queue")
    notice = None
    if edited is not None:
        notice = f"Finding {edited} is resolved by edit {edit}; the intervals have new versions."
    elif resolved is not None:
        notice = f"Finding {resolved} is resolved."
    filters = {"meter_id": meter_id or "", "rule": rule or "", "after": after}
    return _list(request, ctx, viewer, filters, notice=notice)


def _open_finding(ctx: Ctx, finding_id: int) -> Finding:
    found = ctx.reports.open_findings(after_id=finding_id - 1, limit=1)
    if not found or found[0].id != finding_id:
        raise PageError(409, f"finding {finding_id} is not open: it was resolved or replaced")
    return found[0]


def _value(form: dict[str, str]) -> Decimal | None:
    if form.get("mode", "value") == "keep":
        return None
    text = form.get("value", "").strip().replace(",", ".")
    if not text:
        raise Invalid("give the kWh each interval is set to, or keep the current values", "value")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Invalid(f"{text!r} is not a number of kWh", "value") from None


def _done(form: dict[str, str], **params: int) -> Response:
    back = safe_next(form.get("back") or "/findings")
    path, _, query = back.partition("?")
    kept = [
        p for p in query.split("&") if p and p.split("=")[0] not in {"edited", "edit", "resolved"}
    ]
    return redirect(path + "?" + "&".join([*kept, urlencode(params)]))


@router.post("/findings/{finding_id}/edit", response_class=HTMLResponse)
async def edit_finding(
    request: Request, ctx: Ctx, viewer: Page, form: Form, finding_id: FindingId
) -> Response:
    """Edit the intervals a finding covers (a value for each, or keep the current values),
    with a reason code and a comment; the finding is resolved by the same change."""
    check_csrf(viewer, form)
    need(viewer, Role.OPERATOR, "editing interval data")
    finding = await asyncio.to_thread(_open_finding, ctx, finding_id)
    if finding.channel is None:
        raise PageError(422, f"finding {finding_id} is not about one channel; resolve it instead")
    try:
        value = _value(form)
        result = await asyncio.to_thread(
            lambda: ctx.edits.edit_intervals(
                finding.meter_id,
                finding.channel or "",
                finding.start,
                finding.end,
                value,
                form.get("reason_code", ""),
                form.get("comment") or None,
                actor=viewer.principal.actor,
                resolve_findings=[finding_id],
            )
        )
    except ServiceError as exc:  # shown in the form, which the person may correct
        field = exc.field if isinstance(exc, Invalid) else None
        message = f"{field}: {exc}" if field else str(exc)
        back = safe_next(form.get("back") or "/findings")
        asked = parse_qs(back.partition("?")[2])
        filters = {k: asked.get(k, [""])[0] for k in ("meter_id", "rule")} | {"after": None}
        return await asyncio.to_thread(
            lambda: _list(
                request, ctx, viewer, filters, failed=(finding_id, message, form), back=back
            )
        )
    return _done(form, edited=finding_id, edit=result.id)


@router.post("/findings/{finding_id}/resolve", response_class=HTMLResponse)
async def resolve_finding(ctx: Ctx, viewer: Page, form: Form, finding_id: FindingId) -> Response:
    check_csrf(viewer, form)
    need(viewer, Role.OPERATOR, "resolving findings")
    note = form.get("note") or None
    await asyncio.to_thread(
        lambda: ctx.edits.resolve_finding(finding_id, note, actor=viewer.principal.actor)
    )
    return _done(form, resolved=finding_id)
