"""Reading billing pages ahead of the consumer: order, early close, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from headend.services.billing.prefetch import prefetched


def test_prefetched_items_come_in_order_and_all_of_them() -> None:
    assert list(prefetched(iter(range(50)))) == list(range(50))
    assert list(prefetched(iter([]))) == []


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    reader = prefetched(pages(), ahead=1)
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()
    assert closed.wait(5)
    assert len(produced) <= 4  # the two taken, one waiting in the queue, one being read
    assert not [t for t in threading.enumerate() if t.name == "billing-pages"]


def test_an_error_while_reading_reaches_the_consumer_after_the_items_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise LookupError("the store went away")

    reader = prefetched(pages())
    assert next(reader) == 1
    with pytest.raises(LookupError, match="went away"):
        next(reader)
