"""``headend meters``: the meter registry (import, export, summary)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from headend.cli.main import get_settings
from headend.cli.wiring import known_profiles, secret_box, session_factory
from headend.services.registry import (
    RegistryImportError,
    export_registry,
    import_registry,
    registry_summary,
)

meters_app = typer.Typer(help="The meter registry.", no_args_is_help=True)


@meters_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Registry CSV file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import a registry CSV. Every row is checked first; a file with a bad row changes nothing."""
    settings = get_settings(ctx)
    factory = session_factory(settings)
    progress = None
    if sys.stderr.isatty() and not as_json:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("importing", total=None)
        bar.start()

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

    try:
        summary = import_registry(factory, file, secret_box(settings), known_profiles(), progress)
    except RegistryImportError as exc:
        for error in exc.errors:
            typer.echo(f"{file}: {error}", err=True)
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if progress is not None:
            bar.stop()
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(
            f"{summary.rows} rows: {summary.meters_added} meters added, "
            f"{summary.meters_updated} updated, {summary.meters_unchanged} unchanged; "
            f"{summary.gateways_added} gateways added, {summary.gateways_updated} updated"
        )


@meters_app.command("export")
def export(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: stdout)."
    ),
) -> None:
    """Write the registry as CSV (secrets are named in secret_ref, never written out)."""
    factory = session_factory(get_settings(ctx))
    if output is None:
        export_registry(factory, sys.stdout)
        return
    with output.open("w", newline="", encoding="utf-8") as handle:
        count = export_registry(factory, handle)
    typer.echo(f"{count} meters written to {output}", err=True)


@meters_app.command("summary")
def summary(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Count meters by status, gateway kind and device profile."""
    counts = registry_summary(session_factory(get_settings(ctx)))
    if as_json:
        typer.echo(json.dumps(counts, sort_keys=True))
        return
    typer.echo(f"{counts['meters']} meters on {counts['gateways']} gateways")
    for title, key in (
        ("by status", "by_status"),
        ("by gateway kind", "by_gateway_kind"),
        ("by device profile", "by_device_profile"),
    ):
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts[key].items()))
        typer.echo(f"  {title}: {parts or '-'}")


def register(app: typer.Typer) -> None:
    app.add_typer(meters_app, name="meters")
