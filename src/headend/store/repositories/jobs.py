"""Statements over read plans, read jobs, their transitions and attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from headend.domain.enums import FailureCategory, JobState, MeterStatus, ReadKind
from headend.domain.jobs import ACTIVE_STATES, JobEvent, next_state
from headend.store.base import one_of, table_of
from headend.store.models import (
    Gateway,
    Meter,
    RawRead,
    ReadAttempt,
    ReadJob,
    ReadJobTransition,
    ReadPlan,
)


@dataclass(frozen=True)
class DueJob:
    """A job the dispatcher may start, with what it needs to respect the limits."""

    id: int
    meter_pk: int
    meter_id: str
    gateway_id: int
    gateway_sessions: int
    kind: ReadKind
    params: dict[str, Any]
    priority: int
    attempts: int
    deadline: datetime | None
    state: JobState = JobState.QUEUED
    site: str | None = None  # the gateway's site: which workers may run it


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # -- plans ------------------------------------------------------------------------------
    def plan_by_name(self, name: str) -> ReadPlan | None:
        return self.session.scalars(select(ReadPlan).where(ReadPlan.name == name)).one_or_none()

    def plans(self) -> list[ReadPlan]:
        return list(self.session.scalars(select(ReadPlan).order_by(ReadPlan.name)))

    def meter_pks_for(self, selector: dict[str, Any]) -> list[int]:
        stmt = select(Meter.id).where(Meter.status == MeterStatus.ACTIVE)
        if "gateway" in selector:
            stmt = stmt.join(Gateway, Meter.gateway_id == Gateway.id).where(
                Gateway.name == selector["gateway"]
            )
        if "device_profile" in selector:
            stmt = stmt.where(Meter.device_profile == selector["device_profile"])
        if "tag" in selector:
            tag = str(selector["tag"])
            stmt = stmt.where(
                or_(
                    Meter.tags == tag,
                    Meter.tags.like(f"{tag};%"),
                    Meter.tags.like(f"%;{tag}"),
                    Meter.tags.like(f"%;{tag};%"),
                )
            )
        if "meter_ids" in selector:
            stmt = stmt.where(Meter.meter_id.in_(list(selector["meter_ids"])))
        return list(self.session.scalars(stmt.order_by(Meter.id)))

    def meter_pks(self, meter_ids: Sequence[str]) -> dict[str, int]:
        rows = self.session.execute(
            select(Meter.meter_id, Meter.id).where(Meter.meter_id.in_(list(meter_ids)))
        )
        return {meter_id: pk for meter_id, pk in rows}

    # -- jobs -------------------------------------------------------------------------------
    def meters_with_active_job(self, kind: ReadKind, meter_pks: Sequence[int]) -> set[int]:
        stmt = select(ReadJob.meter_id).where(
            ReadJob.kind == kind,
            ReadJob.state.in_(ACTIVE_STATES),
            ReadJob.meter_id.in_(list(meter_pks)),
        )
        return set(self.session.scalars(stmt))

    def active_job_ids(self, kind: ReadKind, meter_pks: Sequence[int]) -> list[int]:
        stmt = select(ReadJob.id).where(
            ReadJob.kind == kind,
            ReadJob.state.in_(ACTIVE_STATES),
            ReadJob.meter_id.in_(list(meter_pks)),
        )
        return list(self.session.scalars(stmt))

    def add_jobs(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        ids = list(self.session.scalars(insert(ReadJob).returning(ReadJob.id), list(rows)))
        self.session.execute(
            insert(table_of(ReadJobTransition)),
            [
                {
                    "job_id": job_id,
                    "from_state": None,
                    "to_state": JobState.QUEUED,
                    "at": rows[0]["created_at"],
                    "reason": rows[0].get("requested_by") or "queued",
                }
                for job_id in ids
            ],
        )
        return ids

    def due_jobs(self, now: datetime, limit: int, exclude_meters: set[int]) -> list[DueJob]:
        stmt = (
            select(
                ReadJob.id,
                ReadJob.meter_id,
                Meter.meter_id,
                Meter.gateway_id,
                Gateway.max_sessions,
                ReadJob.kind,
                ReadJob.params,
                ReadJob.priority,
                ReadJob.attempts,
                ReadJob.deadline,
                ReadJob.state,
                Gateway.site,
            )
            .join(Meter, ReadJob.meter_id == Meter.id)
            .join(Gateway, Meter.gateway_id == Gateway.id)
            .where(
                ReadJob.state.in_((JobState.QUEUED, JobState.RETRY_WAIT)),
                ReadJob.due_at <= now,
            )
            .order_by(ReadJob.priority, ReadJob.due_at, ReadJob.id)
            .limit(limit)
        )
        if exclude_meters:
            stmt = stmt.where(ReadJob.meter_id.not_in(list(exclude_meters)))
        return [DueJob(*row) for row in self.session.execute(stmt)]

    def transition(
        self,
        job_id: int,
        event: JobEvent,
        now: datetime,
        reason: str | None = None,
        expected: JobState | None = None,
        *,
        at_attempt: int | None = None,
        held_by: str | None = None,
        **values: Any,
    ) -> bool:
        """Move a job on ``event`` if it is still in a state that allows it.

        The UPDATE names the state the job must be in, so two dispatchers can never both start
        one job: the second finds nothing to update and gets False. ``expected`` saves reading
        the state first when the caller knows it. ``at_attempt`` and ``held_by``, when given, must
        also hold (the attempt a worker was sent, the worker that holds the job's lease), so
        an attempt that was given up on cannot end the job's next one.
        """
        current = expected or self.session.scalar(select(ReadJob.state).where(ReadJob.id == job_id))
        if current is None:
            return False
        target = next_state(current, event)
        conditions = [ReadJob.id == job_id, ReadJob.state == current]
        if at_attempt is not None:
            conditions.append(ReadJob.attempts == at_attempt)
        if held_by is not None:
            conditions.append(ReadJob.worker == held_by)
        result = self.session.execute(
            update(ReadJob)
            .where(and_(*conditions))
            .values(state=target, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        self.session.execute(
            insert(table_of(ReadJobTransition)),
            [
                {
                    "job_id": job_id,
                    "from_state": current,
                    "to_state": target,
                    "at": now,
                    "reason": reason,
                }
            ],
        )
        return True

    def start(
        self, job_ids: Sequence[int], state: JobState, attempts: int, now: datetime, **values: Any
    ) -> set[int]:
        """Start the jobs still in ``state`` at ``attempts`` attempts, in one statement, with
        their transitions (in the order of ``job_ids``); the ids started (another dispatcher
        may have got to the others)."""
        target = next_state(state, JobEvent.START)
        started = set(
            self.session.scalars(
                update(ReadJob)
                .where(
                    ReadJob.id.in_(list(job_ids)),
                    ReadJob.state == state,
                    ReadJob.attempts == attempts,
                )
                .values(state=target, attempts=attempts + 1, updated_at=now, **values)
                .returning(ReadJob.id)
                .execution_options(synchronize_session=False)
            )
        )
        if started:
            reason = f"attempt {attempts + 1}"
            self.session.execute(
                insert(table_of(ReadJobTransition)),
                [
                    {
                        "job_id": i,
                        "from_state": state,
                        "to_state": target,
                        "at": now,
                        "reason": reason,
                    }
                    for i in job_ids
                    if i in started
                ],
            )
        return started

    def running_job_ids(self, lease_ended_by: datetime | None = None) -> list[int]:
        """Jobs running; with ``lease_ended_by``, only those whose lease ran out by then (or
        that never had one)."""
        stmt = select(ReadJob.id).where(ReadJob.state == JobState.RUNNING)
        if lease_ended_by is not None:
            stmt = stmt.where(
                or_(ReadJob.lease_until.is_(None), ReadJob.lease_until < lease_ended_by)
            )
        return list(self.session.scalars(stmt.order_by(ReadJob.id)))

    def claim(self, job_id: int, attempt: int, worker: str, lease_until: datetime) -> bool:
        """The worker takes a running job it was sent, if that attempt is still the job's and
        no worker holds it yet."""
        result = self.session.execute(
            update(ReadJob)
            .where(
                ReadJob.id == job_id,
                ReadJob.state == JobState.RUNNING,
                ReadJob.attempts == attempt,
                ReadJob.worker.is_(None),
            )
            .values(worker=worker, lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def held(self, attempts: dict[int, int], worker: str | None) -> set[int]:
        """Which of the jobs (id: attempt) are still running at that attempt, held by
        ``worker`` if given; their rows are locked until the transaction ends, so no requeue
        slips in between."""
        if not attempts:
            return set()
        stmt = select(ReadJob.id, ReadJob.attempts).where(
            ReadJob.id.in_(list(attempts)), ReadJob.state == JobState.RUNNING
        )
        if worker is not None:
            stmt = stmt.where(ReadJob.worker == worker)
        rows = self.session.execute(stmt.with_for_update())
        return {job_id for job_id, attempt in rows if attempts[job_id] == attempt}

    def renew(self, worker: str, job_ids: Sequence[int], lease_until: datetime) -> int:
        """Extend the worker's lease on those of ``job_ids`` it still holds; how many."""
        if not job_ids:
            return 0
        result = self.session.execute(
            update(ReadJob)
            .where(
                ReadJob.id.in_(list(job_ids)),
                ReadJob.state == JobState.RUNNING,
                ReadJob.worker == worker,
            )
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount  # type: ignore[attr-defined,no-any-return]

    def states(
        self, job_ids: Sequence[int], ended_only: bool = False
    ) -> list[tuple[int, JobState, int, FailureCategory | None]]:
        """Each job's id, state, attempts and failure category; with ``ended_only``, only
        the jobs no longer running."""
        if not job_ids:
            return []
        stmt = select(ReadJob.id, ReadJob.state, ReadJob.attempts, ReadJob.failure_category).where(
            one_of(table_of(ReadJob).c.id, "ids", self._dialect)
        )
        if ended_only:
            stmt = stmt.where(ReadJob.state != JobState.RUNNING)
        rows = self.session.execute(stmt, {"ids": list(job_ids)})
        return [(i, state, attempts, category) for i, state, attempts, category in rows]

    def add_attempt(self, values: dict[str, Any]) -> None:
        self.session.execute(insert(table_of(ReadAttempt)), [values])

    def job(self, job_id: int) -> ReadJob | None:
        return self.session.get(ReadJob, job_id)

    def raw_reads(self, job_id: int) -> list[RawRead]:
        return list(
            self.session.scalars(
                select(RawRead).where(RawRead.job_id == job_id).order_by(RawRead.id)
            )
        )

    def attempts(self, job_id: int) -> list[ReadAttempt]:
        return list(
            self.session.scalars(
                select(ReadAttempt).where(ReadAttempt.job_id == job_id).order_by(ReadAttempt.number)
            )
        )

    def transitions(self, job_id: int) -> list[ReadJobTransition]:
        return list(
            self.session.scalars(
                select(ReadJobTransition)
                .where(ReadJobTransition.job_id == job_id)
                .order_by(ReadJobTransition.id)
            )
        )

    def state_counts(self, job_ids: Sequence[int]) -> dict[JobState, int]:
        rows = self.session.execute(
            select(ReadJob.state, func.count())
            .where(one_of(table_of(ReadJob).c.id, "ids", self._dialect))
            .group_by(ReadJob.state),
            {"ids": list(job_ids)},
        )
        return {state: count for state, count in rows}

    def queue_depth(self) -> dict[JobState, int]:
        """Jobs not yet ended, by state."""
        rows = self.session.execute(
            select(ReadJob.state, func.count())
            .where(ReadJob.state.in_(ACTIVE_STATES))
            .group_by(ReadJob.state)
        )
        return {state: count for state, count in rows}

    def failures_by_category(self, job_ids: Sequence[int]) -> dict[FailureCategory, int]:
        rows = self.session.execute(
            select(ReadJob.failure_category, func.count())
            .where(ReadJob.id.in_(list(job_ids)), ReadJob.state == JobState.FAILED)
            .group_by(ReadJob.failure_category)
        )
        return {category: count for category, count in rows if category is not None}

    def failure_details(
        self, job_ids: Sequence[int], category: FailureCategory, limit: int
    ) -> list[tuple[str, int, str]]:
        """The distinct details of the jobs that failed for good in ``category``: detail, how
        many jobs, one meter id; the commonest first."""
        rows = self.session.execute(
            select(ReadJob.failure_detail, func.count(), func.min(Meter.meter_id))
            .join(Meter, ReadJob.meter_id == Meter.id)
            .where(
                ReadJob.id.in_(list(job_ids)),
                ReadJob.state == JobState.FAILED,
                ReadJob.failure_category == category,
            )
            .group_by(ReadJob.failure_detail)
            .order_by(func.count().desc(), ReadJob.failure_detail)
            .limit(limit)
        )
        return [(detail or "", count, meter_id) for detail, count, meter_id in rows]

    def list_jobs(self, state: JobState | None, limit: int) -> list[tuple[ReadJob, str]]:
        stmt = select(ReadJob, Meter.meter_id).join(Meter, ReadJob.meter_id == Meter.id)
        if state is not None:
            stmt = stmt.where(ReadJob.state == state)
        stmt = stmt.order_by(ReadJob.id.desc()).limit(limit)
        return [(job, meter_id) for job, meter_id in self.session.execute(stmt)]
