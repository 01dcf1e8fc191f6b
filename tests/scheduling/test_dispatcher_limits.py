"""The dispatcher's limits and retry behaviour, with a runner that only counts sessions."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.services.collection.jobs import AttemptOutcome, JobService
from headend.services.registry.imports import import_registry
from headend.store.models import Meter, ReadAttempt, ReadJob, ReadJobTransition
from headend.store.repositories.jobs import DueJob
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_ACTOR, TEST_SECRET_KEY

PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})


def _fleet(store: sessionmaker[Session]) -> dict[str, int]:
    import_registry(
        store, REPO / "fixtures" / "sample_fleet.csv", SecretBox(TEST_SECRET_KEY), PROFILES
    )
    with store() as session:
        return {m: pk for m, pk in session.execute(select(Meter.meter_id, Meter.id))}


class CountingRunner:
    """Holds each session open a moment and records how many run at once, per gateway."""

    def __init__(self, fail: dict[str, FailureCategory] | None = None) -> None:
        self.now = 0
        self.peak = 0
        self.by_gateway: Counter[int] = Counter()
        self.peak_by_gateway: Counter[int] = Counter()
        self.by_meter: Counter[int] = Counter()
        self.peak_by_meter = 0
        self.order: list[str] = []
        self.fail = fail or {}
        self.calls: Counter[str] = Counter()

    async def __call__(self, job: DueJob) -> AttemptOutcome:
        started = datetime.now(UTC)
        self.now += 1
        self.by_gateway[job.gateway_id] += 1
        self.by_meter[job.meter_pk] += 1
        self.peak = max(self.peak, self.now)
        self.peak_by_gateway[job.gateway_id] = max(
            self.peak_by_gateway[job.gateway_id], self.by_gateway[job.gateway_id]
        )
        self.peak_by_meter = max(self.peak_by_meter, self.by_meter[job.meter_pk])
        self.order.append(job.meter_id)
        self.calls[job.meter_id] += 1
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
            self.by_gateway[job.gateway_id] -= 1
            self.by_meter[job.meter_pk] -= 1
        category = self.fail.get(job.meter_id)
        return AttemptOutcome(
            started,
            datetime.now(UTC),
            category is None,
            category,
            f"injected {category}" if category else None,
        )


def _dispatcher(
    store: sessionmaker[Session], runner: CountingRunner, **limits: float
) -> Dispatcher:
    jobs = JobService(store, retry_delay_scale=0.001, rng=random.Random(1))
    return Dispatcher(jobs, runner, DispatcherLimits(poll_interval_s=0.01, **limits))  # type: ignore[arg-type]


def test_limits_hold_one_session_per_bus_and_per_meter_and_the_global_cap(
    store: sessionmaker[Session],
) -> None:
    meters = _fleet(store)
    runner = CountingRunner()
    dispatcher = _dispatcher(store, runner, max_sessions=5)
    # two jobs per meter: they must never overlap on one meter
    ids = dispatcher.jobs.queue(list(meters.values()), ReadKind.REGISTERS, skip_if_active=False)
    ids += dispatcher.jobs.queue(list(meters.values()), ReadKind.LOAD_PROFILE)
    assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=30))
    with store() as session:
        bus = session.scalar(select(Meter.gateway_id).where(Meter.meter_id == "2611000100"))
        serial = session.scalar(select(Meter.gateway_id).where(Meter.meter_id == "2611000200"))
    assert 2 <= runner.peak <= 5
    assert runner.peak_by_gateway[bus] == 1 and runner.peak_by_gateway[serial] == 1
    assert runner.peak_by_meter == 1
    assert dispatcher.jobs.summary(ids)["succeeded"] == 48


def test_on_demand_reads_run_before_scheduled_ones(store: sessionmaker[Session]) -> None:
    meters = _fleet(store)
    runner = CountingRunner()
    dispatcher = _dispatcher(store, runner, max_sessions=1)
    ids = dispatcher.jobs.queue(list(meters.values()), ReadKind.REGISTERS)
    urgent = dispatcher.jobs.request_read("2611000201", ReadKind.FULL, actor=TEST_ACTOR)
    assert asyncio.run(dispatcher.run_until_finished([*ids, urgent], timeout_s=30))
    assert runner.order[0] == "2611000201"


def test_failures_retry_with_backoff_then_fail_under_their_category(
    store: sessionmaker[Session],
) -> None:
    meters = _fleet(store)
    runner = CountingRunner(
        fail={
            "2611000001": FailureCategory.RESPONSE_TIMEOUT,
            "2611000002": FailureCategory.AUTHENTICATION_FAILED,
        }
    )
    dispatcher = _dispatcher(store, runner)
    ids = dispatcher.jobs.queue_for_meters(
        ["2611000001", "2611000002", "2611000003"], ReadKind.REGISTERS
    )
    assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=30))
    summary = dispatcher.jobs.summary(ids)
    assert summary["succeeded"] == 1 and summary["failed"] == 2
    assert summary["failures_by_category"] == {"authentication_failed": 1, "response_timeout": 1}
    assert runner.calls["2611000001"] == 4  # retried up to the rule's attempts
    assert runner.calls["2611000002"] == 1  # a refused password is not retried blindly
    with store() as session:
        job = session.scalars(select(ReadJob).where(ReadJob.meter_id == meters["2611000001"])).one()
        states = [
            t.to_state
            for t in session.scalars(
                select(ReadJobTransition)
                .where(ReadJobTransition.job_id == job.id)
                .order_by(ReadJobTransition.id)
            )
        ]
        attempts = session.scalars(
            select(ReadAttempt).where(ReadAttempt.job_id == job.id).order_by(ReadAttempt.id)
        ).all()
    assert states[:4] == [JobState.QUEUED, JobState.RUNNING, JobState.RETRY_WAIT, JobState.RUNNING]
    assert states[-1] is JobState.FAILED
    assert [a.number for a in attempts] == [1, 2, 3, 4]


def test_a_gateway_that_keeps_failing_is_paused(store: sessionmaker[Session]) -> None:
    meters = _fleet(store)
    bus = [m for m in meters if m.startswith("26110001")]
    runner = CountingRunner(fail={m: FailureCategory.UNREACHABLE for m in bus})
    dispatcher = _dispatcher(store, runner, breaker_threshold=3, breaker_pause_s=60)
    ids = dispatcher.jobs.queue_for_meters(bus, ReadKind.REGISTERS)
    finished = asyncio.run(dispatcher.run_until_finished(ids, timeout_s=2))
    assert not finished  # the bus's jobs wait out the pause instead of hammering it
    assert sum(runner.calls.values()) == 3
    assert dispatcher.breaker.paused(datetime.now(UTC))


def test_jobs_left_running_by_a_crash_are_requeued_at_start_up(
    store: sessionmaker[Session],
) -> None:
    meters = _fleet(store)
    runner = CountingRunner()
    dispatcher = _dispatcher(store, runner)
    ids = dispatcher.jobs.queue(list(meters.values())[:3], ReadKind.REGISTERS)
    due = dispatcher.jobs.due(10, set())
    assert all(dispatcher.jobs.start(job) for job in due)  # as a process that then died
    assert not dispatcher.jobs.start(due[0])  # a second start of a running job is refused
    assert sorted(asyncio.run(dispatcher.recover())) == sorted(ids)
    assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=30))
    assert dispatcher.jobs.summary(ids)["succeeded"] == 3
    assert set(runner.calls.values()) == {1}


@pytest.mark.parametrize("kind", [ReadKind.REGISTERS])
def test_queueing_a_plan_twice_does_not_duplicate_live_jobs(
    store: sessionmaker[Session], kind: ReadKind
) -> None:
    meters = _fleet(store)
    jobs = JobService(store)
    first = jobs.queue(list(meters.values()), kind)
    second = jobs.queue(list(meters.values()), kind)
    assert len(first) == 24 and second == []


class HangingRunner(CountingRunner):
    """Reads healthy meters at once; a session to one of ``hang`` never ends by itself."""

    def __init__(self, hang: set[str]) -> None:
        super().__init__()
        self.hang = hang

    async def __call__(self, job: DueJob) -> AttemptOutcome:
        if job.meter_id in self.hang:
            await asyncio.Event().wait()
        return await super().__call__(job)


def test_sessions_still_running_at_the_time_out_are_cancelled_and_recorded_as_timed_out(
    store: sessionmaker[Session],
) -> None:
    meters = _fleet(store)
    hung = "2611000001"
    runner = HangingRunner({hung})
    dispatcher = _dispatcher(store, runner)
    ids = dispatcher.jobs.queue(list(meters.values()), ReadKind.REGISTERS)
    began = asyncio.run(asyncio.wait_for(_timed(dispatcher, ids, 1.5), 10))
    assert began is False
    summary = dispatcher.jobs.summary(ids)
    assert summary["succeeded"] == len(meters) - 1
    with store() as session:
        job = session.scalars(select(ReadJob).where(ReadJob.meter_id == meters[hung])).one()
        attempt = session.scalars(select(ReadAttempt).where(ReadAttempt.job_id == job.id)).one()
        running = session.scalars(select(ReadJob).where(ReadJob.state == JobState.RUNNING)).all()
    assert running == []
    assert job.state is JobState.RETRY_WAIT
    assert attempt.failure_category is FailureCategory.RESPONSE_TIMEOUT
    assert dispatcher.in_flight == 0


async def _timed(dispatcher: Dispatcher, ids: list[int], timeout_s: float) -> bool:
    return await dispatcher.run_until_finished(ids, timeout_s=timeout_s)


def test_a_stopped_dispatcher_cancels_the_sessions_left_after_its_grace_period(
    store: sessionmaker[Session],
) -> None:
    meters = _fleet(store)
    runner = HangingRunner({"2611000001", "2611000002"})
    dispatcher = _dispatcher(store, runner)
    dispatcher.jobs.queue(list(meters.values()), ReadKind.REGISTERS)

    async def serve_briefly() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stop, grace_s=0.3))
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(running, 5)

    asyncio.run(serve_briefly())
    with store() as session:
        states = Counter(session.scalars(select(ReadJob.state)))
    assert states[JobState.RUNNING] == 0
    assert states[JobState.RETRY_WAIT] == 2
