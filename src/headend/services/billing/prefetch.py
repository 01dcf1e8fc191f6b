"""Reading the next page of billing records while the current one is built and sent.

Reading a page is mostly waiting for the database, building its records is Python: done one
after the other, each waits for the other. ``prefetched`` moves the reading to a background
thread, at most ``ahead`` pages ahead of the consumer, so the database works on the next page
while the records of this one are built. Closing the consumer's iterator (a client gone, a
limit reached) stops the reader after the page it is on; an error while reading reaches the
consumer where the page would have.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1  # how often a blocked reader looks whether the consumer is gone


class _End:
    """The reader has no more items."""


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], ahead: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, produced by a background thread."""
    queue: Queue[T | _End | _Failed] = Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: T | _End | _Failed) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=_POLL_S)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_End())
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="billing-pages", daemon=True)
    reader.start()
    try:
        while True:
            try:
                got = queue.get(timeout=_POLL_S)
            except Empty:
                if not reader.is_alive() and queue.empty():
                    raise RuntimeError("the billing page reader stopped without a word") from None
                continue
            if isinstance(got, _End):
                return
            if isinstance(got, _Failed):
                raise got.error
            yield got
    finally:
        stop.set()
        reader.join()
