"""``headend meters`` and ``headend gateways``: the registry (import, export, list, summary)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from headend.cli.output import emit, emit_json, progress_bar
from headend.cli.state import get_runtime
from headend.domain.enums import MeterStatus
from headend.services.registry.imports import (
    export_registry,
    import_registry,
    registry_summary,
)

METER_COLUMNS = (
    ("meter_id", "meter"),
    ("status", "status"),
    ("gateway", "gateway"),
    ("device_profile", "profile"),
    ("service_point", "service point"),
    ("customer_ref", "customer"),
)
GATEWAY_COLUMNS = (
    ("name", "gateway"),
    ("kind", "kind"),
    ("host", "host"),
    ("port", "port"),
    ("device", "device"),
    ("max_sessions", "sessions"),
    ("site", "site"),
)
meters_app = typer.Typer(help="The meter registry.", no_args_is_help=True)
gateways_app = typer.Typer(help="The gateways meters are reached through.", no_args_is_help=True)


@meters_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Registry CSV file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import a registry CSV. Every row is checked first; a file with a bad row changes nothing."""
    runtime = get_runtime(ctx)
    with progress_bar("importing", quiet=as_json) as bar:
        summary = import_registry(
            runtime.session_factory,
            file,
            runtime.box,
            runtime.profiles,
            lambda phase, done, total: bar.update(done, total, phase),
        )
    if as_json:
        emit_json(summary.as_dict())
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
    factory = get_runtime(ctx).session_factory
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
    counts = registry_summary(get_runtime(ctx).session_factory)
    if as_json:
        emit_json(counts, sort_keys=True)
        return
    typer.echo(f"{counts['meters']} meters on {counts['gateways']} gateways")
    for title, key in (
        ("by status", "by_status"),
        ("by gateway kind", "by_gateway_kind"),
        ("by device profile", "by_device_profile"),
    ):
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts[key].items()))
        typer.echo(f"  {title}: {parts or '-'}")


@meters_app.command("list")
def list_meters(
    ctx: typer.Context,
    status: MeterStatus | None = typer.Option(None, help="Only meters in this status."),
    gateway: str | None = typer.Option(None, help="Only meters behind this gateway."),
    device_profile: str | None = typer.Option(None, help="Only meters of this profile."),
    after: str | None = typer.Option(None, help="Start after this meter id (a cursor)."),
    limit: int = typer.Option(500, min=1, max=5000, help="At most this many meters."),
    as_json: bool = typer.Option(False, "--json", help="Print every registry field as JSON."),
) -> None:
    """Meters in meter-id order, a page at a time as the API lists them (secrets never)."""
    rows = get_runtime(ctx).registry.meters(
        after=after, limit=limit, gateway=gateway, device_profile=device_profile, status=status
    )
    emit(rows, METER_COLUMNS, as_json)


@gateways_app.command("list")
def list_gateways(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")
) -> None:
    """Every gateway by name: kind, address, how many sessions it carries at once and the
    collector site whose workers read it."""
    emit(get_runtime(ctx).registry.gateways(), GATEWAY_COLUMNS, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(meters_app, name="meters")
    app.add_typer(gateways_app, name="gateways")
