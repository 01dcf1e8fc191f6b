"""``headend worker``: meter sessions on this machine for a coordinator (executor celery)."""

from __future__ import annotations

import typer

from headend.cli.state import get_runtime, get_settings
from headend.domain.registry_format import SITE_NAME


def worker(
    ctx: typer.Context,
    site: list[str] = typer.Option(
        [],
        "--site",
        help="Read this site's gateways; repeat for more (default HEADEND_WORKER_SITES; none: "
        "the gateways that belong to no site).",
    ),
    sessions: int | None = typer.Option(
        None, min=1, max=5000, help="Sessions at once (default HEADEND_WORKER_SESSIONS)."
    ),
) -> None:
    """Run meter sessions for the coordinator (`headend serve` or `headend collect` with
    HEADEND_EXECUTOR=celery) until interrupted: batches of read jobs come through the broker,
    reads land in the shared PostgreSQL store."""
    settings = get_settings(ctx)
    sites = tuple(dict.fromkeys(site)) or settings.sites
    bad = [name for name in sites if not SITE_NAME.fullmatch(name)]
    if bad:
        typer.echo(
            f"headend: not a site name: {', '.join(map(repr, bad))} (letters, digits, '.', "
            "'_' and '-', up to 64)",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(
        f"headend: worker for {', '.join(sites) if sites else 'gateways of no site'}, "
        f"up to {sessions or settings.worker_sessions} sessions, broker "
        f"{_safe(settings.broker_url)}",
        err=True,
    )
    get_runtime(ctx).worker(sites, sessions or settings.worker_sessions)


def _safe(url: str) -> str:
    """The broker URL without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
