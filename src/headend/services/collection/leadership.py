"""One coordinator leads at a time: the holder of a PostgreSQL advisory lock.

Two ``headend serve`` processes may run against one store with ``HEADEND_EXECUTOR=celery``:
both serve the API, but only the leader runs the read-plan scheduler, the dispatcher and the
store's background passes. The lock is held by a connection of the leader's own; when the
leader stops (or dies, or loses that connection) PostgreSQL releases the lock and the standby,
which asks for it every ``poll_s``, takes over. A leader that can no longer reach its
connection gives up leading at once, so two never dispatch together.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from headend.store.locks import AdvisoryLock

log = structlog.get_logger(__name__)
LOCK_KEY = 0x48454144454E44  # "HEADEND": the advisory lock of the coordinator's role


class Leadership:
    def __init__(self, database_url: str, poll_s: float = 1.0, key: int = LOCK_KEY) -> None:
        self._lock = AdvisoryLock(database_url, key)
        self.poll_s = poll_s

    @property
    def leading(self) -> bool:
        return self._lock.held

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            try:
                if await asyncio.to_thread(self._lock.try_take):
                    return True
            except Exception as exc:
                log.warning("cannot ask for the coordinator's lock", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        return False

    async def hold(self, stop: asyncio.Event) -> None:
        """While leading, check every ``poll_s`` that the lock is still ours; return when it
        is lost (or ``stop`` is set)."""
        while not stop.is_set():
            if not await asyncio.to_thread(self._lock.still_held):
                log.error("the coordinator's lock is lost: leading stops")
                self._lock.release()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)

    def release(self) -> None:
        self._lock.close()
