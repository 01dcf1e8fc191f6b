"""Read plans: which meters, what to read and when; firing a plan queues its read jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.services.access import audit
from headend.services.access.audit import Actor
from headend.services.collection.jobs import SCHEDULED_PRIORITY, JobService
from headend.services.errors import FieldError, Invalid, NotFound
from headend.store.models import ReadPlan
from headend.store.repositories.jobs import JobRepository

SELECTOR_KEYS = ("all", "gateway", "device_profile", "tag")


class PlanError(Invalid):
    """A read plan is not valid; the message names the field (``field: what is wrong``)."""

    def __init__(self, message: str) -> None:
        field, _, problem = message.partition(": ")
        super().__init__(message, field, errors=[FieldError(field, problem)])


@dataclass(frozen=True)
class PlanSpec:
    name: str
    cron: str
    read_kinds: tuple[ReadKind, ...]
    selector: dict[str, Any]
    window_minutes: int = 240
    active: bool = True


@dataclass(frozen=True)
class PlanInfo:
    """A stored read plan, as the API, the CLI and the scheduler see it."""

    id: int
    name: str
    cron: str
    read_kinds: tuple[str, ...]
    selector: dict[str, Any]
    window_minutes: int
    active: bool
    last_fired_at: datetime | None
    created_at: datetime


def _info(plan: ReadPlan) -> PlanInfo:
    return PlanInfo(
        id=plan.id,
        name=plan.name,
        cron=plan.cron,
        read_kinds=tuple(plan.read_kinds),
        selector=dict(plan.selector),
        window_minutes=plan.window_minutes,
        active=plan.active,
        last_fired_at=plan.last_fired_at,
        created_at=plan.created_at,
    )


def parse_selector(text: str) -> dict[str, Any]:
    """``all``, ``gateway=NAME``, ``device_profile=NAME`` or ``tag=TAG``."""
    if text.strip() == "all":
        return {"all": True}
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in SELECTOR_KEYS[1:] or not value.strip():
        raise PlanError(
            f"meters: {text!r} is not a selector; use all, gateway=NAME, device_profile=NAME "
            "or tag=TAG"
        )
    return {key: value.strip()}


def trigger_for(cron: str, tz: ZoneInfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=tz)
    except ValueError as exc:
        raise PlanError(f"cron: {cron!r} is not a cron expression ({exc})") from exc


def job_kind(kinds: Sequence[ReadKind]) -> tuple[ReadKind, dict[str, Any]]:
    """One session reads everything a plan asks of a meter."""
    unique = sorted(set(kinds))
    if len(unique) == 1:
        return unique[0], {}
    return ReadKind.FULL, {"kinds": [str(k) for k in unique]}


class PlanService:
    def __init__(
        self, session_factory: sessionmaker[Session], jobs: JobService, tz: ZoneInfo
    ) -> None:
        self.session_factory = session_factory
        self.jobs = jobs
        self.tz = tz

    def save(self, spec: PlanSpec, *, actor: Actor) -> PlanInfo:
        """Create the plan, or update the plan of that name; audited as ``plan.put``."""
        trigger_for(spec.cron, self.tz)
        if not spec.read_kinds:
            raise PlanError(
                "read_kinds: name at least one of " + ", ".join(k.value for k in ReadKind)
            )
        if spec.window_minutes < 1:
            raise PlanError("window_minutes: must be at least 1")
        with self.session_factory() as session, session.begin():
            plan = JobRepository(session).plan_by_name(spec.name)
            if plan is None:
                plan = ReadPlan(name=spec.name)
                session.add(plan)
            plan.cron = spec.cron
            plan.read_kinds = [str(k) for k in spec.read_kinds]
            plan.selector = spec.selector
            plan.window_minutes = spec.window_minutes
            plan.active = spec.active
            detail = {
                "cron": spec.cron,
                "kinds": [str(k) for k in spec.read_kinds],
                "selector": spec.selector,
                "window_minutes": spec.window_minutes,
            }
            target = f"plan:{spec.name}"
            audit.write(session, self.jobs.clock(), actor, "plan.put", target, detail)
            session.flush()
            return _info(plan)

    def deactivate(self, name: str, *, actor: Actor) -> None:
        """Stop a plan firing; audited as ``plan.deactivate``."""
        with self.session_factory() as session, session.begin():
            plan = JobRepository(session).plan_by_name(name)
            if plan is None:
                raise NotFound(f"there is no read plan named {name!r}")
            plan.active = False
            audit.write(session, self.jobs.clock(), actor, "plan.deactivate", f"plan:{name}")

    def all(self) -> list[PlanInfo]:
        with self.session_factory() as session:
            return [_info(plan) for plan in JobRepository(session).plans()]

    def fire(self, plan_id: int, now: datetime | None = None) -> list[int]:
        """Queue the plan's jobs now; returns their ids."""
        now = now or self.jobs.clock()
        with self.session_factory() as session:
            plan = session.get(ReadPlan, plan_id)
            if plan is None or not plan.active:
                return []
            meters = JobRepository(session).meter_pks_for(plan.selector)
            kind, params = job_kind([ReadKind(k) for k in plan.read_kinds])
            window = timedelta(minutes=plan.window_minutes)
        ids = self.jobs.queue(
            meters,
            kind,
            params=params,
            plan_id=plan_id,
            window=window,
            priority=SCHEDULED_PRIORITY,
            requested_by=f"plan:{plan.name}",
        )
        with self.session_factory() as session, session.begin():
            stored = session.get(ReadPlan, plan_id)
            if stored is not None:
                stored.last_fired_at = now
        return ids

    def missed(self, plan: PlanInfo, now: datetime) -> bool:
        """True when a fire time passed since the plan last fired (or since it was created)."""
        since = plan.last_fired_at or plan.created_at
        trigger = trigger_for(plan.cron, self.tz)
        slot = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
        return slot is not None and slot <= now
