"""``headend collect`` (one collection now) and ``headend serve`` (API, scheduler and
dispatcher in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import typer
from sqlalchemy.orm import Session, sessionmaker

from headend.cli.main import get_settings
from headend.cli.output import Bar, emit_json, following, progress_bar
from headend.cli.wiring import (
    collection_stack,
    known_profiles,
    secret_box,
    session_factory,
    validation_service,
)
from headend.domain.enums import ReadKind
from headend.scheduling.plans import PlanScheduler
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService
from headend.services.validation.vee import ValidationService
from headend.store.repositories.jobs import JobRepository

if TYPE_CHECKING:
    from headend.api.context import ApiContext
    from headend.api.server import ApiServer

DAILY = {"kinds": [ReadKind.REGISTERS.value, ReadKind.LOAD_PROFILE.value]}


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
    settings = get_settings(ctx)
    factory = session_factory(settings)
    jobs, _collection, dispatcher = collection_stack(settings, factory)
    if plan and meter:
        typer.echo("headend: name a plan or meters, not both", err=True)
        raise typer.Exit(2)

    async def run(bar: Bar) -> tuple[list[int], bool]:
        await dispatcher.recover()
        if plan:
            service = PlanService(factory, jobs, settings.tz)
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
        return ids, finished

    with progress_bar("reading meters", quiet=as_json) as bar:
        try:
            ids, finished = asyncio.run(run(bar))
        finally:
            dispatcher.close()
        summary = jobs.summary(ids)
        bar.update(len(ids) - summary["unfinished"], len(ids), "VEE pass")
        checked = validation_service(settings, factory).run_pending()
    summary["vee"] = {
        "meters": checked.meters,
        "new_versions": checked.new_versions,
        "findings": checked.findings,
        "rereads_queued": checked.rereads_queued,
        "rolled_up": checked.rolled_up,
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
        typer.echo(
            f"VEE: {checked.meters} meters validated, {checked.new_versions} new versions, "
            f"{checked.findings} findings, {checked.rereads_queued} re-reads queued; "
            f"day rollups of {checked.rolled_up} meters brought up to date"
        )
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
    # The web stack is imported here, not at the top: the other commands start without it.
    from headend.api.app import create_app
    from headend.api.context import ApiContext, Runtime
    from headend.api.server import ApiServer

    settings = get_settings(ctx)
    factory = session_factory(settings)
    jobs, _collection, dispatcher = collection_stack(settings, factory)
    plans = PlanService(factory, jobs, settings.tz)
    validation = validation_service(settings, factory)
    scheduler = PlanScheduler(plans, dispatcher.wake)
    bind_host, bind_port = host or settings.api_host, port or settings.api_port

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        background: set[asyncio.Task[None]] = set()

        def plans_changed() -> None:
            if collect:
                task = loop.create_task(scheduler.reload())
                background.add(task)
                task.add_done_callback(background.discard)

        runtime = Runtime(
            scheduler_running=lambda: scheduler.running,
            sessions_in_flight=lambda: dispatcher.in_flight,
            outcomes=lambda: dict(dispatcher.stats.outcomes),
            wake_dispatcher=dispatcher.wake,
            plans_changed=plans_changed,
            gateway_sessions=lambda: dispatcher.sessions_by_gateway,
            paused_gateways=lambda: dispatcher.breaker.paused(jobs.clock()),
        )
        server: ApiServer | None = None
        context: ApiContext | None = None
        if api:
            context = ApiContext.build(
                settings, factory, secret_box(settings), known_profiles(), jobs, runtime
            )
            server = ApiServer(create_app(context), bind_host, bind_port)
            if context.billing.workers is not None:  # ready before the first bulk stream
                await asyncio.to_thread(context.billing.workers.start)

        def on_signal() -> None:
            stop.set()
            if server is not None:
                server.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        tasks: list[asyncio.Task[None]] = []
        if collect:
            await dispatcher.recover()
            caught_up = await scheduler.start()
            typer.echo(
                f"headend: scheduler running ({len(scheduler.scheduler.get_jobs())} plans, "
                f"{caught_up} caught up); dispatcher up to {settings.max_sessions} sessions",
                err=True,
            )
            if collect_now:
                queued = await asyncio.to_thread(_queue_everyone, factory, jobs)
                typer.echo(f"headend: reading {queued} meters now", err=True)
            tasks.append(asyncio.create_task(dispatcher.run(stop)))
            tasks.append(asyncio.create_task(_validate_periodically(validation, stop)))
        try:
            if server is not None:
                serving = asyncio.create_task(server.serve())
                while not server.started and not serving.done():
                    await asyncio.sleep(0.05)
                if server.started:
                    typer.echo(f"headend: API on http://{bind_host}:{bind_port}/", err=True)
                await serving
                if not server.started:
                    raise typer.Exit(1)
                stop.set()
            else:
                await stop.wait()
        finally:
            stop.set()
            scheduler.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            if context is not None:
                await asyncio.to_thread(context.close)

    try:
        asyncio.run(run())
    finally:
        dispatcher.close()


def _ended(jobs: JobService, ids: list[int]) -> int:
    """How many of the jobs ``ids`` have ended (succeeded or failed for good)."""
    return len(ids) - int(jobs.summary(ids)["unfinished"])


def _queue_everyone(factory: sessionmaker[Session], jobs: JobService) -> int:
    """Queue every active meter's daily read, as ``headend collect`` does; the count."""
    with factory() as session:
        pks = JobRepository(session).meter_pks_for({"all": True})
    jobs.queue(pks, ReadKind.FULL, params=DAILY, requested_by="serve --collect-now")
    return len(pks)


async def _validate_periodically(
    validation: ValidationService, stop: asyncio.Event, every_s: float = 30.0
) -> None:
    """The VEE pass over newly landed data, every ``every_s`` seconds while serving."""
    while not stop.is_set():
        # Ctrl-C ends a long pass after its current batch, not after every meter
        await asyncio.to_thread(validation.run_pending, stop.is_set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
    app.command("serve")(serve)
