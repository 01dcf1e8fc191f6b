"""Running ``headend`` in the test process (fast) or in its own, with stderr on a terminal.

In the test process the command's settings come from the environment (``cli_env`` points it
at the test store) and it configures logging onto the runner's stderr, a stream that is
closed when the command returns: the logging configuration is put back after every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import structlog
import typer
from typer.testing import CliRunner

from headend.cli import collect, db, export, jobs, keys, meters, reports
from headend.cli.main import State
from headend.cli.output import Commands

HEADEND = [sys.executable, "-m", "headend"]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


Headend = Callable[..., Ran]


def _app() -> typer.Typer:
    app = typer.Typer(cls=Commands)

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = State()

    for module in (db, meters, collect, jobs, keys, reports, export):
        module.register(app)
    return app


@pytest.fixture
def headend() -> Iterator[Headend]:
    """``headend(*args)`` runs the command in this process and gives its exit code, stdout
    and stderr; the environment decides the store (ask for ``cli_env`` for the test one)."""
    app = _app()
    saved = structlog.get_config()

    def run(*args: str) -> Ran:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    try:
        yield run
    finally:
        structlog.configure(**saved)


def on_a_terminal(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> tuple[int, bytes, bytes]:
    """Run ``headend`` in its own process with stdout on a pipe and stderr on a
    pseudo-terminal: its exit code, its stdout, and everything the terminal received."""
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [*HEADEND, *args],
        env={**env, "TERM": "xterm", "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    terminal = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                block = os.read(primary, 1 << 16)
            except OSError:  # every writer has closed the terminal
                return
            if not block:
                return
            terminal.extend(block)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    finally:
        reader.join(10)
        os.close(primary)
    return process.returncode, stdout, bytes(terminal)
