"""What the routers use, built once per app from the settings: the services, the limits and
what the process around the API tells it (is a scheduler running, sessions in flight)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from headend.api.ratelimit import MeterRateLimit
from headend.api.sessions import SessionStore
from headend.config import Settings
from headend.services.access.audit import AuditService
from headend.services.access.keys import KeyService
from headend.services.billing.service import BillingService, page_workers
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService
from headend.services.registry.service import RegistryService
from headend.services.reporting.dashboard import DashboardService
from headend.services.reporting.readings import ReadingsService
from headend.services.reporting.reports import ReportService
from headend.services.validation.edits import EditService
from headend.store.secrets import SecretBox


@dataclass
class Runtime:
    """The collection side of the process, when the API runs beside it."""

    scheduler_running: Callable[[], bool] = lambda: False
    sessions_in_flight: Callable[[], int] = lambda: 0
    outcomes: Callable[[], dict[str, int]] = dict
    wake_dispatcher: Callable[[], None] = lambda: None
    plans_changed: Callable[[], None] = lambda: None
    # sessions open now per gateway id, and the gateways paused by their circuit breaker
    # (gateway id -> paused until); called from the event loop that runs the dispatcher
    gateway_sessions: Callable[[], dict[int, int]] = dict
    paused_gateways: Callable[[], dict[int, datetime]] = dict


@dataclass
class ApiContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    keys: KeyService
    audit: AuditService
    jobs: JobService
    readings: ReadingsService
    billing: BillingService
    reports: ReportService
    edits: EditService
    plans: PlanService
    registry: RegistryService
    dashboard: DashboardService
    rate_limit: MeterRateLimit
    box: SecretBox
    profiles: frozenset[str]
    runtime: Runtime = field(default_factory=Runtime)
    sessions: SessionStore = field(default_factory=SessionStore)

    def close(self) -> None:
        """Stop the worker processes the context started, if any."""
        if self.billing.workers is not None:
            self.billing.workers.close()

    @classmethod
    def build(
        cls,
        settings: Settings,
        session_factory: sessionmaker[Session],
        box: SecretBox,
        profiles: frozenset[str],
        jobs: JobService | None = None,
        runtime: Runtime | None = None,
    ) -> ApiContext:
        jobs = jobs or JobService(session_factory, retry_delay_scale=settings.retry_delay_scale)
        tz = settings.tz
        return cls(
            settings=settings,
            session_factory=session_factory,
            keys=KeyService(session_factory),
            audit=AuditService(session_factory),
            jobs=jobs,
            readings=ReadingsService(session_factory),
            billing=BillingService(
                session_factory,
                tz,
                workers=page_workers(settings.database_url, settings.tz, settings.billing_workers),
            ),
            reports=ReportService(session_factory, tz),
            edits=EditService(session_factory),
            plans=PlanService(session_factory, jobs, tz),
            registry=RegistryService(session_factory),
            dashboard=DashboardService(session_factory, tz),
            rate_limit=MeterRateLimit(settings.api_reads_per_meter, 600.0),
            box=box,
            profiles=profiles,
            runtime=runtime or Runtime(),
        )
