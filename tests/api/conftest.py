"""A real API server over HTTP, on a store filled by collection from simulated meters.

One fleet per test module: the meters are collected (two days of backfill), the VEE pass
runs, a key is made for each role, then uvicorn serves the app on a loopback port, with the
dispatcher in the same event loop so on-demand reads are carried out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from headend.api.app import create_app
from headend.api.context import ApiContext, Runtime
from headend.api.server import ApiServer
from headend.config import Settings
from headend.domain.enums import ReadKind, Role
from headend.services.keys import KeyService
from headend.services.rollups import RollupService
from headend.services.validation import ValidationService
from headend.store.base import Base
from headend.store.engine import make_session_factory
from headend.store.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.scheduling.simfleet_store import PROFILES, StoreFleet, make_fleet, serving_into_store
from tests.simulator.test_transport_support import free_ports

DAILY = {"kinds": ["registers", "load_profile"]}
FAULTS = "no_answer=1,outage=1"


@dataclass
class Served:
    base_url: str
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


class _Background:
    """uvicorn and the dispatcher in one event loop, in a thread."""

    def __init__(self, server: ApiServer, fleet: StoreFleet, runtime: Runtime) -> None:
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


@pytest.fixture(scope="module")
def served(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    store = make_session_factory(engine)
    tmp: Path = tmp_path_factory.mktemp("api")
    specs = make_fleet(tmp, 8, faults=FAULTS, transport="wrapper", auth="none")
    try:
        with serving_into_store(specs, store) as fleet:
            collect_all(fleet)
            rollups = RollupService(store, ZoneInfo("Asia/Ho_Chi_Minh"), clock=fleet.clock)
            ValidationService(store, clock=fleet.clock, rollups=rollups).run_pending()
            keys = {role: KeyService(store).create(f"test-{role}", role)[1] for role in Role}
            settings = Settings(database_url=database_url, secret_key=TEST_SECRET_KEY)
            runtime = Runtime(scheduler_running=lambda: False)
            context = ApiContext.build(
                settings, store, SecretBox(TEST_SECRET_KEY), PROFILES, fleet.jobs, runtime
            )
            port = free_ports(1)
            server = ApiServer(create_app(context), "127.0.0.1", port)
            faulty = {s.meter_id: str(s.faults[0].kind) for s in specs if s.faults}
            with _Background(server, fleet, runtime):
                yield Served(f"http://127.0.0.1:{port}", fleet, store, keys, context, faulty)
    finally:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
