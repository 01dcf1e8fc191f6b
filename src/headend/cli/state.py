"""What every sub-command receives through ``ctx.obj``: the settings, built once."""

from __future__ import annotations

import click
import typer

from headend.config import Settings, load_settings
from headend.logs import configure_logging
from headend.services.access.audit import Actor

CLI = Actor("cli")  # who the audit trail names for a change made with the ``headend`` command


class State:
    """What every sub-command receives through ``ctx.obj``."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level, self._settings.log_json)
        return self._settings


def current_settings() -> Settings:
    """The settings of the command being run, for a command that takes no ``ctx`` (built
    here when the command runs outside a click context, e.g. in a worker thread)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return State().settings
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj.settings


def get_settings(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = State()
        ctx.find_root().obj = state
    return state.settings
