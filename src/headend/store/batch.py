"""Many small store calls made into a few large ones.

Sessions start and end in bursts. Each one asks the store for a little (its meter's context,
landing its read); a ``StoreBatch`` gathers the requests made within a few milliseconds and
serves them with one call (one transaction) in the store's thread.

A call the store refuses for a passing reason (a SQLite file locked by another writer for
longer than its busy timeout, a connection to PostgreSQL lost) is made again after a pause,
for up to ``RETRY_FOR_S`` seconds: its transaction was rolled back, and what it carries (a
read, how a session ended) exists nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

Item = TypeVar("Item")
Result = TypeVar("Result")
GATHER_S = 0.01  # how long a request waits for others to go with it
RETRY_FOR_S = 300.0  # how long a call the store refuses for a passing reason is tried again
RETRY_PAUSES_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # then every 5 s

log = structlog.get_logger(__name__)


def passing(exc: BaseException) -> bool:
    """The store refused for a reason that goes away: a SQLite file busy or locked; on a
    server, a connection lost or refused, a deadlock or serialization failure (PostgreSQL's
    driver raises those as operational errors, and a wrong statement otherwise)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__ == "sqlite3":  # where "no such table" is operational too
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message
    return True


class StoreBatch(Generic[Item, Result]):
    """``submit(item)`` returns ``handle(items)[i]`` for its item; ``handle`` runs through
    ``store`` with at most ``size`` items. A result that is an exception is raised to its
    submitter; if ``handle`` raises, every submitter of that batch gets the exception."""

    def __init__(
        self,
        store: Callable[..., Awaitable[Any]],
        handle: Callable[[Sequence[Item]], Sequence[Result | Exception]],
        size: int,
        gather_s: float = GATHER_S,
        retry_for_s: float = RETRY_FOR_S,
    ) -> None:
        self._store, self._handle, self._size, self._gather_s = store, handle, size, gather_s
        self._retry_for_s = retry_for_s
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._gather_s)
            batch, self._waiting = self._waiting[: self._size], self._waiting[self._size :]
            results: Sequence[Result | Exception]
            try:
                results = await self._call([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _call(self, items: list[Item]) -> Sequence[Result | Exception]:
        give_up = time.monotonic() + self._retry_for_s
        attempt = 0
        while True:
            try:
                results: Sequence[Result | Exception] = await self._store(self._handle, items)
                return results
            except Exception as exc:
                if not passing(exc) or time.monotonic() >= give_up:
                    raise
                pause = RETRY_PAUSES_S[min(attempt, len(RETRY_PAUSES_S) - 1)]
                log.warning(
                    "the store refused a batch; trying again",
                    items=len(items),
                    pause_s=pause,
                    error=str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0],
                )
                await asyncio.sleep(pause)
                attempt += 1
