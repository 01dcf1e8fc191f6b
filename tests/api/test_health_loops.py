"""The background loops of ``serve`` are supervised, and ``/health`` shows how they fare."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from headend.api.app import create_app
from headend.config import Settings
from headend.runtime import Runtime, supervised
from tests.conftest import TEST_SECRET_KEY


def test_a_crashed_background_loop_is_restarted_and_its_crash_is_shown_in_health(
    store: sessionmaker[Session], database_url: str
) -> None:
    runtime = Runtime(
        Settings(database_url=database_url, secret_key=TEST_SECRET_KEY),
        session_factory=store,
        profiles=frozenset(),
    )
    status = runtime.loop_status("vee")
    runs = 0

    async def crashes_once(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ZeroDivisionError("a bug in a rule")
        stop.set()

    async def serve() -> None:
        stop = asyncio.Event()
        await asyncio.wait_for(
            supervised(status, lambda: crashes_once(stop), stop, pause_s=0.05), 5
        )

    asyncio.run(serve())
    assert runs == 2  # restarted after the crash
    context = runtime.api_context()

    async def ask() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://headend") as client:
            answer: dict[str, Any] = (await client.get("/health")).json()
            return answer

    try:
        health = asyncio.run(ask())
    finally:
        context.close()
    vee = health["loops"]["vee"]
    assert vee["crashes"] == 1
    assert vee["last_error"] == "ZeroDivisionError: a bug in a rule"
    assert vee["last_crash_at"] is not None and vee["running"] is False
