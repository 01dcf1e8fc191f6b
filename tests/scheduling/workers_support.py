"""Real RabbitMQ and real ``headend worker`` processes for the distributed executor's tests.

``broker_url`` gives each test a RabbitMQ virtual host of its own (made with rabbitmqctl,
removed at the end), so no test or run side by side shares a queue or a message.
``worker_pool`` starts worker processes against the test store and waits for their
heartbeats; ``coordinator`` builds the coordinator's dispatcher over the same store and broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from headend.scheduling.celery_app import queue_of, sender
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.scheduling.remote import RemoteSessions
from headend.services.collection.jobs import JobService
from headend.services.collection.workers import Workers
from headend.store.notices import EndsListener
from tests.conftest import BACKEND, TEST_SECRET_KEY

RABBIT = os.environ.get("HEADEND_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")
LEASE_S = 6.0

needs_postgresql = pytest.mark.skipif(
    BACKEND != "postgresql", reason="workers share a PostgreSQL store (run with -m db on it)"
)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def broker_url() -> Iterator[str]:
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("RabbitMQ is not installed (rabbitmqctl not found): `make test` needs it")
    vhost = f"headend-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"{RABBIT}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@dataclass
class WorkerPool:
    database_url: str
    broker_url: str
    folder: Path
    store: sessionmaker[Session]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "HEADEND_DATABASE_URL": self.database_url,
            "HEADEND_SECRET_KEY": TEST_SECRET_KEY,
            "HEADEND_BROKER_URL": self.broker_url,
            "HEADEND_JOB_LEASE_S": str(LEASE_S),
            "HEADEND_BACKFILL_DAYS": "2",
            "HEADEND_CONNECT_TIMEOUT_S": "2",
            "HEADEND_RESPONSE_TIMEOUT_S": "2",
            "HEADEND_LOG_LEVEL": "WARNING",
            "HEADEND_EXECUTOR": "celery",
        }

    def start(self, *sites: str, sessions: int = 20, wait: bool = True) -> subprocess.Popen[bytes]:
        number = len(self.processes)
        env = {**self.environment(), "HEADEND_SPOOL_DIR": str(self.folder / f"spool-{number}")}
        argv = [sys.executable, "-m", "headend", "worker", "--sessions", str(sessions)]
        for site in sites:
            argv += ["--site", site]
        log = (self.folder / f"worker-{number}.log").open("wb")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        if wait:
            self.wait_alive(process)
        return process

    def name_of(self, process: subprocess.Popen[bytes]) -> str:
        return next(
            w.name
            for w in Workers(self.store).recent(timedelta(hours=1))
            if w.name.endswith(f":{process.pid}")
        )

    def wait_alive(self, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        workers = Workers(self.store)
        while time.monotonic() < deadline:
            if any(w.name.endswith(f":{process.pid}") for w in workers.alive()):
                time.sleep(1.0)  # its consumer is up a moment after its first heartbeat
                return
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker {process.pid} did not start:\n{self.logs()}")

    def coordinator(self, name: str) -> subprocess.Popen[bytes]:
        """``headend serve --no-api`` as a coordinator of the Celery executor; its output goes
        to ``coordinator-NAME.log``."""
        env = {**self.environment(), "HEADEND_SPOOL_DIR": str(self.folder / f"spool-{name}")}
        log = (self.folder / f"coordinator-{name}.log").open("wb")
        argv = [sys.executable, "-m", "headend", "serve", "--no-api"]
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def said(self, name: str) -> str:
        return (self.folder / f"coordinator-{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        logs = sorted(self.folder.glob("worker-*.log")) + sorted(self.folder.glob("coord*.log"))
        return "\n".join(f"== {p.name}\n" + p.read_text(errors="replace") for p in logs)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def worker_pool(
    database_url: str, broker_url: str, store: sessionmaker[Session], tmp_path: Path
) -> Iterator[WorkerPool]:
    pool = WorkerPool(database_url, broker_url, tmp_path, store)
    try:
        yield pool
    finally:
        pool.stop_all()


def coordinator(
    jobs: JobService, store: sessionmaker[Session], broker_url: str, max_sessions: int = 50
) -> Dispatcher:
    """The coordinator's dispatcher: sessions on the workers, sent through the broker."""
    send = sender(broker_url)
    url = store.kw["bind"].url.render_as_string(hide_password=False)
    listener = EndsListener(url)
    remote = RemoteSessions(jobs, Workers(store), send, queue_of, LEASE_S, 0.1, listener)
    limits = DispatcherLimits(max_sessions=max_sessions, poll_interval_s=0.05)
    return Dispatcher(jobs, None, limits, remote=remote)
