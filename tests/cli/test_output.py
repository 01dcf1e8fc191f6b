"""What the commands print: listings as a table or one JSON document, and progress bars that
appear on a terminal's stderr only."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

import pytest

from headend.cli.output import Bar, counted, emit, following, progress_bar, table

ROWS = [
    {"name": "gprs-0001", "kind": "tcp", "port": 4061, "device": None, "active": True},
    {"name": "serial-0", "kind": "serial", "port": None, "device": "/dev/ttyUSB0", "active": False},
]
COLUMNS = (("name", "gateway"), ("port", "port"), ("device", "device"), ("active", "active"))


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Recording(Bar):
    """A bar that is shown and keeps every update."""

    shown = True

    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None]] = []

    def update(self, done: int, total: int | None = None, phase: str | None = None) -> None:
        self.updates.append((done, total))


def test_a_listing_with_json_is_one_document_with_every_key_of_every_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit(ROWS, COLUMNS, as_json=True)
    out = capsys.readouterr().out
    assert json.loads(out) == ROWS
    assert out.count("\n") == 1


def test_a_table_aligns_its_columns_and_puts_counts_on_the_right() -> None:
    lines = table(ROWS, COLUMNS)
    assert lines == [
        "gateway    port  device        active",
        "gprs-0001  4061  -             yes",
        "serial-0      -  /dev/ttyUSB0  no",
    ]


def test_a_table_shows_times_to_the_second_and_selectors_as_written() -> None:
    rows = [{"at": datetime(2026, 11, 5, 1, 2, 3, 456, tzinfo=UTC), "meters": {"all": True}}]
    assert table(rows, (("at", "at"), ("meters", "meters")))[1] == (
        "2026-11-05T01:02:03+00:00  all"
    )


def test_no_bar_is_drawn_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with progress_bar("exporting", 10, stream=stream) as bar:
        bar.update(5)
    assert not bar.shown
    assert stream.getvalue() == ""


def test_no_bar_is_drawn_for_json_output_even_on_a_terminal() -> None:
    stream = Terminal()
    with progress_bar("exporting", 10, quiet=True, stream=stream) as bar:
        bar.update(5)
    assert not bar.shown
    assert stream.getvalue() == ""


def test_a_bar_on_a_terminal_is_drawn_there_and_never_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = Terminal()
    with progress_bar("exporting", 10, stream=stream) as bar:
        bar.update(7, phase="billing 2026-11")
    assert bar.shown
    assert "billing 2026-11" in stream.getvalue()
    assert capsys.readouterr().out == ""


def test_following_work_reports_how_much_has_ended_out_of_the_total() -> None:
    ended = iter(range(100))
    bar = Recording()

    async def work() -> str:
        await asyncio.sleep(0.2)
        return "done"

    result = asyncio.run(following(work(), lambda: next(ended), bar, 40, every_s=0.01))
    assert result == "done"
    assert len(bar.updates) >= 3
    assert [total for _, total in bar.updates] == [40] * len(bar.updates)
    counts = [done for done, _ in bar.updates]
    assert counts == sorted(counts) and counts[0] == 0
    asked = next(ended)
    assert asked == counts[-1] + 1 or asked == counts[-1] + 2  # no more asking after the work


def test_following_work_with_a_silent_bar_asks_for_no_count() -> None:
    asked: list[int] = []

    def count() -> int:
        asked.append(1)
        return 0

    async def work() -> int:
        await asyncio.sleep(0.05)
        return 3

    assert asyncio.run(following(work(), count, Bar(), 10, every_s=0.01)) == 3
    assert asked == []


def test_counted_items_pass_unchanged_and_the_bar_hears_each_hundred_and_the_end() -> None:
    bar = Recording()
    assert list(counted(iter(range(250)), bar)) == list(range(250))
    assert bar.updates == [(100, None), (200, None), (250, None)]
