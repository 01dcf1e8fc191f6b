"""What the operators' dashboard shows beyond the reports: the registry by status, gateways
with their meters, a meter's job history, and the key behind a browser session."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, GatewayKind, JobState, MeterStatus, ReadKind
from headend.services.access.keys import Principal
from headend.services.clock import Clock, utcnow
from headend.services.collection.jobs import ON_DEMAND_PRIORITY
from headend.services.errors import UnknownMeter
from headend.store.repositories.dashboard import DashboardRepository

MAX_JOBS = 200
_KEY_PREFIX = re.compile(r"hk_([0-9a-f]{12})_")


@dataclass(frozen=True)
class GatewayInfo:
    id: int
    name: str
    kind: GatewayKind
    address: str  # host:port or the serial device
    max_sessions: int
    site: str | None  # the collector site whose workers read it; None: no site
    meters: int


@dataclass(frozen=True)
class JobRecord:
    """One read job of a meter as its history lists it."""

    id: int
    kind: ReadKind
    state: JobState
    on_demand: bool
    requested_by: str | None
    created_at: datetime
    attempts: int
    started_at: datetime | None  # first attempt
    finished_at: datetime | None  # last attempt
    failure_category: FailureCategory | None
    failure_detail: str | None


class DashboardService:
    def __init__(
        self, session_factory: sessionmaker[Session], tz: ZoneInfo, clock: Clock = utcnow
    ) -> None:
        self.session_factory = session_factory
        self.tz = tz
        self.clock = clock

    def today(self) -> date:
        """The current day in the utility's time zone."""
        return self.clock().astimezone(self.tz).date()

    def meters_by_status(self) -> dict[MeterStatus, int]:
        """How many meters the registry holds in each status (every status listed)."""
        with self.session_factory() as session:
            counts = DashboardRepository(session).meter_status_counts()
        return {status: counts.get(status, 0) for status in MeterStatus}

    def gateways(self) -> list[GatewayInfo]:
        with self.session_factory() as session:
            rows = DashboardRepository(session).gateways()
        return [
            GatewayInfo(
                id=row.id,
                name=row.name,
                kind=row.kind,
                address=f"{row.host}:{row.port}" if row.host else (row.device or ""),
                max_sessions=row.max_sessions,
                site=row.site,
                meters=int(row.meters),
            )
            for row in rows
        ]

    def job_history(self, meter_id: str, limit: int = 20) -> list[JobRecord]:
        """A meter's latest read jobs, newest first."""
        if not 1 <= limit <= MAX_JOBS:
            raise ValueError(f"limit must be between 1 and {MAX_JOBS}, not {limit}")
        with self.session_factory() as session:
            repo = DashboardRepository(session)
            meter_pk = repo.meter_pk(meter_id)
            if meter_pk is None:
                raise UnknownMeter([meter_id])
            rows = repo.jobs_of_meter(meter_pk, limit)
        return [
            JobRecord(
                id=row.id,
                kind=row.kind,
                state=row.state,
                on_demand=row.priority <= ON_DEMAND_PRIORITY,
                requested_by=row.requested_by,
                created_at=row.created_at,
                attempts=row.attempts,
                started_at=row.started_at,
                finished_at=row.finished_at,
                failure_category=row.failure_category,
                failure_detail=row.failure_detail,
            )
            for row in rows
        ]

    @staticmethod
    def key_prefix(key: str) -> str | None:
        """The public prefix of an API key (``hk_<prefix>_<secret>``), or None."""
        match = _KEY_PREFIX.match(key)
        return match.group(1) if match else None

    def active_principal(self, key_prefix: str) -> Principal | None:
        """The owner of the key with this prefix, or None when it is unknown or revoked."""
        with self.session_factory() as session:
            row = DashboardRepository(session).key_by_prefix(key_prefix)
        if row is None:
            return None
        name, role, revoked_at = row
        return None if revoked_at is not None else Principal(name, role)
