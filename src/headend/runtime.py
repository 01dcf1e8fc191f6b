"""The composition root: settings -> engine -> session factory -> services -> scheduler and
dispatcher -> app. The command line and the tests build the process here; nothing else wires
it. Nothing is built at import time, and each piece only when first asked for, so a command
that lists meters needs neither a secret key nor the web stack.

``Runtime.serve`` is ``headend serve``: the HTTP API, the read-plan scheduler and the
dispatcher in one event loop until SIGINT or SIGTERM; sessions still running
``SHUTDOWN_GRACE_S`` seconds after the signal are cancelled, their attempts recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from headend.config import ConfigError, Settings
from headend.domain.enums import ReadKind
from headend.profiles.loader import profile_names
from headend.protocol.transports import Timeouts
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.scheduling.plans import PlanScheduler
from headend.scheduling.remote import RemoteSessions
from headend.services.access.audit import AuditService
from headend.services.access.keys import KeyService
from headend.services.billing.service import BillingService, page_workers
from headend.services.collection.jobs import JobService
from headend.services.collection.leadership import Leadership
from headend.services.collection.plans import PlanService
from headend.services.collection.quirks import LearnedQuirks
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.collection.spool import Spool
from headend.services.collection.workers import Workers
from headend.services.registry.service import RegistryService
from headend.services.reporting.dashboard import DashboardService
from headend.services.reporting.health import HealthService, LoopStatus
from headend.services.reporting.readings import ReadingsService
from headend.services.reporting.reports import ReportService
from headend.services.storage.upkeep import StoreUpkeep
from headend.services.validation.edits import EditService
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.store.engine import make_engine, make_session_factory
from headend.store.repositories.jobs import JobRepository
from headend.store.secrets import SecretBox

if TYPE_CHECKING:
    from headend.api.context import ApiContext, ProcessHooks
    from headend.api.server import ApiServer

# on SIGINT/SIGTERM, sessions under way get this long to end before they are cancelled
SHUTDOWN_GRACE_S = 10.0
LOOP_RESTART_PAUSE_S = 30.0  # a crashed background loop is restarted after this pause
UPKEEP_EVERY_S = 6 * 3600.0  # partitions made ahead and retention applied this often
log = structlog.get_logger(__name__)
# what ``headend collect`` and ``serve --collect-now`` read of every active meter
DAILY: dict[str, Any] = {"kinds": [ReadKind.REGISTERS.value, ReadKind.LOAD_PROFILE.value]}


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """A new engine on ``settings.database_url`` and its session factory."""
    return make_session_factory(make_engine(settings.database_url, settings.db_pool_size))


def secret_box(settings: Settings) -> SecretBox:
    """What encrypts meter secrets at rest; refuses a missing or unsafe secret key."""
    return SecretBox(settings.encryption_secret())


def known_profiles(settings: Settings) -> frozenset[str]:
    """Names of the device profiles in the ``profiles_dir`` folder (``protocols/`` by default)."""
    return profile_names(settings.profiles_dir)


class Runtime:
    """The process's parts, built from the settings once each, on first use.

    ``session_factory``, ``jobs`` and ``profiles`` may be given instead (the tests give a
    store of their own and a job service on a simulated clock)."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: sessionmaker[Session] | None = None,
        jobs: JobService | None = None,
        profiles: frozenset[str] | None = None,
    ) -> None:
        self.settings = settings
        if session_factory is not None:
            self.session_factory = session_factory
        if jobs is not None:
            self.jobs = jobs
        if profiles is not None:
            self.profiles = profiles

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings)

    # -- the store ------------------------------------------------------------------------

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return session_factory(self.settings)

    @cached_property
    def box(self) -> SecretBox:
        return secret_box(self.settings)

    @cached_property
    def profiles(self) -> frozenset[str]:
        return known_profiles(self.settings)

    # -- collection -----------------------------------------------------------------------

    @cached_property
    def jobs(self) -> JobService:
        return JobService(self.session_factory, retry_delay_scale=self.settings.retry_delay_scale)

    @cached_property
    def collection(self) -> CollectionService:
        """The read runner: one meter session per due job."""
        settings = self.settings
        return CollectionService(
            self.session_factory,
            self.box,
            CollectionSettings(
                client_system_title=settings.client_system_title,
                clock_sync_threshold_s=settings.clock_sync_threshold_s,
                backfill=timedelta(days=settings.backfill_days),
                timeouts=Timeouts(
                    connect=settings.connect_timeout_s,
                    link=settings.response_timeout_s,
                    response=settings.response_timeout_s,
                    session=settings.session_budget_s,
                ),
                max_transfer_bytes=settings.max_transfer_bytes,
            ),
            spool=Spool(settings.spool_dir),
            profiles_dir=settings.profiles_dir,
        )

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """Sessions in this process, or on workers with ``HEADEND_EXECUTOR=celery``."""
        limits = DispatcherLimits(max_sessions=self.settings.max_sessions)
        if self.settings.executor == "celery":
            return Dispatcher(self.jobs, None, limits, remote=self.remote)
        return Dispatcher(self.jobs, self.collection.run, limits)

    def _needs_shared_store(self) -> None:
        if make_url(self.settings.database_url).get_backend_name() != "postgresql":
            raise ConfigError(
                "HEADEND_EXECUTOR=celery needs a store every machine reaches: set "
                "HEADEND_DATABASE_URL to a PostgreSQL database"
            )

    @cached_property
    def workers(self) -> Workers:
        """The workers' heartbeats (``HEADEND_EXECUTOR=celery``)."""
        return Workers(self.session_factory)

    @cached_property
    def remote(self) -> RemoteSessions:
        """The coordinator's side of the Celery executor: jobs sent in batches per gateway."""
        from headend.scheduling.celery_app import queue_of, sender
        from headend.store.notices import EndsListener

        self._needs_shared_store()
        return RemoteSessions(
            self.jobs,
            self.workers,
            sender(self.settings.broker_url),
            queue_of,
            self.settings.job_lease_s,
            listener=EndsListener(self.settings.database_url),
        )

    @cached_property
    def leadership(self) -> Leadership | None:
        """Which coordinator leads, when a standby may run beside it (the Celery executor)."""
        if self.settings.executor != "celery":
            return None
        self._needs_shared_store()
        return Leadership(self.settings.database_url)

    def worker(self, sites: tuple[str, ...], sessions: int) -> None:
        """``headend worker``: run meter sessions for the coordinator until SIGTERM/SIGINT."""
        from headend.scheduling.worker import SessionWorker, run_worker, worker_name

        self._needs_shared_store()
        settings = self.settings
        session_worker = SessionWorker(
            self.jobs,
            self.collection,
            self.workers,
            name=worker_name(),
            sites=sites,
            capacity=sessions,
            lease_s=settings.job_lease_s,
        )
        run_worker(session_worker, settings.broker_url, settings.log_level)

    @cached_property
    def plans(self) -> PlanService:
        return PlanService(self.session_factory, self.jobs, self.settings.tz)

    @cached_property
    def scheduler(self) -> PlanScheduler:
        return PlanScheduler(self.plans, self.dispatcher.wake)

    @cached_property
    def validation(self) -> ValidationService:
        """The VEE pass, ending with the rollup pass in the utility's time zone."""
        factory = self.session_factory
        folder = self.settings.profiles_dir
        return ValidationService(
            factory,
            rollups=RollupService(factory, self.settings.tz, profiles_dir=folder),
            profiles_dir=folder,
        )

    @cached_property
    def upkeep(self) -> StoreUpkeep:
        """Partitions made ahead, data kept as long as ``interval_retention_months``."""
        return StoreUpkeep(self.session_factory, self.settings.interval_retention_months)

    # -- what the API and the command line serve -----------------------------------------

    @cached_property
    def registry(self) -> RegistryService:
        """The registry to list; ``api_context`` gives the API one that also changes meters."""
        return RegistryService(self.session_factory)

    @cached_property
    def learned_quirks(self) -> LearnedQuirks:
        return LearnedQuirks(self.session_factory)

    @cached_property
    def keys(self) -> KeyService:
        return KeyService(self.session_factory)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self.session_factory)

    @cached_property
    def readings(self) -> ReadingsService:
        return ReadingsService(self.session_factory)

    @cached_property
    def billing(self) -> BillingService:
        """Billing records, with the page worker processes ``HEADEND_BILLING_WORKERS`` asks
        for (started on first use)."""
        settings, tz = self.settings, self.settings.tz
        folder = settings.profiles_dir
        return BillingService(
            self.session_factory,
            tz,
            workers=page_workers(settings.database_url, tz, settings.billing_workers, folder),
            profiles_dir=folder,
        )

    @cached_property
    def reports(self) -> ReportService:
        return ReportService(self.session_factory, self.settings.tz)

    @cached_property
    def edits(self) -> EditService:
        return EditService(self.session_factory)

    @cached_property
    def dashboard(self) -> DashboardService:
        return DashboardService(self.session_factory, self.settings.tz)

    @cached_property
    def health(self) -> HealthService:
        """The store's round trip, the loops of ``serve`` and, with ``HEADEND_EXECUTOR=celery``,
        the workers' heartbeats, for ``/health`` and the dashboard's workers page."""
        workers = self.workers if self.settings.executor == "celery" else None
        return HealthService(self.session_factory, lambda: list(self.loops.values()), workers)

    def api_context(self, hooks: ProcessHooks | None = None) -> ApiContext:
        """What the API's routers use: the services, the limits and ``hooks`` into the
        collection side of the process (none: no scheduler or dispatcher here)."""
        from headend.api.context import ApiContext, ApiSettings, ProcessHooks
        from headend.api.ratelimit import MeterRateLimit

        settings = self.settings
        return ApiContext(
            settings=ApiSettings(
                tz=settings.tz,
                api_max_range_days=settings.api_max_range_days,
                executor=settings.executor,
            ),
            keys=self.keys,
            audit=self.audit,
            jobs=self.jobs,
            readings=self.readings,
            billing=self.billing,
            reports=self.reports,
            edits=self.edits,
            plans=self.plans,
            registry=RegistryService(self.session_factory, self.box, self.profiles),
            dashboard=self.dashboard,
            health=self.health,
            quirks=self.learned_quirks,
            rate_limit=MeterRateLimit(settings.api_reads_per_meter, 600.0),
            runtime=hooks or ProcessHooks(),
        )

    # -- headend serve --------------------------------------------------------------------

    @cached_property
    def loops(self) -> dict[str, LoopStatus]:
        """The background loops ``serve`` supervises, by name, for ``/health``."""
        return {}

    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        api: bool = True,
        collect: bool = True,
        collect_now: bool = False,
        say: Callable[[str], None] = print,
    ) -> int:
        """Run the HTTP API, the read-plan scheduler and the dispatcher (each unless turned
        off) until SIGINT or SIGTERM; ``say`` reports progress. With
        ``HEADEND_EXECUTOR=celery`` the collection side waits until this coordinator leads
        (``Leadership``). The exit status: 0, or 1 if the API could not start or leading was
        lost."""
        settings = self.settings
        dispatcher, scheduler, validation = self.dispatcher, self.scheduler, self.validation
        upkeep = self.upkeep
        bind_host, bind_port = host or settings.api_host, port or settings.api_port

        leadership = self.leadership

        async def collecting(
            stop: asyncio.Event, tasks: list[asyncio.Task[None]], on_lost: Callable[[], None]
        ) -> None:
            """The collection side: the scheduler, the dispatcher and the store's passes; with
            a standby coordinator possible, once this process leads."""
            if leadership is not None:
                say("headend: standing by until this coordinator leads")
                if not await leadership.acquire(stop):
                    return
                say("headend: leading: this coordinator dispatches")
            await self.collection.land_spool_and_watch()  # and while reads wait there
            await dispatcher.recover()
            caught_up = await scheduler.start()
            say(
                f"headend: scheduler running ({len(scheduler.scheduler.get_jobs())} plans, "
                f"{caught_up} caught up); dispatcher up to {settings.max_sessions} sessions"
                + (" on workers" if settings.executor == "celery" else "")
            )
            if collect_now:
                queued = await asyncio.to_thread(self._queue_everyone)
                say(f"headend: reading {queued} meters now")
            loops = [
                ("dispatcher", lambda: dispatcher.run(stop, SHUTDOWN_GRACE_S)),
                ("vee", lambda: _validate_periodically(validation, stop)),
                ("upkeep", lambda: _upkeep_periodically(upkeep, stop)),
            ]
            for name, body in loops:
                tasks.append(asyncio.create_task(supervised(self.loop_status(name), body, stop)))
            if leadership is not None:
                await leadership.hold(stop)
                if not stop.is_set():  # the lock was lost: another coordinator may lead now
                    say("headend: no longer leading; stopping")
                    on_lost()

        lost = asyncio.Event()

        async def run() -> int:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            background: set[asyncio.Task[None]] = set()

            def plans_changed() -> None:
                if collect:
                    task = loop.create_task(scheduler.reload())
                    background.add(task)
                    task.add_done_callback(background.discard)

            server: ApiServer | None = None
            context: ApiContext | None = None
            if api:
                # The web stack is imported here, not at the top: the other commands start
                # without it.
                from headend.api.app import create_app
                from headend.api.server import ApiServer

                context = self.api_context(self._hooks(plans_changed, collect))
                server = ApiServer(create_app(context), bind_host, bind_port)
                if context.billing.workers is not None:  # ready before the first bulk stream
                    await asyncio.to_thread(context.billing.workers.start)

            def on_signal() -> None:
                stop.set()
                if server is not None:
                    server.should_exit = True

            def on_lost() -> None:
                lost.set()
                on_signal()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            tasks: list[asyncio.Task[None]] = []
            if collect:
                tasks.append(asyncio.create_task(collecting(stop, tasks, on_lost)))
            try:
                if server is not None:
                    serving = asyncio.create_task(server.serve())
                    while not server.started and not serving.done():
                        await asyncio.sleep(0.05)
                    if server.started:
                        say(f"headend: API on http://{bind_host}:{bind_port}/")
                    await serving
                    if not server.started:
                        return 1
                    stop.set()
                else:
                    await stop.wait()
            finally:
                stop.set()
                while not all(task.done() for task in tasks):  # collecting may add loops
                    await asyncio.gather(*tasks, return_exceptions=True)
                scheduler.stop()
                if leadership is not None:
                    leadership.release()
                if context is not None:
                    await asyncio.to_thread(context.close)
            return 1 if lost.is_set() else 0

        try:
            return asyncio.run(run())
        finally:
            dispatcher.close()

    def loop_status(self, name: str) -> LoopStatus:
        """A fresh status record for the background loop ``name``, shown by ``/health``."""
        status = self.loops[name] = LoopStatus(name)
        return status

    def _hooks(self, plans_changed: Callable[[], None], collect: bool = True) -> ProcessHooks:
        """What the API learns of the scheduler and the dispatcher running beside it, and of
        this process's role: "leader" while it collects (with the local executor once its
        scheduler runs, with the Celery executor while it holds the coordinators' lock),
        "standby" while a Celery coordinator waits for that lock, None when ``collect`` is off
        (``serve --no-collect``) or the local scheduler is not running."""
        from headend.api.context import ProcessHooks
        from headend.services.reporting.health import CoordinatorRole

        scheduler, dispatcher, jobs = self.scheduler, self.dispatcher, self.jobs
        leadership = self.leadership

        def role() -> CoordinatorRole | None:
            if not collect:
                return None
            if leadership is None:
                return "leader" if scheduler.running else None
            return "leader" if leadership.leading else "standby"

        return ProcessHooks(
            scheduler_running=lambda: scheduler.running,
            sessions_in_flight=lambda: dispatcher.in_flight,
            outcomes=lambda: dict(dispatcher.stats.outcomes),
            wake_dispatcher=dispatcher.wake,
            plans_changed=plans_changed,
            gateway_sessions=lambda: dispatcher.sessions_by_gateway,
            paused_gateways=lambda: dispatcher.breaker.paused(jobs.clock()),
            role=role,
        )

    def _queue_everyone(self) -> int:
        """Queue every active meter's daily read, as ``headend collect`` does; the count."""
        with self.session_factory() as session:
            pks = JobRepository(session).meter_pks_for({"all": True})
        self.jobs.queue(pks, ReadKind.FULL, params=DAILY, requested_by="serve --collect-now")
        return len(pks)


