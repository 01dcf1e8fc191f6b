"""Statements behind the operators' dashboard: counts of the registry, gateways with their
meters, a meter's jobs with their attempts, and API keys by prefix (for browser sessions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from headend.domain.enums import MeterStatus, Role
from headend.store.models import ApiKey, Gateway, Meter, ReadAttempt, ReadJob


class DashboardRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def meter_status_counts(self) -> dict[MeterStatus, int]:
        stmt = select(Meter.status, func.count()).group_by(Meter.status)
        return {status: int(count) for status, count in self.session.execute(stmt)}

    def gateways(self) -> Sequence[Row[Any]]:
        """Every gateway with the number of meters behind it, by name."""
        meters = (
            select(Meter.gateway_id, func.count().label("meters"))
            .group_by(Meter.gateway_id)
            .subquery("meters_per_gateway")
        )
        stmt = (
            select(
                Gateway.id,
                Gateway.name,
                Gateway.kind,
                Gateway.host,
                Gateway.port,
                Gateway.device,
                Gateway.max_sessions,
                Gateway.site,
                func.coalesce(meters.c.meters, 0).label("meters"),
            )
            .outerjoin(meters, meters.c.gateway_id == Gateway.id)
            .order_by(Gateway.name)
        )
        return self.session.execute(stmt).all()

    def meter_pk(self, meter_id: str) -> int | None:
        return self.session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))

    def jobs_of_meter(self, meter_pk: int, limit: int) -> Sequence[Row[Any]]:
        """A meter's latest jobs, newest first, each with when its attempts began and ended."""
        attempts = (
            select(
                ReadAttempt.job_id,
                func.min(ReadAttempt.started_at).label("started_at"),
                func.max(ReadAttempt.finished_at).label("finished_at"),
            )
            .join(ReadJob, ReadAttempt.job_id == ReadJob.id)
            .where(ReadJob.meter_id == meter_pk)
            .group_by(ReadAttempt.job_id)
            .subquery("job_attempts")
        )
        stmt = (
            select(
                ReadJob.id,
                ReadJob.kind,
                ReadJob.state,
                ReadJob.priority,
                ReadJob.requested_by,
                ReadJob.created_at,
                ReadJob.attempts,
                ReadJob.failure_category,
                ReadJob.failure_detail,
                attempts.c.started_at,
                attempts.c.finished_at,
            )
            .outerjoin(attempts, attempts.c.job_id == ReadJob.id)
            .where(ReadJob.meter_id == meter_pk)
            .order_by(ReadJob.id.desc())
            .limit(limit)
        )
        return self.session.execute(stmt).all()

    def key_by_prefix(self, prefix: str) -> tuple[str, Role, datetime | None] | None:
        """A key's name, role and revocation time."""
        stmt = select(ApiKey.name, ApiKey.role, ApiKey.revoked_at).where(ApiKey.prefix == prefix)
        row = self.session.execute(stmt).one_or_none()
        return None if row is None else (row.name, row.role, row.revoked_at)
