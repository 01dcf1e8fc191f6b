"""What the commands print, in one place.

* A listing goes to stdout either as an aligned text table or, with ``--json``, as one JSON
  document (``emit``). The JSON keys are the listing's own, stable; the table is for eyes.
* Long work shows a progress bar on stderr, never on stdout, and only when stderr is a
  terminal and no ``--json`` was asked for (``progress_bar``). Otherwise the bar is silent and
  costs nothing, so a redirected or piped run prints exactly its output.
* A service's refusal (``headend.services.errors``) ends any command the same way, in
  ``Commands``: one line on stderr naming the command (and the option at fault), exit 2; a
  file with bad rows gets a line per problem naming the file, exit 1.
* With ``--json``, stdout carries the JSON document and nothing else: while the command runs,
  ``sys.stdout`` points at stderr (so whatever a library prints lands there), and the JSON is
  written to the real stdout (``json_stdout``), in ``Commands`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, TextIO, TypeVar

import typer
from typer.core import TyperGroup

from headend.services.errors import Invalid, ServiceError

T = TypeVar("T")
Row = Mapping[str, Any]
Columns = Sequence[tuple[str, str]]  # (key in the row, column title)


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """One line on stderr naming the command, then exit (2: the request was wrong)."""
    typer.echo(f"headend {command}: {message}", err=True)
    raise typer.Exit(code)


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def refuse(command: str, exc: ServiceError) -> NoReturn:
    """A service's refusal: the problems of a file line by line (exit 1), or one line naming
    the option at fault, if one is (exit 2: the request was wrong)."""
    if isinstance(exc, Invalid) and exc.source:
        for error in exc.errors:
            typer.echo(f"{exc.source}: {error}", err=True)
        typer.echo(f"{exc.source}: {exc}", err=True)
        raise typer.Exit(1)
    if isinstance(exc, Invalid) and exc.errors:
        fail(command, "; ".join(f"{_option(e.field)}: {e.message}" for e in exc.errors))
    if isinstance(exc, Invalid) and exc.field:
        fail(command, f"{_option(exc.field)}: {exc}")
    fail(command, str(exc))


_json_out: list[TextIO] = []  # the real stdout while a --json command runs


def json_stdout() -> TextIO:
    """Where a ``--json`` command writes its JSON: the process's real stdout."""
    return _json_out[-1] if _json_out else sys.stdout


@contextmanager
def stdout_for_json_only(active: bool) -> Iterator[None]:
    """While active, anything printed to ``sys.stdout`` goes to stderr; only what is written
    to ``json_stdout()`` reaches stdout."""
    if not active:
        yield
        return
    real = sys.stdout
    _json_out.append(real)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        _json_out.pop()
        real.flush()


class Commands(TyperGroup):
    """The ``headend`` command group: a ``ServiceError`` from any sub-command ends it through
    ``refuse``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["headend.words"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with stdout_for_json_only("--json" in ctx.meta.get("headend.words", [])):
            try:
                return super().invoke(ctx)
            except ServiceError as exc:
                refuse(self._path(ctx), exc)

    def _path(self, ctx: Any) -> str:
        """The sub-command's name, e.g. ``reports failed-reads``."""
        names: list[str] = []
        group: TyperGroup | None = self
        for word in ctx.meta.get("headend.words", []):
            found = group.get_command(ctx, word) if group is not None else None
            if found is None:
                break
            names.append(word)
            group = found if isinstance(found, TyperGroup) else None
        return " ".join(names)


def emit_json(
    doc: Any, *, indent: int | None = None, sort_keys: bool = False, ensure_ascii: bool = True
) -> None:
    """One JSON document on stdout."""
    out = json_stdout()
    out.write(json.dumps(doc, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii))
    out.write("\n")
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, Mapping):  # e.g. a plan's selector: all, gateway=NAME
        return ",".join(str(k) if v is True else f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _numeric(values: Iterable[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int) and not isinstance(v, bool) for v in present)


def table(rows: Sequence[Row], columns: Columns) -> list[str]:
    """The rows as lines of text under a title line, columns aligned; counts to the right."""
    texts = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    lines = []
    widths = [
        max([len(title), *(len(line[k]) for line in texts)]) for k, (_, title) in enumerate(columns)
    ]
    right = [_numeric(row.get(key) for row in rows) for key, _ in columns]
    for cells in [[title for _, title in columns], *texts]:
        padded = (
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        )
        lines.append("  ".join(padded).rstrip())
    return lines


def emit(rows: Sequence[Row], columns: Columns, as_json: bool) -> None:
    """A listing: the rows as a JSON array with every key, or a table of ``columns``."""
    if as_json:
        emit_json(list(rows))
        return
    for line in table(rows, columns):
        typer.echo(line)


class Bar:
    """Progress of long work. This one draws nothing: stderr is not a terminal, or the
    output is JSON. ``update`` is cheap enough to call per page of work."""

    shown = False

    def update(self, done: int, total: int | None = None, phase: str | None = None) -> None:
        """``done`` of ``total`` (None: not known yet) units of work, in ``phase``."""


class _RichBar(Bar):
    shown = True

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, done: int, total: int | None = None, phase: str | None = None) -> None:
        changes: dict[str, Any] = {"completed": done}
        if total is not None:
            changes["total"] = total
        if phase is not None:
            changes["description"] = phase
        self._progress.update(self._task, **changes)


@contextmanager
def progress_bar(
    phase: str, total: int | None = None, *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[Bar]:
    """A bar on ``stream`` (default stderr) while the block runs, removed when it ends; a
    silent ``Bar`` when ``quiet`` (``--json``) or when the stream is not a terminal."""
    err = sys.stderr if stream is None else stream
    if quiet or not err.isatty():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=err),
        transient=True,
        redirect_stdout=False,  # what the command prints stays on stdout, bar or not
    )
    with progress:
        yield _RichBar(progress, progress.add_task(phase, total=total))


def counted(items: Iterable[T], bar: Bar, every: int = 100) -> Iterator[T]:
    """The items, telling ``bar`` how many have passed every ``every`` items and at the end."""
    done = 0
    for done, item in enumerate(items, 1):
        yield item
        if done % every == 0:
            bar.update(done)
    bar.update(done)


async def following(
    work: Awaitable[T], count: Callable[[], int], bar: Bar, total: int, every_s: float = 1.0
) -> T:
    """Await ``work``; meanwhile ask ``count`` (a blocking call, e.g. to the store) every
    ``every_s`` seconds how much of ``total`` is done and show it on ``bar``. A silent bar
    asks nothing."""
    if not bar.shown:
        return await work

    async def watch() -> None:
        while True:
            bar.update(await asyncio.to_thread(count), total)
            await asyncio.sleep(every_s)

    watcher = asyncio.create_task(watch())
    try:
        return await work
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
