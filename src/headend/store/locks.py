"""A PostgreSQL advisory lock held by a connection of its own (session level): it lasts as long
as that connection, and goes with it when the process holding it dies."""

from __future__ import annotations

import contextlib

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool


class AdvisoryLock:
    def __init__(self, database_url: str, key: int) -> None:
        self._engine = create_engine(database_url, poolclass=NullPool)
        self.key = key
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_take(self) -> bool:
        """Take the lock if no other session holds it; True when this one holds it now."""
        if self._conn is not None:
            return True
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def still_held(self) -> bool:
        """One round trip on the holding connection: the lock lasts as long as it answers."""
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.scalar(text("SELECT 1"))
        except Exception:
            return False
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        self.release()
        self._engine.dispose()
