"""Collection: read plans, read jobs with their state transitions and attempts, raw reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.store.base import Base, Timestamped, utcnow
from headend.store.models._columns import enum_type
from headend.store.types import PackedJson, UtcDateTime


class ReadPlan(Timestamped, Base):
    """Which meters, what to read and when (cron in the utility's time zone)."""

    __tablename__ = "read_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # {"all": true} | {"gateway": name} | {"device_profile": name} | {"tag": tag}
    selector: Mapped[dict[str, Any]] = mapped_column(JSON)
    read_kinds: Mapped[list[str]] = mapped_column(JSON)
    cron: Mapped[str] = mapped_column(String(64))
    window_minutes: Mapped[int] = mapped_column(Integer, default=240)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ReadJob(Timestamped, Base):
    __tablename__ = "read_jobs"
    __table_args__ = (Index(None, "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("read_plans.id"))
    kind: Mapped[ReadKind] = mapped_column(enum_type(ReadKind))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower runs first
    state: Mapped[JobState] = mapped_column(enum_type(JobState), default=JobState.QUEUED)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_category: Mapped[FailureCategory | None] = mapped_column(enum_type(FailureCategory))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    # HEADEND_EXECUTOR=celery: the worker running the job, and until when its lease holds (the
    # worker extends it while the session runs; past it the coordinator requeues the job)
    worker: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ReadJobTransition(Base):
    """Every state change of a job, for the job's history and for audits."""

    __tablename__ = "read_job_transitions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("read_jobs.id"), index=True)
    from_state: Mapped[JobState | None] = mapped_column(enum_type(JobState))
    to_state: Mapped[JobState] = mapped_column(enum_type(JobState))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class ReadAttempt(Base):
    """One session with a meter on behalf of a job."""

    __tablename__ = "read_attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"), Index(None, "started_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("read_jobs.id"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    succeeded: Mapped[bool | None] = mapped_column(Boolean)
    failure_category: Mapped[FailureCategory | None] = mapped_column(enum_type(FailureCategory))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    connect_ms: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    bytes_sent: Mapped[int | None] = mapped_column(Integer)
    bytes_received: Mapped[int | None] = mapped_column(Integer)


class RawRead(Base):
    """What a meter returned, landed before any validation and never changed afterwards.

    ``content_hash`` makes landing idempotent: the same values read twice land once.
    """

    __tablename__ = "raw_reads"
    __table_args__ = (UniqueConstraint("meter_id", "kind", "content_hash"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # indexed by the unique key, which begins with it
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("read_jobs.id"))
    kind: Mapped[ReadKind] = mapped_column(enum_type(ReadKind))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())  # head-end time of the session
    meter_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    clock_status: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(PackedJson())
    content_hash: Mapped[str] = mapped_column(String(64))


class Worker(Base):
    """A ``headend worker`` process: what it serves and when it last said it was alive."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)  # []: gateways with no site
    capacity: Mapped[int] = mapped_column(Integer)  # sessions it runs at once at most
    sessions: Mapped[int] = mapped_column(Integer, default=0)  # running at its last heartbeat
    finished: Mapped[int] = mapped_column(Integer, default=0)  # sessions it ended, all told
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
