"""``headend collect`` (one collection now) and ``headend serve`` (API, scheduler and
dispatcher in one process)."""

from __future__ import annotations

import asyncio

import typer

from headend.cli.output import Bar, emit_json, following, progress_bar
from headend.cli.state import get_runtime
from headend.domain.enums import ReadKind
from headend.runtime import DAILY
from headend.services.collection.jobs import JobService
from headend.store.repositories.jobs import JobRepository


def collect(
    ctx: typer.Context,
    plan: str | None = typer.Option(None, help="Fire this read plan now."),
    meter: list[str] = typer.Option([], "--meter", help="Read this meter; repeat for more."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    timeout: float = typer.Option(3600.0, help="Give up waiting after this many seconds."),
) -> None:
    """Run one collection now and wait for it, retries included.

    With no plan or meter named, every active meter's registers and load profile are read.
    Exit status 0 when every job ended (failures are counted in the output), 3 on time-out.
    """
    runtime = get_runtime(ctx)
    factory, jobs, dispatcher = runtime.session_factory, runtime.jobs, runtime.dispatcher
    if plan and meter:
        typer.echo("headend: name a plan or meters, not both", err=True)
        raise typer.Exit(2)

    async def run(bar: Bar) -> tuple[list[int], bool]:
        await runtime.collection.land_spool_and_watch()  # reads an earlier run kept
        await dispatcher.recover()
        if plan:
            service = runtime.plans
            found = [p for p in service.all() if p.name == plan]
            if not found:
                typer.echo(f"headend: no read plan named {plan!r}", err=True)
                raise typer.Exit(2)
            ids = service.fire(found[0].id)
        else:
            if meter:
                pks = jobs.meter_pks(meter)
            else:
                with factory() as session:
                    pks = JobRepository(session).meter_pks_for({"all": True})
            jobs.queue(pks, ReadKind.FULL, params=DAILY, requested_by="collect")
            # meters with a job left by an earlier run (requeued or waiting to retry) keep it
            ids = jobs.live(pks, ReadKind.FULL)
        finished = await following(
            dispatcher.run_until_finished(ids, timeout_s=timeout),
            lambda: _ended(jobs, ids),
            bar,
            len(ids),
        )
        await runtime.collection.land_spool()
        return ids, finished

    with progress_bar("reading meters", quiet=as_json) as bar:
        try:
            ids, finished = asyncio.run(run(bar))
        finally:
            dispatcher.close()
        summary = jobs.summary(ids)
        summary["configuration_problems"] = jobs.configuration_problems(ids)
        bar.update(len(ids) - summary["unfinished"], len(ids), "VEE pass")
        checked = runtime.validation.run_pending()
    summary["vee"] = {
        "meters": checked.meters,
        "new_versions": checked.new_versions,
        "findings": checked.findings,  # new ones; an open finding found again is not counted
        "findings_closed": checked.findings_closed,
        "rereads_queued": checked.rereads_queued,
        "rolled_up": checked.rolled_up,
        "failed": [{"meter_id": m, "reason": r} for m, r in checked.failed],
    }
    if as_json:
        emit_json(summary, sort_keys=True)
    else:
        typer.echo(
            f"{summary['attempted']} meters: {summary['succeeded']} succeeded, "
            f"{summary['failed']} failed"
            + (f", {summary['unfinished']} unfinished" if summary["unfinished"] else "")
        )
        for category, count in summary["failures_by_category"].items():
            typer.echo(f"  {category}: {count}")
        for problem in summary["configuration_problems"]:
            typer.echo(
                f"    {problem['meters']} meter(s), e.g. {problem['example_meter']}: "
                f"{problem['detail']}"
            )
        typer.echo(
            f"VEE: {checked.meters} meters validated, {checked.new_versions} new versions, "
            f"{checked.findings} new findings ({checked.findings_closed} cleared), "
            f"{checked.rereads_queued} re-reads queued; "
            f"day rollups of {checked.rolled_up} meters brought up to date"
        )
        for meter_id, reason in checked.failed:
            typer.echo(f"  VEE could not validate {meter_id}: {reason}")
    if not finished:
        raise typer.Exit(3)


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to bind (default HEADEND_API_HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (default HEADEND_API_PORT)."),
    api: bool = typer.Option(True, "--api/--no-api", help="Serve the HTTP API."),
    collect: bool = typer.Option(
        True, "--collect/--no-collect", help="Run the read-plan scheduler and the dispatcher."
    ),
    collect_now: bool = typer.Option(
        False,
        "--collect-now",
        help="At start-up, also read every active meter's registers and load profile once.",
    ),
) -> None:
    """Run the HTTP API, the read-plan scheduler and the dispatcher in one process until
    interrupted (Ctrl-C)."""
    status = get_runtime(ctx).serve(
        host,
        port,
        api=api,
        collect=collect,
        collect_now=collect_now,
        say=lambda line: typer.echo(line, err=True),
    )
    if status:
        raise typer.Exit(status)


def _ended(jobs: JobService, ids: list[int]) -> int:
    """How many of the jobs ``ids`` have ended (succeeded or failed for good)."""
    return len(ids) - int(jobs.summary(ids)["unfinished"])


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
    app.command("serve")(serve)
