"""Running Alembic from code: the schema is owned by the migrations in ``alembic/``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_REPO = Path(__file__).resolve().parents[3]


class MigrationsNotFound(Exception):
    """``alembic.ini`` is not where headend looks for it (headend runs from its source
    checkout): a configuration problem, which the command line reports as one."""


def alembic_config(database_url: str) -> Config:
    ini = _REPO / "alembic.ini"
    if not ini.exists():
        raise MigrationsNotFound(
            f"alembic.ini not found at {ini}; run headend from its source checkout"
        )
    config = Config(str(ini))
    config.set_main_option("script_location", str(_REPO / "alembic"))
    config.attributes["url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from headend.store.engine import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
