"""The dashboard's tests use the API's real server (``served``, ``tests/served.py``): uvicorn
over HTTP on a store filled by collection from simulated meters, a copy of it per module.

``logged_in`` gives an httpx client holding a dashboard session for a role, made the way a
browser makes one: the login form (with its CSRF cookie), then the session cookie.
``as_coordinator`` shows the served app as a coordinator of the Celery executor would be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import httpx
import pytest

from headend.domain.enums import Role
from headend.services.reporting.health import CoordinatorRole, HealthService
from tests.api.conftest import five_workers
from tests.served import Served

__all__ = ["Served", "as_coordinator", "csrf_of", "fleet_day", "log_in"]

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_HIDDEN = re.compile(r'name="csrf" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_of(html: str) -> str:
    """The CSRF token of a page: its meta tag, or the first form's hidden field."""
    found = _META.search(html) or _HIDDEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def log_in(client: httpx.Client, key: str, next_path: str = "/") -> httpx.Response:
    form = client.get("/login")
    assert form.status_code == 200, form.text
    token = _HIDDEN.search(form.text)
    assert token
    return client.post("/login", data={"key": key, "csrf": token.group(1), "next": next_path})


@contextmanager
def as_coordinator(served: Served, role: CoordinatorRole | None) -> Iterator[None]:
    """While in the block, the served app is a coordinator of the Celery executor in ``role``,
    with the heartbeats of ``five_workers`` (written to the module's store)."""
    context = served.context
    saved = context.settings, context.health, context.runtime.role
    context.settings = replace(context.settings, executor="celery")
    context.health = HealthService(served.store, workers=five_workers(served.store))
    context.runtime.role = lambda: role
    try:
        yield
    finally:
        context.settings, context.health, context.runtime.role = saved


def fleet_day(served: Served) -> date:
    """The local day on which the fleet's reads were made (the fleet's clock)."""
    return served.fleet.clock.now.astimezone(TZ).date()


@pytest.fixture(scope="module")
def sessions(served: Served) -> Iterator[dict[Role, httpx.Client]]:
    """A logged-in client per role, for the module."""
    clients = {role: served.client() for role in Role}
    try:
        for role, client in clients.items():
            answer = log_in(client, served.keys[role])
            assert answer.status_code == 303, answer.text
        yield clients
    finally:
        for client in clients.values():
            client.close()
