"""Building the pages of a bulk billing stream in worker processes.

Reading a page of meters is mostly the database's work; building its records is Python, so
one process builds at most one core's worth of records. ``PageWorkers`` hands the pages of a
stream to a pool of processes, each with its own connections to the store, at most one page
per process ahead of the consumer, and gives the records back in meter-id order, so the
stream keeps its order and its memory stays bounded. The serving process only finds the
meter ids of each page and writes what comes back to the socket.

A worker builds exactly what ``BillingService`` builds in the serving process: it reads and
builds a page named by its meter ids as ``BillingService.built`` does
(``headend.services.billing.pages``), on the device profiles' calendar. An error in a worker
reaches the consumer where the page would have; a consumer that stops (a client gone)
cancels the pages not yet started.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from headend.services.billing.meters import profiles_calendar
from headend.services.billing.pages import built_named
from headend.services.billing.period import BillingPeriod
from headend.services.billing.reads import PageReader
from headend.services.billing.records import Built
from headend.store.engine import make_engine, make_session_factory

T = TypeVar("T")
GC_THRESHOLD = 20_000  # allocations between the collector's youngest passes in a worker

# the worker process's own reader of named meters' records
_built: Callable[[Sequence[str], BillingPeriod], list[Built]] | None = None


def _start(database_url: str, tz: str, profiles_dir: str | None = None) -> None:
    """Runs once in each worker process. Ctrl-C reaches every process of a terminal's group:
    the serving process stops the workers itself, after the pages under way."""
    global _built
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    factory = make_session_factory(make_engine(database_url, pool_size=2))
    zone = ZoneInfo(tz)
    folder = Path(profiles_dir) if profiles_dir is not None else None
    reader = PageReader(zone, profiles_calendar(zone, folder), profiles_dir=folder)
    _built = partial(built_named, factory, reader)
    # A page is many short-lived objects that reference counting frees; the collector's
    # passes over them (every 700 allocations by default) cost about a fifth of a record's
    # time and found next to nothing. What is loaded by now stays out of its passes.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def page_json(meter_ids: Sequence[str], period: BillingPeriod) -> list[str]:
    """The records of these meters as JSON, in meter-id order (run in a worker)."""
    assert _built is not None, "not a billing worker process"
    return [text for _, text in _built(meter_ids, period)]


def page_csv(meter_ids: Sequence[str], period: BillingPeriod) -> list[list[str]]:
    """The records of these meters as CSV rows, in meter-id order (run in a worker)."""
    assert _built is not None, "not a billing worker process"
    return [record.csv_row() for record, _ in _built(meter_ids, period)]


class PageWorkers:
    """A pool of ``processes`` worker processes, started on first use (or by ``start``)."""

    def __init__(
        self,
        database_url: str,
        tz: ZoneInfo,
        processes: int,
        page_size: int,
        profiles_dir: Path | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("a pool needs at least one process")
        self.database_url, self.tz, self.processes = database_url, tz, processes
        self.profiles_dir = profiles_dir
        self.page_size = page_size
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the processes now and wait until each is ready, rather than on first use."""
        pool = self._executor()
        for done in [pool.submit(_ready) for _ in range(self.processes)]:
            done.result()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(
                        self.database_url,
                        self.tz.key,
                        str(self.profiles_dir) if self.profiles_dir is not None else None,
                    ),
                )
            return self._pool

    def in_order(
        self,
        build: Callable[[Sequence[str], BillingPeriod], list[T]],
        pages: Iterable[Sequence[str]],
        period: BillingPeriod,
    ) -> Iterator[T]:
        """``build(page, period)`` of each page, run by the workers, items in page order."""
        pool = self._executor()
        pending: deque[Future[list[T]]] = deque()
        try:
            for page in pages:
                pending.append(pool.submit(build, page, period))
                if len(pending) > self.processes:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


def _ready() -> bool:
    return _built is not None
