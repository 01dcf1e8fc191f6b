"""Entry point of the ``headend`` command: builds settings once and wires the sub-commands."""

from __future__ import annotations

import sys

import typer

from headend.cli.output import Commands
from headend.config import ConfigError, Settings, load_settings
from headend.logs import configure_logging

app = typer.Typer(
    name="headend",
    help="AMI head-end: read DLMS/COSEM meters, validate the reads, serve billing records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Commands,
)


class State:
    """What every sub-command receives through ``ctx.obj``."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level, self._settings.log_json)
        return self._settings


def get_settings(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = State()
        ctx.find_root().obj = state
    return state.settings


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = State()


def _register() -> None:
    # Each sub-command module exposes ``register(app)``.
    from headend.cli import collect, db, export, jobs, keys, meters, probe, reports, simulate, vee

    for module in (db, meters, collect, jobs, keys, reports, export, probe, simulate, vee):
        module.register(app)
    # -- further sub-command modules register below --


def main() -> None:
    _register()
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"headend: {exc}", err=True)
        sys.exit(2)
