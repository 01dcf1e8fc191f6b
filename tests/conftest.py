"""Test fixtures shared by the whole suite.

``HEADEND_TEST_DATABASE`` selects the store the tests run on: ``sqlite`` (default, a file in a
temporary folder) or ``postgresql`` (a fresh database on the server at
``HEADEND_TEST_POSTGRES_URL``, default the local one, created for the run and dropped after it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from headend.services.access.audit import Actor
from headend.store import migrations
from headend.store.base import Base
from headend.store.engine import make_engine, make_session_factory

BACKEND = os.environ.get("HEADEND_TEST_DATABASE", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TEST_SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
TEST_ACTOR = Actor("tests")  # who the audit trail names for a change a test makes

if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError("HEADEND_TEST_DATABASE must be 'sqlite' or 'postgresql'")


def _create_postgres_database(template: str | None = None) -> str:
    """A new database on the test server; a copy of ``template`` (a database URL) if given."""
    name = f"headend_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the selected kind, for this test alone."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = _create_postgres_database()
    try:
        yield url
    finally:
        _drop_postgres_database(url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head, shared by the run; ``store`` empties it after each test."""
    if BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'headend.db'}"
        migrations.upgrade(url)
        yield url
        return
    url = _create_postgres_database()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        _drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory on the migrated test database, emptied after the test."""
    yield make_session_factory(engine)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def headend_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point ``headend`` at ``database_url``, in this process (through ``monkeypatch``) and in
    the environment returned for a child process."""
    env = {
        "HEADEND_DATABASE_URL": database_url,
        "HEADEND_SECRET_KEY": TEST_SECRET_KEY,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running ``headend`` against the test database."""
    return headend_env(database_url, monkeypatch)


REPO = Path(__file__).resolve().parents[1]

# ``served``: a filled store behind a live API, for the API, dashboard and export tests;
# ``workers_support``: RabbitMQ and worker processes, for the distributed executor's tests
pytest_plugins = ["tests.served", "tests.scheduling.workers_support"]


def import_sample_fleet(store: sessionmaker[Session]) -> None:
    """The registry of ``fixtures/sample_fleet.csv``, imported into ``store``."""
    from headend.services.registry.imports import import_registry
    from headend.store.secrets import SecretBox

    import_registry(
        store,
        REPO / "fixtures" / "sample_fleet.csv",
        SecretBox(TEST_SECRET_KEY),
        frozenset({"single_phase_residential", "three_phase_tou"}),
    )


_DB_FIXTURES = {"store", "database_url", "engine", "fresh_database_url", "cli_env", "served"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches the store, so ``-m db`` selects them for PostgreSQL."""
    for item in items:
        if _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
