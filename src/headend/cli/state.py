"""What every sub-command receives through ``ctx.obj``: the settings, built once."""

from __future__ import annotations

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


def get_settings(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = State()
        ctx.find_root().obj = state
    return state.settings
