"""What every sub-command receives through ``ctx.obj``: the settings, built once, and the
composition root built from them (``headend.runtime``), whose services the commands call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from headend.config import Settings, load_settings
from headend.logs import configure_logging
from headend.services.access.audit import Actor

if TYPE_CHECKING:
    from headend.runtime import Runtime

CLI = Actor("cli")  # who the audit trail names for a change made with the ``headend`` command


class State:
    """What every sub-command receives through ``ctx.obj``."""

    _settings: Settings | None = None
    _runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level, self._settings.log_json)
        return self._settings

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            # imported here: commands that need no services (simulate, vee) start without them
            from headend.runtime import Runtime

            self._runtime = Runtime.from_settings(self.settings)
        return self._runtime


def _state(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = State()
        ctx.find_root().obj = state
    return state


def get_settings(ctx: typer.Context) -> Settings:
    return _state(ctx).settings


def get_runtime(ctx: typer.Context) -> Runtime:
    """The process's services, built from the settings on first use."""
    return _state(ctx).runtime
