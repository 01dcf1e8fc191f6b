"""Meter sessions on ``headend worker`` processes over a real RabbitMQ, into PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import JobState, ReadKind
from headend.simulator.spec import MeterSpec
from headend.store.models import Gateway, Meter, ReadAttempt, ReadJob
from tests.conftest import TEST_ACTOR
from tests.intervals import stored_intervals
from tests.scheduling.simfleet_store import StoreFleet, make_fleet, serving_into_store
from tests.scheduling.workers_support import (
    LEASE_S,
    WorkerPool,
    coordinator,
    needs_postgresql,
)

pytestmark = [pytest.mark.timeout(240), needs_postgresql]
A_PLUS = "1.0.1.8.0.255"
DAILY = {"kinds": ["registers", "load_profile"]}


def _collect(fleet: StoreFleet, broker: str, timeout_s: float = 120, **queue: object) -> list[int]:
    ids = fleet.jobs.queue_for_meters(
        list(fleet.specs), ReadKind.FULL, params=DAILY, skip_if_active=False, **queue
    )
    dispatcher = coordinator(fleet.jobs, fleet.store, broker)
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=timeout_s))
    finally:
        dispatcher.close()
    return ids


def _slow_buses(tmp_path: Path, meters: int, bus_size: int, latency_s: float) -> list[MeterSpec]:
    """Meters on RS485 buses behind TCP converters, each answer ``latency_s`` late."""
    return [
        replace(spec, latency_s=latency_s)
        for spec in make_fleet(tmp_path, meters, transport="hdlc", auth="none", bus_size=bus_size)
    ]


def _lands_what_it_measured(fleet: StoreFleet, meter_id: str) -> None:
    rows = stored_intervals(fleet.store, meter_id, A_PLUS, which="raw")
    period = timedelta(seconds=fleet.specs[meter_id].capture_period_s)
    assert rows, meter_id
    assert len(rows) == len({r.interval_end for r in rows})
    assert all(b.interval_end - a.interval_end == period for a, b in itertools.pairwise(rows))
    truth = fleet.data(meter_id).truth(rows[0].interval_end - period, rows[-1].interval_end)
    assert sum(r.value for r in rows) == truth.consumption["A+"], meter_id


def _sessions_by_worker(store: sessionmaker[Session]) -> dict[str, int]:
    with store() as session:
        rows = session.execute(select(ReadJob.worker, func.count()).group_by(ReadJob.worker)).all()
    return {worker: count for worker, count in rows if worker}


def test_two_workers_read_a_fleet_and_every_meter_lands_what_it_measured(
    store: sessionmaker[Session],
    tmp_path: Path,
    worker_pool: WorkerPool,
    broker_url: str,
) -> None:
    specs = make_fleet(tmp_path, 12, transport="wrapper", bus_size=1)
    first, second = worker_pool.start(), worker_pool.start()
    with serving_into_store(specs, store) as fleet:
        ids = _collect(fleet, broker_url)
        assert fleet.jobs.summary(ids)["succeeded"] == 12, worker_pool.logs()
        for meter_id in fleet.specs:
            _lands_what_it_measured(fleet, meter_id)
    ran = _sessions_by_worker(store)
    assert set(ran) == {worker_pool.name_of(first), worker_pool.name_of(second)}
    assert sum(ran.values()) == 12
    with store() as session:
        assert session.scalar(select(func.count()).select_from(ReadAttempt)) == 12


def test_a_worker_killed_mid_batch_leaves_every_meter_read_exactly_once_and_no_job_running(
    store: sessionmaker[Session],
    tmp_path: Path,
    worker_pool: WorkerPool,
    broker_url: str,
) -> None:
    specs = _slow_buses(tmp_path, 8, bus_size=4, latency_s=0.05)
    doomed = worker_pool.start(sessions=4)
    with serving_into_store(specs, store) as fleet:
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        dispatcher = coordinator(fleet.jobs, store, broker_url)

        async def scenario() -> bool:
            stop = asyncio.Event()
            running = asyncio.create_task(dispatcher.run(stop))
            name = await asyncio.to_thread(worker_pool.name_of, doomed)
            while not await asyncio.to_thread(_held_by, store, name):
                await asyncio.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)  # mid-batch: sessions under way
            await asyncio.to_thread(worker_pool.start, sessions=4)
            finished = await asyncio.to_thread(_wait_all_ended, fleet, ids, 150)
            stop.set()
            await running
            return finished

        try:
            assert asyncio.run(scenario()), worker_pool.logs()
        finally:
            dispatcher.close()
        assert fleet.jobs.summary(ids)["succeeded"] == 8
        for meter_id in fleet.specs:
            _lands_what_it_measured(fleet, meter_id)
    with store() as session:
        assert not session.scalar(
            select(func.count()).select_from(ReadJob).where(ReadJob.state == JobState.RUNNING)
        )
        # each job ended once, by one recorded session that succeeded
        wins = session.execute(
            select(ReadAttempt.job_id, func.count())
            .where(ReadAttempt.succeeded.is_(True))
            .group_by(ReadAttempt.job_id)
        ).all()
    assert sorted(wins) == sorted((job_id, 1) for job_id in ids)


def _held_by(store: sessionmaker[Session], worker: str) -> bool:
    with store() as session:
        return bool(
            session.scalar(
                select(func.count())
                .select_from(ReadJob)
                .where(ReadJob.worker == worker, ReadJob.state == JobState.RUNNING)
            )
        )


def _wait_all_ended(fleet: StoreFleet, ids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if fleet.jobs.all_finished(ids):
            return True
        time.sleep(0.2)
    return False


def test_a_site_worker_reads_only_its_sites_gateways_and_the_others_wait_queued(
    store: sessionmaker[Session],
    tmp_path: Path,
    worker_pool: WorkerPool,
    broker_url: str,
) -> None:
    specs = make_fleet(tmp_path, 6, transport="wrapper", auth="none", bus_size=1)
    north = {spec.meter_id for spec in specs[:3]}
    worker_pool.start("north")
    with serving_into_store(specs, store) as fleet:
        with store.begin() as session:
            gateway_ids = select(Meter.gateway_id).where(Meter.meter_id.in_(north))
            session.execute(update(Gateway).where(Gateway.id.in_(gateway_ids)).values(site="north"))
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        dispatcher = coordinator(fleet.jobs, store, broker_url)
        try:
            assert not asyncio.run(dispatcher.run_until_finished(ids, timeout_s=LEASE_S * 2))
        finally:
            dispatcher.close()
        with store() as session:
            states = dict(
                session.execute(
                    select(Meter.meter_id, ReadJob.state).join(Meter, ReadJob.meter_id == Meter.id)
                ).all()
            )
        assert {m for m, state in states.items() if state is JobState.SUCCEEDED} == north
        # no live worker reads the gateways of no site: their jobs were never started
        assert {states[m] for m in states if m not in north} == {JobState.QUEUED}
        worker_pool.start()
        dispatcher = coordinator(fleet.jobs, store, broker_url)
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
        finally:
            dispatcher.close()
        assert fleet.jobs.summary(ids)["succeeded"] == 6


def test_a_bus_carries_one_session_at_a_time_with_two_workers(
    store: sessionmaker[Session],
    tmp_path: Path,
    worker_pool: WorkerPool,
    broker_url: str,
) -> None:
    specs = make_fleet(tmp_path, 12, transport="hdlc", auth="none", bus_size=4)
    worker_pool.start()
    worker_pool.start()
    with serving_into_store(specs, store) as fleet:
        ids = _collect(fleet, broker_url)
        assert fleet.jobs.summary(ids)["succeeded"] == 12
    with store() as session:
        sessions = session.execute(
            select(Meter.gateway_id, ReadAttempt.started_at, ReadAttempt.finished_at)
            .join(ReadJob, ReadAttempt.job_id == ReadJob.id)
            .join(Meter, ReadJob.meter_id == Meter.id)
            .order_by(Meter.gateway_id, ReadAttempt.started_at)
        ).all()
    by_gateway = itertools.groupby(sessions, key=lambda row: row[0])
    for _, rows in by_gateway:
        spans = [(start, end) for _, start, end in rows]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    assert len(_sessions_by_worker(store)) == 2


def test_an_on_demand_read_overtakes_a_running_bulk_collection(
    store: sessionmaker[Session],
    tmp_path: Path,
    worker_pool: WorkerPool,
    broker_url: str,
) -> None:
    specs = _slow_buses(tmp_path, 6, bus_size=6, latency_s=0.05)
    worker_pool.start()
    with serving_into_store(specs, store) as fleet:
        bulk = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        dispatcher = coordinator(fleet.jobs, store, broker_url)
        wanted = specs[-1].meter_id

        async def scenario() -> tuple[JobState | None, dict[JobState, int]]:
            stop = asyncio.Event()
            running = asyncio.create_task(dispatcher.run(stop))
            while not fleet.jobs.summary(bulk)["succeeded"]:  # the bulk collection is under way
                await asyncio.sleep(0.05)
            job_id = await asyncio.to_thread(
                fleet.jobs.request_read, wanted, ReadKind.REGISTERS, actor=TEST_ACTOR
            )
            outcome = await fleet.jobs.wait(job_id, timeout_s=60)
            with store() as session:
                left = dict(
                    session.execute(
                        select(ReadJob.state, func.count())
                        .where(ReadJob.id.in_(bulk))
                        .group_by(ReadJob.state)
                    ).all()
                )
            stop.set()
            await running
            return (outcome.state if outcome else None), left

        try:
            state, bulk_states = asyncio.run(scenario())
        finally:
            dispatcher.close()
    assert state is JobState.SUCCEEDED
    # one bus, one session at a time: the technician's read went before the bulk had ended
    assert bulk_states.get(JobState.QUEUED, 0) >= 2, bulk_states


def test_the_standby_coordinator_takes_over_when_the_leader_is_killed_and_nothing_runs_twice(
    store: sessionmaker[Session], tmp_path: Path, worker_pool: WorkerPool
) -> None:
    specs = _slow_buses(tmp_path, 8, bus_size=4, latency_s=0.05)
    worker_pool.start()
    with serving_into_store(specs, store) as fleet:
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, params=DAILY)
        leader = worker_pool.coordinator("first")
        _wait_for(lambda: "leading" in worker_pool.said("first"), 60, worker_pool)
        standby = worker_pool.coordinator("second")
        _wait_for(lambda: "standing by" in worker_pool.said("second"), 60, worker_pool)
        _wait_for(lambda: fleet.jobs.summary(ids)["succeeded"] > 0, 60, worker_pool)
        assert "leading" not in worker_pool.said("second")
        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _wait_for(lambda: "leading" in worker_pool.said("second"), 15, worker_pool)
        took_over = time.monotonic() - killed
        assert _wait_all_ended(fleet, ids, 150), worker_pool.logs()
        assert standby.poll() is None
        assert fleet.jobs.summary(ids)["succeeded"] == 8
        for meter_id in fleet.specs:
            _lands_what_it_measured(fleet, meter_id)
    assert took_over < 10
    with store() as session:
        attempts = session.execute(
            select(
                ReadAttempt.job_id,
                ReadAttempt.started_at,
                ReadAttempt.finished_at,
                ReadAttempt.succeeded,
            ).order_by(ReadAttempt.job_id, ReadAttempt.started_at)
        ).all()
    wins = [job_id for job_id, _, _, succeeded in attempts if succeeded]
    assert sorted(wins) == sorted(ids)  # each job succeeded once
    for _, rows in itertools.groupby(attempts, key=lambda row: row[0]):
        spans = [(start, end) for _, start, end, _ in rows]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # never two at once


def _wait_for(condition: object, timeout_s: float, pool: WorkerPool) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout_s} s in vain\n{pool.logs()}")


def _collect_command(
    pool: WorkerPool, *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {**pool.environment(), "HEADEND_SPOOL_DIR": str(pool.folder / "spool-collect")}
    return subprocess.run(
        [sys.executable, "-m", "headend", "collect", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_headend_collect_with_the_celery_executor_has_the_workers_read_every_meter(
    store: sessionmaker[Session], tmp_path: Path, worker_pool: WorkerPool
) -> None:
    specs = make_fleet(tmp_path, 6, transport="wrapper", auth="none", bus_size=1)
    worker = worker_pool.start()
    with serving_into_store(specs, store) as fleet:
        done = _collect_command(worker_pool)
        assert done.returncode == 0, done.stderr + worker_pool.logs()
        summary = json.loads(done.stdout)
        assert (summary["attempted"], summary["succeeded"], summary["unfinished"]) == (6, 6, 0)
        assert summary["vee"]["meters"] == 6
        for meter_id in fleet.specs:
            _lands_what_it_measured(fleet, meter_id)
    assert _sessions_by_worker(store) == {worker_pool.name_of(worker): 6}


def test_headend_collect_timing_out_with_the_celery_executor_leaves_no_job_running(
    store: sessionmaker[Session], tmp_path: Path, worker_pool: WorkerPool
) -> None:
    specs = _slow_buses(tmp_path, 6, bus_size=6, latency_s=0.3)
    worker_pool.start()
    with serving_into_store(specs, store):
        done = _collect_command(worker_pool, "--timeout", "3")
        assert done.returncode == 3, done.stderr + worker_pool.logs()
        summary = json.loads(done.stdout)
        assert summary["unfinished"] > 0
        with store() as session:
            states = set(session.scalars(select(ReadJob.state)))
            timed_out = session.scalar(
                select(func.count())
                .select_from(ReadAttempt)
                .where(ReadAttempt.failure_detail.like("%deadline passed while a worker%"))
            )
    assert JobState.RUNNING not in states
    # one bus, one session at a time: the one under way at the deadline, unless it just ended
    assert timed_out <= 1
