"""Errors as ``application/problem+json`` (RFC 9457), each with a message a person can act on.

Every error the API returns goes through here: refused requests (401, 403, 404, 409, 422,
429) and, should a bug slip through, a 500 that names no internals. A service's refusal
(``headend.services.errors``) is translated here by its kind, for every route at once:

    NotFound 404, Conflict 409, Invalid 422, Refused 403, RateLimited 429 with Retry-After
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from headend.services.errors import (
    Conflict,
    Invalid,
    NotFound,
    RateLimited,
    Refused,
    ServiceError,
)

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors or [])
        self.headers = headers


def invalid(field: str, message: str) -> Problem:
    """A 422 naming the request field at fault."""
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


STATUS_OF: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
    (Refused, 403),
    (RateLimited, 429),
)


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a service's refusal, by its kind."""
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 500)


def service_problem(exc: ServiceError) -> Problem:
    """A service's refusal as a problem document: an ``Invalid`` one names the fields at
    fault, a ``RateLimited`` one says when to come back."""
    status = status_of(exc)
    if isinstance(exc, Invalid):
        if exc.errors:
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            return Problem(status, detail, errors=errors)
        field = exc.field or "request"
        return Problem(status, str(exc), errors=[{"field": field, "message": str(exc)}])
    if isinstance(exc, RateLimited):
        return Problem(status, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    return Problem(status, str(exc))


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        body["instance"] = instance
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(body, problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "is not a field this request takes"
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "timezone_aware":
        return "needs a time zone offset, e.g. 2026-11-01T00:00:00+07:00"
    return str(error.get("msg", "is not valid"))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return problem_response(service_problem(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no resource at {request.url.path}; see /docs for the API"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(
            Problem(exc.status_code, detail, headers=dict(exc.headers) if exc.headers else None),
            request.url.path,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": _field(e["loc"]), "message": _message(e)} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(Problem(422, detail, errors=errors), request.url.path)

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in a request", path=request.url.path)
        return problem_response(
            Problem(500, "the server failed to answer this request; it was logged"),
            request.url.path,
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_error)


class ProblemDocument(BaseModel):
    """An error (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDocument, "description": HTTPStatus(status).phrase}
    for status in (401, 403, 404, 422)
}
