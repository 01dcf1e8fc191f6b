"""Statements behind the collection reports and the findings list.

Every report is one set-based statement (window functions, GROUP BY, subqueries) that runs
the same on SQLite and PostgreSQL; nothing here loops over meters. Days are given as UTC
bounds ``[lo, hi)`` computed by the caller in the utility's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, Row, Subquery, and_, case, distinct, func, null, or_, select
from sqlalchemy.orm import Session

from headend.domain.enums import FailureCategory, ReadKind
from headend.domain.reports import Grouping
from headend.store.models import Gateway, Meter, ReadAttempt, ReadJob, VeeFinding

OPEN = "open"


def _failing(
    lo: datetime,
    hi: datetime,
    gateway: str | None,
    device_profile: str | None,
    category: FailureCategory | None,
    kind: ReadKind | None,
) -> CTE:
    """The meters whose last finished attempt in ``[lo, hi)`` failed: that attempt, its
    job's state, and the meter's number of attempts in the range."""
    a, j = ReadAttempt, ReadJob
    ranked = (
        select(
            j.meter_id.label("meter_pk"),
            a.started_at,
            a.succeeded,
            a.failure_category,
            a.failure_detail,
            j.state.label("job_state"),
            func.row_number()
            .over(partition_by=j.meter_id, order_by=(a.started_at.desc(), a.id.desc()))
            .label("rank"),
            func.count().over(partition_by=j.meter_id).label("attempts"),
        )
        .join(j, a.job_id == j.id)
        .where(a.started_at >= lo, a.started_at < hi, a.succeeded.is_not(None))
    )
    if kind is not None:
        ranked = ranked.where(j.kind == kind)
    if gateway is not None or device_profile is not None:
        ranked = ranked.join(Meter, j.meter_id == Meter.id)
        if device_profile is not None:
            ranked = ranked.where(Meter.device_profile == device_profile)
        if gateway is not None:
            ranked = ranked.join(Gateway, Meter.gateway_id == Gateway.id).where(
                Gateway.name == gateway
            )
    day = ranked.subquery("day_attempts")
    failing_stmt = select(day).where(day.c.rank == 1, day.c.succeeded.is_(False))
    if category is not None:
        failing_stmt = failing_stmt.where(day.c.failure_category == category)
    return failing_stmt.cte("failing")


def _streaks(failing: CTE, hi: datetime, kind: ReadKind | None) -> Subquery:
    """Per failing meter, its last success before ``hi`` and the failures since it."""
    a, j = ReadAttempt, ReadJob
    # the failing meters' attempts up to the end of the day, each with the meter's last
    # success beside it; the failures after that success are the consecutive ones
    history_stmt = (
        select(
            j.meter_id.label("meter_pk"),
            a.started_at,
            a.succeeded,
            func.max(case((a.succeeded.is_(True), a.started_at)))
            .over(partition_by=j.meter_id)
            .label("last_success_at"),
        )
        .join(j, a.job_id == j.id)
        .where(
            j.meter_id.in_(select(failing.c.meter_pk)),
            a.started_at < hi,
            a.succeeded.is_not(None),
        )
    )
    if kind is not None:
        history_stmt = history_stmt.where(j.kind == kind)
    history = history_stmt.subquery("history")
    since_success = and_(
        history.c.succeeded.is_(False),
        or_(
            history.c.last_success_at.is_(None),
            history.c.started_at > history.c.last_success_at,
        ),
    )
    return (
        select(
            history.c.meter_pk,
            func.max(history.c.last_success_at).label("last_success_at"),
            func.sum(case((since_success, 1), else_=0)).label("consecutive_failures"),
        )
        .group_by(history.c.meter_pk)
        .subquery("streaks")
    )


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def failed_reads(
        self,
        lo: datetime,
        hi: datetime,
        *,
        gateway: str | None = None,
        device_profile: str | None = None,
        category: FailureCategory | None = None,
        kind: ReadKind | None = None,
    ) -> Sequence[Row[Any]]:
        """Meters whose last finished attempt in ``[lo, hi)`` failed, with that attempt, the
        day's attempt count, and their last success and failures since, as of ``hi``."""
        failing = _failing(lo, hi, gateway, device_profile, category, kind)
        streaks = _streaks(failing, hi, kind)
        stmt = (
            select(
                Meter.meter_id,
                Gateway.name.label("gateway"),
                Gateway.kind.label("gateway_kind"),
                Meter.device_profile,
                failing.c.failure_category.label("category"),
                failing.c.failure_detail.label("detail"),
                failing.c.started_at.label("last_attempt_at"),
                streaks.c.last_success_at,
                streaks.c.consecutive_failures,
                failing.c.attempts,
                failing.c.job_state,
            )
            .select_from(failing)
            .join(Meter, Meter.id == failing.c.meter_pk)
            .join(Gateway, Gateway.id == Meter.gateway_id)
            .join(streaks, streaks.c.meter_pk == failing.c.meter_pk)
            .order_by(streaks.c.consecutive_failures.desc(), Meter.meter_id)
        )
        return self.session.execute(stmt).all()

    def success_counts(
        self, bounds: Sequence[datetime], by: Grouping
    ) -> list[tuple[int, str | None, int, int]]:
        """Per day ``i`` (attempts in ``[bounds[i], bounds[i + 1])``) and group: meters
        attempted, and meters with at least one successful attempt that day."""
        a, j = ReadAttempt, ReadJob
        day_index = case(
            *[(a.started_at < upper, i) for i, upper in enumerate(bounds[1:])],
            else_=None,
        )
        group: Any = None
        if by == "gateway":
            group = Gateway.name
        elif by == "device_profile":
            group = Meter.device_profile
        inner = (
            select(
                day_index.label("day"),
                j.meter_id.label("meter_pk"),
                a.succeeded,
                (group if group is not None else null()).label("grp"),
            )
            .join(j, a.job_id == j.id)
            .where(a.started_at >= bounds[0], a.started_at < bounds[-1], a.succeeded.is_not(None))
        )
        if group is not None:
            inner = inner.join(Meter, j.meter_id == Meter.id)
        if by == "gateway":
            inner = inner.join(Gateway, Meter.gateway_id == Gateway.id)
        per = inner.subquery("per_attempt")
        keys = [per.c.day, per.c.grp] if group is not None else [per.c.day]
        stmt = (
            select(
                per.c.day,
                per.c.grp if group is not None else null().label("grp"),
                func.count(distinct(per.c.meter_pk)).label("attempted"),
                func.count(distinct(case((per.c.succeeded.is_(True), per.c.meter_pk)))).label(
                    "succeeded"
                ),
            )
            .group_by(*keys)
            .order_by(*keys)
        )
        return [(day, grp, attempted, ok) for day, grp, attempted, ok in self.session.execute(stmt)]

    def open_findings(
        self,
        *,
        meter_id: str | None,
        rule: str | None,
        limit: int,
        after_id: int | None,
    ) -> list[tuple[VeeFinding, str]]:
        stmt = (
            select(VeeFinding, Meter.meter_id)
            .join(Meter, VeeFinding.meter_id == Meter.id)
            .where(VeeFinding.status == OPEN)
        )
        if meter_id is not None:
            stmt = stmt.where(Meter.meter_id == meter_id)
        if rule is not None:
            stmt = stmt.where(VeeFinding.rule == rule)
        if after_id is not None:
            stmt = stmt.where(VeeFinding.id > after_id)
        rows = self.session.execute(stmt.order_by(VeeFinding.id).limit(limit))
        return [(finding, meter) for finding, meter in rows]
