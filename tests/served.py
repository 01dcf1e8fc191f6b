"""A real API server over HTTP, on a store filled by collection from simulated meters.

Once per run, eight simulated meters (one never answers, one had an outage) are served on
loopback for the whole run, collected into a database of their own (two days of backfill),
the VEE pass runs and a key is made for each role: that database is the template. Each test
module that asks for ``served`` gets a copy of it (a copied SQLite file, or a PostgreSQL
database made from the template), and uvicorn serves the app on it on a loopback port, with
the dispatcher in the same event loop so on-demand reads reach the simulated meters. What a
module changes stays in its copy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from headend.api.app import create_app
from headend.api.context import ApiContext, ProcessHooks
from headend.api.server import ApiServer
from headend.config import Settings
from headend.domain.enums import ReadKind, Role
from headend.protocol.transports import Timeouts
from headend.runtime import Runtime
from headend.services.access.keys import KeyService
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.simulator.spec import MeterSpec
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from tests.conftest import (
    BACKEND,
    TEST_ACTOR,
    TEST_SECRET_KEY,
    _create_postgres_database,
    _drop_postgres_database,
)
from tests.ports import free_ports
from tests.scheduling.simfleet_store import (
    PROFILES,
    Clock,
    StoreFleet,
    make_fleet,
    serving_into_store,
)

DAILY = {"kinds": ["registers", "load_profile"]}
FAULTS = "no_answer=1,outage=1"
# the meter that never answers costs a time-out per attempt: keep it short
TIMEOUTS = Timeouts(connect=1.0, link=1.0, response=1.0, close=0.5)


@dataclass
class Served:
    base_url: str
    database_url: str
    fleet: StoreFleet
    store: sessionmaker[Session]
    keys: dict[Role, str]
    context: ApiContext
    faulty: dict[str, str] = field(default_factory=dict)  # meter id -> fault kind

    def client(self, role: Role | None = None, key: str | None = None) -> httpx.Client:
        headers = {}
        if role is not None or key is not None:
            headers["Authorization"] = f"Bearer {key or self.keys[role]}"  # type: ignore[index]
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def healthy(self) -> list[str]:
        return sorted(m for m in self.fleet.specs if m not in self.faulty)


@dataclass(frozen=True)
class Collected:
    """The run's simulated fleet (served until the run ends) and its collected template."""

    specs: list[MeterSpec]
    clock: Clock
    database_url: str
    keys: dict[Role, str]
    faulty: dict[str, str]


class _Background:
    """uvicorn and the dispatcher in one event loop, in a thread."""

    def __init__(self, server: ApiServer, fleet: StoreFleet, runtime: ProcessHooks) -> None:
        self.server = server
        self.fleet = fleet
        self.runtime = runtime
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        dispatcher = self.fleet.dispatcher(20)
        stop = asyncio.Event()
        self.runtime.wake_dispatcher = dispatcher.wake
        self.runtime.sessions_in_flight = lambda: dispatcher.in_flight
        self.runtime.outcomes = lambda: dict(dispatcher.stats.outcomes)
        self.runtime.gateway_sessions = lambda: dispatcher.sessions_by_gateway
        self.runtime.paused_gateways = lambda: dispatcher.breaker.paused(self.fleet.jobs.clock())
        running = asyncio.create_task(dispatcher.run(stop))
        try:
            await self.server.serve()
        finally:
            stop.set()
            await running
            dispatcher.close()

    def __enter__(self) -> _Background:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def collect_all(fleet: StoreFleet) -> None:
    ids = fleet.jobs.queue_for_meters(
        list(fleet.specs), ReadKind.FULL, params=DAILY, skip_if_active=False
    )
    dispatcher = fleet.dispatcher(20)
    try:
        asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
    finally:
        dispatcher.close()


def _short_timeouts(fleet: StoreFleet) -> StoreFleet:
    fleet.collection.settings = replace(fleet.collection.settings, timeouts=TIMEOUTS)
    return fleet


def _new_database(folder: Path, template: str | None = None) -> str:
    """An empty database, or a copy of ``template``, of the kind the run tests."""
    if BACKEND == "postgresql":
        return _create_postgres_database(template)
    path = folder / "copy.db" if template else folder / "template.db"
    if template:
        source = sqlite3.connect(make_url(template).database or "")
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    folder = tmp_path_factory.mktemp("fleet")
    specs = make_fleet(folder, 8, faults=FAULTS, transport="wrapper", auth="none")
    url = _new_database(folder)
    try:
        migrations.upgrade(url)
        engine = make_engine(url)
        store = make_session_factory(engine)
        with serving_into_store(specs, store) as fleet:
            collect_all(_short_timeouts(fleet))
            rollups = RollupService(store, ZoneInfo("Asia/Ho_Chi_Minh"), clock=fleet.clock)
            ValidationService(store, clock=fleet.clock, rollups=rollups).run_pending()
            keys = {
                role: KeyService(store).create(f"test-{role}", role, actor=TEST_ACTOR)[1]
                for role in Role
            }
            engine.dispose()  # a PostgreSQL template takes no connections while copied
            faulty = {s.meter_id: str(s.faults[0].kind) for s in specs if s.faults}
            yield Collected(specs, fleet.clock, url, keys, faulty)
    finally:
        if BACKEND == "postgresql":
            _drop_postgres_database(url)


@pytest.fixture(scope="module")
def served(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = _new_database(tmp_path_factory.mktemp("served"), template=collected.database_url)
    engine = make_engine(url)
    try:
        store = make_session_factory(engine)
        specs = {s.meter_id: s for s in collected.specs}
        fleet = _short_timeouts(StoreFleet(specs, collected.clock, store))
        settings = Settings(database_url=url, secret_key=TEST_SECRET_KEY)
        runtime = ProcessHooks(scheduler_running=lambda: False)
        context = Runtime(
            settings, session_factory=store, jobs=fleet.jobs, profiles=PROFILES
        ).api_context(runtime)
        port = free_ports(1)
        server = ApiServer(create_app(context), "127.0.0.1", port)
        try:
            with _Background(server, fleet, runtime):
                yield Served(
                    f"http://127.0.0.1:{port}",
                    url,
                    fleet,
                    store,
                    collected.keys,
                    context,
                    collected.faulty,
                )
        finally:
            context.close()
    finally:
        engine.dispose()
        if BACKEND == "postgresql":
            _drop_postgres_database(url)
