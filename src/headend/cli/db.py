"""``headend db``: bring the store's schema to a revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from headend.cli.output import emit_json
from headend.cli.state import get_settings
from headend.config import ConfigError
from headend.store import migrations

db_app = typer.Typer(help="Create and migrate the SQL store (Alembic).", no_args_is_help=True)


@contextmanager
def _migrations() -> Iterator[None]:
    """Migrations not found where headend looks for them: a configuration error (exit 2)."""
    try:
        yield
    except migrations.MigrationsNotFound as exc:
        raise ConfigError(str(exc)) from exc


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Migrate the store to REVISION (default: the latest)."""
    settings = get_settings(ctx)
    with _migrations():
        migrations.upgrade(settings.database_url, revision)
    current = migrations.current_revision(settings.database_url)
    typer.echo(f"{_redacted(settings.database_url)} is at revision {current}")


@db_app.command("downgrade")
def downgrade(ctx: typer.Context, revision: str = typer.Argument(..., help="e.g. base")) -> None:
    """Migrate the store back to REVISION ('base' removes every table)."""
    settings = get_settings(ctx)
    with _migrations():
        migrations.downgrade(settings.database_url, revision)
    current = migrations.current_revision(settings.database_url)
    typer.echo(f"{_redacted(settings.database_url)} is at revision {current or 'base'}")


@db_app.command("current")
def current(
    ctx: typer.Context,
    as_json: bool = typer.Option(
        False, "--json", help="Print the revision, the head and the store's URL as JSON."
    ),
) -> None:
    """Print the store's schema revision ('base': no tables yet)."""
    settings = get_settings(ctx)
    revision = migrations.current_revision(settings.database_url) or "base"
    if not as_json:
        typer.echo(revision)
        return
    from alembic.script import ScriptDirectory

    with _migrations():
        config = migrations.alembic_config(settings.database_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    emit_json(
        {
            "database": _redacted(settings.database_url),
            "revision": revision,
            "head": head,
            "up_to_date": revision == head,
        }
    )


@db_app.command("upkeep")
def upkeep(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Make the interval data's monthly partitions ahead (PostgreSQL), move rows waiting in
    the default partition into their month's, and drop months older than
    HEADEND_INTERVAL_RETENTION_MONTHS (0: keep everything). ``headend serve`` does this
    when it starts and every six hours."""
    from headend.runtime import Runtime

    summary = Runtime(get_settings(ctx)).upkeep.run()
    if as_json:
        emit_json(summary.as_dict())
        return
    created = ", ".join(m.strftime("%Y-%m") for m in summary.created) or "none"
    dropped = ", ".join(m.strftime("%Y-%m") for m in summary.dropped) or "none"
    typer.echo(
        f"partitions created: {created}; dropped: {dropped}; blocks deleted: {summary.deleted}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
