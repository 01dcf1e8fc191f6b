from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.scheduling.plans import PlanScheduler
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanError, PlanService, PlanSpec, parse_selector
from headend.services.registry.imports import import_registry
from headend.store.models import ReadJob, ReadPlan
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_ACTOR, TEST_SECRET_KEY

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _plans(store: sessionmaker[Session], now: datetime | None = None) -> PlanService:
    import_registry(
        store,
        REPO / "fixtures" / "sample_fleet.csv",
        SecretBox(TEST_SECRET_KEY),
        frozenset({"single_phase_residential", "three_phase_tou"}),
    )
    clock = (lambda: now) if now else (lambda: datetime.now(UTC))
    return PlanService(store, JobService(store, clock=clock), TZ)


def test_firing_a_plan_queues_one_job_per_selected_meter(store: sessionmaker[Session]) -> None:
    plans = _plans(store)
    plan = plans.save(
        PlanSpec(
            "tou-daily",
            "5 0 * * *",
            (ReadKind.REGISTERS, ReadKind.LOAD_PROFILE),
            parse_selector("tag=tou"),
        ),
        actor=TEST_ACTOR,
    )
    ids = plans.fire(plan.id)
    assert len(ids) == 6
    with store() as session:
        jobs = session.scalars(select(ReadJob)).all()
    assert {j.kind for j in jobs} == {ReadKind.FULL}
    assert jobs[0].params == {"kinds": ["load_profile", "registers"]}
    assert plans.fire(plan.id) == []  # the meters already have live jobs


def test_a_plan_that_missed_its_times_during_downtime_fires_once_at_start_up(
    store: sessionmaker[Session],
) -> None:
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 in Hanoi
    plans = _plans(store, now)
    plan = plans.save(
        PlanSpec("registers-daily", "5 0 * * *", (ReadKind.REGISTERS,), {"all": True}),
        actor=TEST_ACTOR,
    )
    with store() as session, session.begin():
        stored = session.get(ReadPlan, plan.id)
        assert stored is not None
        stored.last_fired_at = now - timedelta(days=3)  # three daily slots were missed
    fired: list[int] = []

    async def scenario() -> int:
        scheduler = PlanScheduler(plans, lambda: fired.append(1))
        try:
            caught_up = await scheduler.start()
            jobs = scheduler.scheduler.get_jobs()
            assert [j.name for j in jobs] == ["registers-daily"]
            next_run = jobs[0].next_run_time
            assert next_run.astimezone(TZ).strftime("%H:%M") == "00:05"
            return caught_up
        finally:
            scheduler.stop()

    assert asyncio.run(scenario()) == 1
    assert fired == [1]
    with store() as session:
        assert len(session.scalars(select(ReadJob)).all()) == 24
    # fired now, so a second start-up does not fire it again
    (stored,) = plans.all()
    assert stored.id == plan.id and not plans.missed(stored, now)


def test_a_plan_with_a_bad_cron_or_selector_is_refused_with_the_field_named(
    store: sessionmaker[Session],
) -> None:
    plans = _plans(store)
    with pytest.raises(PlanError, match="cron: 'every day' is not a cron expression"):
        plans.save(
            PlanSpec("x", "every day", (ReadKind.REGISTERS,), {"all": True}), actor=TEST_ACTOR
        )
    with pytest.raises(PlanError, match="meters: 'colour=red' is not a selector"):
        parse_selector("colour=red")
