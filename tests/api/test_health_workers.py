"""``/health`` says where meter sessions run (the executor), this process's role in
collection, and the workers heard from in the last day, alive or lost."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from headend.api.app import create_app
from headend.api.context import ApiContext, ProcessHooks
from headend.config import Settings
from headend.runtime import Runtime
from tests.api.conftest import LISTED, NOW, five_workers
from tests.conftest import BACKEND, TEST_SECRET_KEY


def _runtime(database_url: str, store: sessionmaker[Session], spool: Path, **given: Any) -> Runtime:
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET_KEY, spool_dir=spool, **given
    )
    return Runtime(settings, session_factory=store, profiles=frozenset())


def _health(context: ApiContext) -> tuple[int, dict[str, Any]]:
    async def ask() -> tuple[int, dict[str, Any]]:
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://headend") as client:
            answer = await client.get("/health")
            return answer.status_code, answer.json()

    try:
        return asyncio.run(ask())
    finally:
        context.close()


def test_health_lists_workers_alive_first_with_sites_and_sessions_then_lost_ones_not_stopped(
    store: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    runtime = _runtime(database_url, store, tmp_path, executor="celery")
    runtime.workers = five_workers(store)
    status, health = _health(runtime.api_context(ProcessHooks(role=lambda: "standby")))
    assert status == 200 and health["status"] == "ok"  # a lost worker does not degrade it
    assert health["executor"] == "celery" and health["role"] == "standby"
    assert [w["name"] for w in health["workers"]] == LISTED  # not done:104, not gone:105
    live, spare, lost = health["workers"]
    assert datetime.fromisoformat(live.pop("seen_at")) == NOW - timedelta(seconds=1)
    assert live == {
        "name": "hanoi-1:101",
        "sites": ["hanoi", "haiphong"],
        "capacity": 20,
        "sessions": 3,
        "finished": 41,
        "alive": True,
    }
    assert spare["sites"] == [] and spare["alive"] is True
    assert lost["alive"] is False and lost["sessions"] == 5
    assert datetime.fromisoformat(lost["seen_at"]) == NOW - timedelta(seconds=11)
    assert {"database", "scheduler", "sessions_in_flight", "loops"} <= set(health)


def test_health_with_the_local_executor_lists_no_worker_and_no_role_without_a_scheduler(
    store: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    five_workers(store)
    runtime = _runtime(database_url, store, tmp_path)
    status, health = _health(runtime.api_context())
    assert status == 200
    assert health["executor"] == "local" and health["role"] is None
    assert health["workers"] == []


def test_the_local_executor_leads_while_its_scheduler_runs_and_without_collection_has_no_role(
    store: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    runtime = _runtime(database_url, store, tmp_path)
    collecting = runtime._hooks(lambda: None)
    api_only = runtime._hooks(lambda: None, collect=False)

    async def serve() -> None:
        assert collecting.role() is None  # the scheduler has not started yet
        await runtime.scheduler.start()
        try:
            assert collecting.role() == "leader"
            assert api_only.role() is None
        finally:
            runtime.scheduler.stop()

    try:
        asyncio.run(serve())
    finally:
        runtime.dispatcher.close()


@pytest.mark.skipif(BACKEND != "postgresql", reason="the coordinators' lock is PostgreSQL's")
def test_of_two_celery_coordinators_the_one_holding_the_lock_leads_and_the_other_stands_by(
    store: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    first = _runtime(database_url, store, tmp_path / "first", executor="celery")
    second = _runtime(database_url, store, tmp_path / "second", executor="celery")
    first.workers = second.workers = five_workers(store)

    async def lead() -> bool:
        assert first.leadership is not None
        return await first.leadership.acquire(asyncio.Event())

    try:
        assert asyncio.run(lead())
        _, leading = _health(first.api_context(first._hooks(lambda: None)))
        _, standing_by = _health(second.api_context(second._hooks(lambda: None)))
        assert leading["role"] == "leader" and standing_by["role"] == "standby"
        assert second._hooks(lambda: None, collect=False).role() is None
        for health in (leading, standing_by):
            assert health["executor"] == "celery"
            assert [w["name"] for w in health["workers"]] == LISTED
            assert [w["alive"] for w in health["workers"]] == [True, True, False]
    finally:
        for runtime in (first, second):
            if runtime.leadership is not None:
                runtime.leadership.release()
            runtime.dispatcher.close()
