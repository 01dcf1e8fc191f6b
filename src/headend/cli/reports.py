"""``headend reports`` and ``headend findings``: the operators' reports, as the API gives them.

``--json`` prints what ``GET /api/v1/reports/...`` returns (times in UTC, ISO 8601); the
table shows the same rows for reading. Days are local days in the utility's time zone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import typer
from pydantic import BaseModel

from headend.cli.output import emit, fail
from headend.cli.state import get_runtime
from headend.services.reporting.reports import ReportService

FAILED_READ_COLUMNS = (
    ("meter_id", "meter"),
    ("gateway", "gateway"),
    ("device_profile", "profile"),
    ("category", "category"),
    ("consecutive_failures", "in a row"),
    ("attempts", "tries"),
    ("last_attempt_at", "last attempt"),
    ("last_success_at", "last success"),
    ("job_state", "job"),
)
SUCCESS_COLUMNS = (
    ("day", "day"),
    ("group", "group"),
    ("attempted", "attempted"),
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("rate", "rate"),
)
FINDING_COLUMNS = (
    ("id", "id"),
    ("meter_id", "meter"),
    ("channel", "channel"),
    ("rule", "rule"),
    ("start", "start"),
    ("end", "end"),
    ("detail", "detail"),
)

reports_app = typer.Typer(
    help="Collection reports: failed reads, read success.", no_args_is_help=True
)
findings_app = typer.Typer(help="VEE findings.", no_args_is_help=True)


def _reports(ctx: typer.Context) -> ReportService:
    return get_runtime(ctx).reports


class By(StrEnum):
    GATEWAY = "gateway"
    DEVICE_PROFILE = "device_profile"
    ALL = "all"


def _emit(rows: Sequence[BaseModel], columns: tuple[tuple[str, str], ...], as_json: bool) -> None:
    emit([row.model_dump(mode="json" if as_json else "python") for row in rows], columns, as_json)


@reports_app.command("failed-reads")
def failed_reads(
    ctx: typer.Context,
    day: datetime = typer.Option(
        ..., "--date", formats=["%Y-%m-%d"], help="The local day, YYYY-MM-DD."
    ),
    gateway: str | None = typer.Option(None, help="Only meters behind this gateway."),
    device_profile: str | None = typer.Option(None, help="Only meters of this profile."),
    category: str | None = typer.Option(None, help="Only this failure category."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print as CSV, as the API's format=csv."),
) -> None:
    """Meters whose last read of the day failed: category, detail, failures in a row, last
    success; most failures in a row first."""
    if as_json and as_csv:
        fail("reports failed-reads", "--json and --csv: choose one")
    rows = _reports(ctx).failed_reads(
        day.date(), gateway=gateway, device_profile=device_profile, category=category
    )
    if as_csv:
        ReportService.failed_reads_csv(rows, sys.stdout)
        return
    _emit(rows, FAILED_READ_COLUMNS, as_json)


@reports_app.command("read-success")
def read_success(
    ctx: typer.Context,
    start: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="First local day."),
    end: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="Last local day (included)."),
    by: By = typer.Option(By.GATEWAY, help="Group by gateway, device_profile or all."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Meters attempted and read per local day and group, with the success rate."""
    rows = _reports(ctx).success_rates(start.date(), end.date(), by.value)
    _emit(rows, SUCCESS_COLUMNS, as_json)


@findings_app.command("list")
def list_findings(
    ctx: typer.Context,
    meter: str | None = typer.Option(None, help="Only this meter's findings."),
    rule: str | None = typer.Option(None, help="Only findings of this rule."),
    after: int | None = typer.Option(None, min=0, help="Start after this finding id (a cursor)."),
    limit: int = typer.Option(500, min=1, max=5000, help="At most this many findings."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Open VEE findings, oldest first."""
    rows = _reports(ctx).open_findings(meter_id=meter, rule=rule, limit=limit, after_id=after)
    _emit(rows, FINDING_COLUMNS, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(reports_app, name="reports")
    app.add_typer(findings_app, name="findings")
