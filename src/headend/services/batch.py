"""Many small store calls made into a few large ones.

Sessions start and end in bursts. Each one asks the store for a little (its meter's context,
landing its read); a ``StoreBatch`` gathers the requests made within a few milliseconds and
serves them with one call (one transaction) in the store's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
GATHER_S = 0.01  # how long a request waits for others to go with it


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
    ) -> None:
        self._store, self._handle, self._size, self._gather_s = store, handle, size, gather_s
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
                results = await self._store(self._handle, [item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
