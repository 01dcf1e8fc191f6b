"""Engine and session factories. Nothing here runs at import time."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, pool_size: int | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout. A server
    database keeps ``pool_size`` connections open (SQLAlchemy's default when None): an API
    under load that needs more than the pool holds opens and closes a connection per
    request, and a new PostgreSQL connection costs more than the request itself."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if pool_size is not None:
        kwargs.setdefault("pool_size", pool_size)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine, IDLE_PING_S)
    return engine


IDLE_PING_S = 10.0


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    """A pooled connection unused for ``idle_s`` seconds is tried with ``SELECT 1`` before it
    is handed out, and replaced if the server has gone (restarted, or closed it while idle).
    One in steady use is not: a ping before every checkout is a round trip per request. A
    connection that fails in use makes SQLAlchemy drop the whole pool, as it does anyway."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection was gone: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
