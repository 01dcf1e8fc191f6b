"""What the routers use, built once per app by the composition root (``headend.runtime``):
the services, the limits and what the process around the API tells it (is a scheduler
running, sessions in flight, does this coordinator lead)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from headend.api.ratelimit import MeterRateLimit
from headend.api.sessions import SessionStore
from headend.services.access.audit import AuditService
from headend.services.access.keys import KeyService
from headend.services.billing.service import BillingService
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService
from headend.services.collection.quirks import LearnedQuirks
from headend.services.registry.service import RegistryService
from headend.services.reporting.dashboard import DashboardService
from headend.services.reporting.health import CoordinatorRole, HealthService
from headend.services.reporting.readings import ReadingsService
from headend.services.reporting.reports import ReportService
from headend.services.validation.edits import EditService


@dataclass
class ProcessHooks:
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
    # "leader" (runs the scheduler and the dispatcher), "standby" (waits to take over from
    # the leading coordinator) or None: no collection side in this process
    role: Callable[[], CoordinatorRole | None] = lambda: None


@dataclass(frozen=True)
class ApiSettings:
    """What the routers read of the settings."""

    tz: ZoneInfo
    api_max_range_days: int
    executor: Literal["local", "celery"] = "local"  # where meter sessions run


@dataclass
class ApiContext:
    """Built by the composition root (``headend.runtime.Runtime.api_context``)."""

    settings: ApiSettings
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
    health: HealthService
    quirks: LearnedQuirks
    rate_limit: MeterRateLimit
    runtime: ProcessHooks = field(default_factory=ProcessHooks)
    sessions: SessionStore = field(default_factory=SessionStore)

    def close(self) -> None:
        """Stop the worker processes the context started, if any."""
        if self.billing.workers is not None:
            self.billing.workers.close()