async def supervised(
    status: LoopStatus,
    body: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    pause_s: float = LOOP_RESTART_PAUSE_S,
) -> None:
    """Run ``body`` until ``stop`` is set; if it crashes, log the crash, count it in
    ``status`` (shown by ``/health``) and start it again after ``pause_s`` seconds."""
    while not stop.is_set():
        status.running = True
        try:
            await body()
        except Exception as exc:
            status.crashes += 1
            status.last_error = f"{type(exc).__name__}: {exc}"
            status.last_crash_at = datetime.now(UTC)
            log.exception("background loop crashed; restarting it", loop=status.name)
        finally:
            status.running = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause_s)


async def _validate_periodically(
    validation: ValidationService, stop: asyncio.Event, every_s: float = 30.0
) -> None:
    """The VEE pass over newly landed data, every ``every_s`` seconds while serving."""
    while not stop.is_set():
        # Ctrl-C ends a long pass after its current batch, not after every meter
        await asyncio.to_thread(validation.run_pending, stop.is_set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def _upkeep_periodically(
    upkeep: StoreUpkeep, stop: asyncio.Event, every_s: float = UPKEEP_EVERY_S
) -> None:
    """The store's upkeep when serving starts, then every ``every_s`` seconds."""
    while not stop.is_set():
        await asyncio.to_thread(upkeep.run)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
