"""``headend jobs`` and ``headend plans``: the read-job queue and the read plans."""

from __future__ import annotations

from typing import Any

import typer

from headend.cli.output import emit, emit_json
from headend.cli.state import CLI, get_runtime
from headend.domain.enums import JobState, ReadKind
from headend.services.collection.plans import PlanSpec, parse_selector
from headend.store.repositories.jobs import JobRepository

JOB_COLUMNS = (
    ("id", "id"),
    ("meter_id", "meter"),
    ("kind", "kind"),
    ("state", "state"),
    ("attempts", "tries"),
    ("due_at", "due"),
    ("failure_category", "failure"),
)
PLAN_COLUMNS = (
    ("name", "plan"),
    ("cron", "cron"),
    ("read", "read"),
    ("meters", "meters"),
    ("window_minutes", "window (min)"),
    ("active", "active"),
    ("last_fired_at", "last fired"),
)
jobs_app = typer.Typer(help="The read-job queue.", no_args_is_help=True)
plans_app = typer.Typer(help="Read plans: which meters, what to read, when.", no_args_is_help=True)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: JobState | None = typer.Option(None, help="Only jobs in this state."),
    limit: int = typer.Option(50, min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The most recent jobs, newest first."""
    factory = get_runtime(ctx).session_factory
    with factory() as session:
        rows = JobRepository(session).list_jobs(state, limit)
        items = [
            {
                "id": job.id,
                "meter_id": meter_id,
                "kind": str(job.kind),
                "state": str(job.state),
                "priority": job.priority,
                "attempts": job.attempts,
                "due_at": _iso(job.due_at),
                "failure_category": str(job.failure_category) if job.failure_category else None,
            }
            for job, meter_id in rows
        ]
    emit(items, JOB_COLUMNS, as_json)


@jobs_app.command("show")
def show_job(
    ctx: typer.Context, job_id: int, as_json: bool = typer.Option(False, "--json")
) -> None:
    """One job with its state changes and attempts."""
    factory = get_runtime(ctx).session_factory
    with factory() as session:
        repo = JobRepository(session)
        job = repo.job(job_id)
        if job is None:
            typer.echo(f"headend: no read job {job_id}", err=True)
            raise typer.Exit(1)
        item: dict[str, Any] = {
            "id": job.id,
            "kind": str(job.kind),
            "state": str(job.state),
            "params": job.params,
            "priority": job.priority,
            "due_at": _iso(job.due_at),
            "deadline": _iso(job.deadline),
            "failure_category": str(job.failure_category) if job.failure_category else None,
            "failure_detail": job.failure_detail,
            "transitions": [
                {
                    "at": _iso(t.at),
                    "from": t.from_state and str(t.from_state),
                    "to": str(t.to_state),
                    "reason": t.reason,
                }
                for t in repo.transitions(job_id)
            ],
            "attempts": [
                {
                    "number": a.number,
                    "started_at": _iso(a.started_at),
                    "succeeded": a.succeeded,
                    "failure_category": a.failure_category and str(a.failure_category),
                    "detail": a.failure_detail,
                    "duration_ms": a.duration_ms,
                    "bytes_sent": a.bytes_sent,
                    "bytes_received": a.bytes_received,
                }
                for a in repo.attempts(job_id)
            ],
        }
    if as_json:
        emit_json(item, indent=2)
        return
    typer.echo(f"job {item['id']}: {item['kind']}, {item['state']}")
    for t in item["transitions"]:
        typer.echo(f"  {t['at']}  {t['from'] or '-'} -> {t['to']}  {t['reason'] or ''}")


@plans_app.command("set")
def set_plan(
    ctx: typer.Context,
    name: str,
    cron: str = typer.Option(..., help="Cron in the utility's time zone, e.g. '5 0 * * *'."),
    read: list[ReadKind] = typer.Option(..., "--read", help="What to read; repeat for more."),
    meters: str = typer.Option("all", help="all, gateway=NAME, device_profile=NAME or tag=TAG"),
    window_minutes: int = typer.Option(240, help="How long retries may go on after firing."),
) -> None:
    """Create or update a read plan."""
    service = get_runtime(ctx).plans
    spec = PlanSpec(name, cron, tuple(read), parse_selector(meters), window_minutes)
    plan = service.save(spec, actor=CLI)
    typer.echo(f"read plan {plan.name}: {', '.join(plan.read_kinds)} at '{plan.cron}'")


@plans_app.command("list")
def list_plans(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The read plans."""
    plans = get_runtime(ctx).plans.all()
    items: list[dict[str, Any]] = [
        {
            "name": p.name,
            "cron": p.cron,
            "read": list(p.read_kinds),
            "meters": p.selector,
            "window_minutes": p.window_minutes,
            "active": p.active,
            "last_fired_at": _iso(p.last_fired_at),
        }
        for p in plans
    ]
    emit(items, PLAN_COLUMNS, as_json)


@plans_app.command("deactivate")
def deactivate_plan(ctx: typer.Context, name: str) -> None:
    """Stop a plan from firing (it stays stored)."""
    get_runtime(ctx).plans.deactivate(name, actor=CLI)
    typer.echo(f"read plan {name} deactivated")


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(plans_app, name="plans")
