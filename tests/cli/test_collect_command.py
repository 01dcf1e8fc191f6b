"""``headend collect`` against a simulator in its own process, as an operator runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import JobState, ReadKind
from headend.simulator.devices import meter_data
from headend.simulator.fleet import load_fleet
from headend.simulator.spec import FaultKind
from headend.store.models import Meter, ReadJob
from tests.cli.conftest import on_a_terminal
from tests.intervals import every_stored_interval, intervals_of, meter_ids, meter_pk
from tests.ports import free_ports
from tests.protocol.test_failures import EXPECTED

pytestmark = pytest.mark.timeout(240)
HEADEND = [sys.executable, "-m", "headend"]
LINK_FAULTS = {
    FaultKind.NO_ANSWER,
    FaultKind.SLOW,
    FaultKind.DROP,
    FaultKind.BAD_FCS,
    FaultKind.REJECT,
    FaultKind.WRONG_IC,
}


def _headend(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEADEND, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@contextmanager
def _simulator(tmp_path: Path, env: dict[str, str], *options: str) -> Iterator[Path]:
    fleet = tmp_path / "fleet.json"
    registry = tmp_path / "registry.csv"
    base = free_ports(80)
    made = _headend(
        [
            "simulate",
            *options,
            "--base-port",
            str(base),
            "--pty-dir",
            str(tmp_path / "pty"),
            "--fleet-out",
            str(fleet),
            "--registry-out",
            str(registry),
            "--no-serve",
        ],
        env,
    )
    assert made.returncode == 0, made.stderr
    log = (tmp_path / "simulator.log").open("w")
    process = subprocess.Popen(
        [*HEADEND, "simulate", "--fleet", str(fleet), "--pty-dir", str(tmp_path / "pty")],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while "serving" not in (tmp_path / "simulator.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        imported = _headend(["meters", "import", str(registry)], env)
        assert imported.returncode == 0, imported.stderr
        yield fleet
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        log.close()


def _fast(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **env,
        "HEADEND_RETRY_DELAY_SCALE": "0.002",
        "HEADEND_RESPONSE_TIMEOUT_S": "2",
        "HEADEND_CONNECT_TIMEOUT_S": "2",
        "HEADEND_BACKFILL_DAYS": "2",
        **extra,
    }


def test_collect_reports_healthy_meters_read_and_faulty_ones_failed_by_category(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    env = _fast(cli_env)
    faults = (
        "no_answer=2,slow=2:delay_s=6,drop=2,bad_fcs=2,reject=2,wrong_ic=2,"
        "clock_drift=1,outage=1,spike=1,backwards=1,rollover=1,exchange=1"
    )
    with _simulator(
        tmp_path,
        env,
        "--meters",
        "36",
        "--transport",
        "mixed",
        "--auth",
        "mixed",
        "--seed",
        "11",
        "--faults",
        faults,
    ) as fleet:
        result = _headend(["collect", "--json"], env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    specs = load_fleet(fleet)
    faulty = {s.meter_id: s for s in specs if s.faults and s.faults[0].kind in LINK_FAULTS}
    assert summary["attempted"] == 36
    assert summary["succeeded"] == 36 - len(faulty) == 24
    with store() as session:
        failed = dict(
            session.execute(
                select(Meter.meter_id, ReadJob.failure_category)
                .join(Meter, ReadJob.meter_id == Meter.id)
                .where(ReadJob.state == JobState.FAILED)
            ).all()
        )
        attempts = dict(
            session.execute(
                select(Meter.meter_id, ReadJob.attempts).join(Meter, ReadJob.meter_id == Meter.id)
            ).all()
        )
    assert set(failed) == set(faulty)
    for meter_id, spec in faulty.items():
        kind = "serial" if spec.serial_device else spec.transport.value
        assert failed[meter_id] is EXPECTED[(kind, spec.faults[0].kind.value)], meter_id
        if spec.faults[0].kind in (FaultKind.NO_ANSWER, FaultKind.DROP):
            assert attempts[meter_id] > 1  # retried before giving up
    assert sum(summary["failures_by_category"].values()) == len(faulty)
    # the VEE pass ran on what landed: every read meter has validated versions
    assert summary["vee"]["meters"] == 24 and summary["vee"]["new_versions"] > 0
    with store() as session:
        names = meter_ids(session)
        validated = {names[row.meter_id] for row in every_stored_interval(session) if row.version}
    assert validated == {s.meter_id for s in specs} - set(faulty)


def _job_states(store: sessionmaker[Session]) -> Counter[JobState]:
    with store() as session:
        return Counter(
            dict(session.execute(select(ReadJob.state, func.count()).group_by(ReadJob.state)).all())
        )


@pytest.mark.parametrize("kill_after", [6])
def test_a_collection_killed_midway_and_restarted_ends_with_every_meter_read_exactly_once(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path, kill_after: int
) -> None:
    env = _fast(cli_env, HEADEND_MAX_SESSIONS="3")
    with _simulator(
        tmp_path, env, "--meters", "24", "--transport", "mixed", "--seed", "5", "--latency-ms", "40"
    ) as fleet:
        first = subprocess.Popen(
            [*HEADEND, "collect"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while True:
            states = _job_states(store)
            # killed only while sessions are open: the restart must take over their jobs
            if states[JobState.SUCCEEDED] >= kill_after and states[JobState.RUNNING] > 0:
                break
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        states = _job_states(store)
        # it died mid-collection (a session that ended in the moment before the kill may
        # have left its next job queued rather than running)
        assert states[JobState.RUNNING] + states[JobState.QUEUED] > 0
        second = _headend(["collect", "--json"], env)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["failed"] == 0 and summary["unfinished"] == 0
    specs = {s.meter_id: s for s in load_fleet(fleet)}
    with store() as session:
        states = list(session.scalars(select(ReadJob.state).where(ReadJob.kind == ReadKind.FULL)))
        assert JobState.RUNNING not in states and JobState.QUEUED not in states
        for meter_id, spec in specs.items():
            rows = intervals_of(session, meter_pk(session, meter_id), "1.0.1.8.0.255", "raw")
            period = timedelta(seconds=spec.capture_period_s)
            assert rows, meter_id
            assert len({r.interval_end for r in rows}) == len(rows)
            assert (rows[-1].interval_end - rows[0].interval_end) // period == len(rows) - 1
            truth = meter_data(spec).truth(rows[0].interval_end - period, rows[-1].interval_end)
            assert sum(r.value for r in rows) == truth.consumption["A+"], meter_id


def test_collect_draws_its_bar_on_a_terminal_only_and_stdout_keeps_to_the_summary(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    env = _fast(cli_env)
    with _simulator(
        tmp_path,
        env,
        "--meters",
        "4",
        "--transport",
        "wrapper",
        "--seed",
        "3",
        "--latency-ms",
        "20",
    ):
        code, stdout, terminal = on_a_terminal(["collect"], env)
        piped = _headend(["collect"], env)
    assert code == 0, terminal.decode(errors="replace")
    assert b"reading meters" in terminal
    lines = stdout.decode().splitlines()
    assert lines[0] == "4 meters: 4 succeeded, 0 failed"
    assert lines[-1].startswith("VEE: ") and b"\x1b[" not in stdout
    # stderr not a terminal: no bar at all, and the same summary on stdout
    assert piped.returncode == 0, piped.stderr
    assert "reading meters" not in piped.stderr and "\x1b[" not in piped.stderr
    assert piped.stdout.splitlines()[0] == "4 meters: 4 succeeded, 0 failed"


def test_collect_with_a_meter_that_never_answers_ends_at_its_time_out_with_every_healthy_meter_read(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    # a step timeout far beyond --timeout: only the collection's deadline ends that session
    env = _fast(cli_env, HEADEND_RESPONSE_TIMEOUT_S="120", HEADEND_CONNECT_TIMEOUT_S="120")
    with _simulator(
        tmp_path,
        env,
        "--meters",
        "6",
        "--transport",
        "wrapper",
        "--auth",
        "none",
        "--seed",
        "5",
        "--faults",
        "no_answer=1",
    ) as fleet:
        began = time.monotonic()
        result = _headend(["collect", "--json", "--timeout", "12"], env, timeout=90)
        took = time.monotonic() - began
    assert result.returncode == 3, result.stderr
    assert took < 45
    summary = json.loads(result.stdout)
    specs = load_fleet(fleet)
    hostile = {s.meter_id for s in specs if s.faults}
    assert len(hostile) == 1
    assert summary["succeeded"] == 5 and summary["unfinished"] == 1
    states = _job_states(store)
    assert states[JobState.RUNNING] == 0 and states[JobState.SUCCEEDED] == 5
    with store() as session:
        (category,) = session.scalars(
            select(ReadJob.failure_category)
            .join(Meter, ReadJob.meter_id == Meter.id)
            .where(Meter.meter_id.in_(hostile))
        )
    assert category == "response_timeout"
