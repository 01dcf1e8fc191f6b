"""StoreBatch: a call the store refuses for a passing reason is made again, nothing dropped."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from headend.store import batch as batch_module
from headend.store.batch import StoreBatch


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


class FlakyStore:
    """A store thread whose first ``refusals`` calls fail with ``error``."""

    def __init__(self, refusals: int, error: Callable[[], Exception]) -> None:
        self.refusals, self.error, self.calls = refusals, error, 0

    async def __call__(self, handle: Callable[..., Any], items: Sequence[int]) -> Any:
        self.calls += 1
        if self.calls <= self.refusals:
            raise self.error()
        return handle(items)


def _echo(items: Sequence[int]) -> list[int]:
    return list(items)


@pytest.fixture(autouse=True)
def _short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "RETRY_PAUSES_S", (0.001,))


def test_a_batch_the_store_refuses_while_locked_is_stored_once_the_lock_is_gone() -> None:
    store = FlakyStore(3, _locked)
    stored: list[int] = []

    def handle(items: Sequence[int]) -> list[int]:
        stored.extend(items)
        return [i * 10 for i in items]

    async def run() -> list[int]:
        batcher = StoreBatch(store, handle, size=10)
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(4))))

    assert asyncio.run(run()) == [0, 10, 20, 30]
    assert stored == [0, 1, 2, 3] and store.calls == 4


def test_a_refusal_that_does_not_pass_reaches_every_submitter_at_once() -> None:
    store = FlakyStore(1, lambda: IntegrityError("INSERT ...", {}, Exception("duplicate")))

    async def run() -> list[Any]:
        batcher: StoreBatch[int, int] = StoreBatch(store, _echo, size=10)
        return await asyncio.gather(*(batcher.submit(i) for i in range(2)), return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, IntegrityError) for r in results) and store.calls == 1


def test_a_missing_table_is_not_taken_for_a_lock() -> None:
    missing = OperationalError("INSERT ...", {}, sqlite3.OperationalError("no such table: x"))
    store = FlakyStore(1, lambda: missing)

    async def run() -> Any:
        batcher: StoreBatch[int, int] = StoreBatch(store, _echo, size=10)
        return await asyncio.gather(batcher.submit(1), return_exceptions=True)

    (result,) = asyncio.run(run())
    assert result is missing and store.calls == 1


def test_a_store_locked_for_longer_than_the_retry_time_fails_the_batch() -> None:
    store = FlakyStore(10_000, _locked)

    async def run() -> Any:
        batcher: StoreBatch[int, int] = StoreBatch(store, _echo, size=10, retry_for_s=0.05)
        return await asyncio.gather(batcher.submit(1), return_exceptions=True)

    (result,) = asyncio.run(run())
    assert isinstance(result, OperationalError) and store.calls > 1
