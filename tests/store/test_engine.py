"""The engine's pool: a connection left idle is tried before use, one in steady use is not."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from headend.store import engine as engine_module
from headend.store.engine import make_engine


def test_a_pooled_connection_whose_server_side_ended_while_idle_is_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite file has no server to lose")
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.05)
    engine = make_engine(database_url, pool_size=1)
    other = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.scalar(text("SELECT pg_backend_pid()"))
        with other.connect() as conn:  # as a restarted server or an idle timeout would
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            conn.commit()
        time.sleep(0.1)
        with engine.connect() as conn:
            second = conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        engine.dispose()
        other.dispose()


def test_a_connection_in_steady_use_is_not_pinged_and_a_lost_one_fails_once(
    database_url: str,
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite file has no server to lose")
    engine = make_engine(database_url, pool_size=1)  # idle for less than IDLE_PING_S
    other = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.scalar(text("SELECT pg_backend_pid()"))
        with other.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            conn.commit()
        time.sleep(0.1)
        with pytest.raises(DBAPIError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # no ping first: the loss shows here
        assert failed.value.connection_invalidated
        with engine.connect() as conn:  # and the pool has started over
            assert conn.scalar(text("SELECT pg_backend_pid()")) != first
    finally:
        engine.dispose()
        other.dispose()
