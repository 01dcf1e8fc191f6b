"""Job ends announced through PostgreSQL's NOTIFY, so a coordinator learns at once that a
worker ended a job instead of asking for the states of every job out, over and over.

A notice is a hint, never the record: the job's row is. It is sent in the transaction that
ends the jobs (PostgreSQL delivers it when that commits, and not at all if it rolls back); a
listener that misses some (its connection dropped) still learns from reading the rows.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

CHANNEL = "headend_job_ends"
MAX_PAYLOAD = 7000  # bytes of one notice (PostgreSQL takes under 8000)
End = tuple[int, str, str | None]  # job id, state, failure category


def announce(session: Session, ends: Sequence[End]) -> None:
    """Tell listeners these jobs ended (or left ``running``), once the transaction commits;
    nothing on SQLite, which has no listener."""
    if not ends or session.get_bind().dialect.name != "postgresql":
        return
    chunk: list[End] = []
    size = 2
    for end in ends:
        item = len(json.dumps(end)) + 1
        if chunk and size + item > MAX_PAYLOAD:
            _notify(session, chunk)
            chunk, size = [], 2
        chunk.append(end)
        size += item
    _notify(session, chunk)


def _notify(session: Session, ends: list[End]) -> None:
    payload = json.dumps(ends, separators=(",", ":"))
    session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


class EndsListener:
    """A connection of its own that listens for job ends; ``wait`` returns those announced
    since the last call, waiting up to ``timeout_s`` for the first."""

    def __init__(self, database_url: str) -> None:
        self._engine: Engine = create_engine(database_url, poolclass=NullPool)
        self._raw: Any = None

    def connect(self) -> None:
        """Start listening now (notices sent before are not heard)."""
        self._connection()

    def _connection(self) -> Any:
        if self._raw is None:
            raw = self._engine.raw_connection()
            driver: Any = raw.driver_connection
            driver.autocommit = True
            driver.execute(f"LISTEN {CHANNEL}")
            self._raw = raw
        return self._raw.driver_connection

    def wait(self, timeout_s: float) -> list[End]:
        """The ends announced, waiting up to ``timeout_s`` for the first; a broken connection
        raises (the next call connects again, and the caller reads the rows meanwhile)."""
        try:
            conn = self._connection()
            found: list[End] = []
            for notice in conn.notifies(timeout=timeout_s, stop_after=1):
                found.extend(_parsed(notice.payload))
            for notice in conn.notifies(timeout=0.0):  # and whatever came with it
                found.extend(_parsed(notice.payload))
            return found
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.close()

    def close(self) -> None:
        self._drop()
        self._engine.dispose()


def _parsed(payload: str) -> list[End]:
    try:
        items = json.loads(payload)
        return [(int(i), str(state), None if cat is None else str(cat)) for i, state, cat in items]
    except (ValueError, TypeError):
        return []
