"""Entry point of the ``headend`` command: builds settings once and wires the sub-commands."""

from __future__ import annotations

import sys

import typer

from headend.cli.output import Commands
from headend.cli.state import State
from headend.config import ConfigError

app = typer.Typer(
    name="headend",
    help="AMI head-end: read DLMS/COSEM meters, validate the reads, serve billing records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Commands,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = State()


def _register() -> None:
    # Each sub-command module exposes ``register(app)``.
    from headend.cli import collect, db, export, jobs, keys, meters, probe, reports, simulate, vee

    for module in (db, meters, collect, jobs, keys, reports, export, probe, simulate, vee):
        module.register(app)
    # -- further sub-command modules register below --
    from headend.cli import profiles, worker

    profiles.register(app)
    worker.register(app)


def main() -> None:
    _register()
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"headend: {exc}", err=True)
        sys.exit(2)
