"""The fleet run of the collection benchmark: simulated meters read through the scheduler and
the dispatcher into the store, end to end.

    python bench/collect.py fleet [--meters 10000] [--database sqlite|postgresql|both]
                                  [--max-sessions 400] [--per-port 10]
                                  [--executor local|celery] [--workers 2]
                                  [--latency-ms 200] [--latency-meters 2000]
                                  [--worker-sessions 200]

Each meter gets a daily collection (clock, registers, one day of load profile) fired by a read
plan on APScheduler (it missed its slot, so it fires once at start-up), dispatched within the
limits and landed in a fresh store. The simulator runs in its own process. Printed: meters per
second end to end, the head-end process's CPU per meter, and the time 715,016 meters would
take at that rate, compared with the goal of 10,000 meters in under two minutes on SQLite.

With ``--executor celery`` the same fleet goes, in the same run, through the local executor on
PostgreSQL (the baseline) and then through the coordinator (this process: scheduler and
dispatcher), RabbitMQ and ``--workers`` ``headend worker`` processes into PostgreSQL. Printed
for each: wall time and CPU per meter of the coordinator (or the local process), each worker,
PostgreSQL's server and RabbitMQ, read from /proc. Then, on a second fleet of
``--latency-meters`` meters whose every answer comes ``--latency-ms`` late (sessions wait on
the network), one worker against ``--workers`` workers, each running up to
``--worker-sessions`` sessions: the throughput ratio (goal: 2 workers at least 1.8x one).
RabbitMQ must run on 127.0.0.1:5672 (guest/guest); the run uses a virtual host of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cpu import postgres_cpu, process_cpu, rabbitmq_cpu
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import JobState, ReadKind
from headend.logs import configure_logging
from headend.protocol.transports import Timeouts
from headend.scheduling.celery_app import queue_of, sender
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.scheduling.plans import PlanScheduler
from headend.scheduling.remote import RemoteSessions
from headend.services.access.audit import Actor
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService, PlanSpec
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.collection.workers import Workers
from headend.services.registry.imports import import_registry
from headend.simulator.fleet import FleetOptions, generate_fleet, save_fleet
from headend.simulator.registry import write_registry
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter, ReadJob, ReadPlan
from headend.store.notices import EndsListener
from headend.store.repositories.intervals import IntervalRepository
from headend.store.secrets import SecretBox

FLEET_SIZE = 715_016
EARLY = datetime(1970, 1, 2, tzinfo=UTC)  # before any interval
BUDGET_S = 120.0
ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
RABBIT = os.environ.get("HEADEND_BENCH_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")


def _free_base(size: int) -> int:
    import socket

    base = 30000
    while True:
        try:
            socks = []
            for port in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            base = port + 1
        finally:
            for s in socks:
                s.close()


def _database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'fleet.db'}"
    name = f"headend_fleet_bench_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    if url.startswith("sqlite"):
        return
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def run(
    kind: str,
    registry: Path,
    args: argparse.Namespace,
    workers: int = 0,
    worker_sessions: int = 0,
    max_sessions: int = 0,
) -> dict[str, float]:
    """One collection of the fleet into a fresh store: in this process (``workers`` 0) or
    through RabbitMQ on ``workers`` worker processes."""
    max_sessions = max_sessions or args.max_sessions
    with tempfile.TemporaryDirectory() as tmp:
        url = _database(kind, Path(tmp))
        pool: list[subprocess.Popen[bytes]] = []
        vhost = f"headend-bench-{os.getpid()}"
        try:
            migrations.upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            box = SecretBox(SECRET)
            import_registry(factory, registry, box, PROFILES)
            jobs = JobService(factory, retry_delay_scale=0.01)
            limits = DispatcherLimits(max_sessions=max_sessions)
            if workers:
                broker = _vhost(vhost)
                pool = _start_workers(url, broker, workers, worker_sessions, Path(tmp))
                _wait_for_workers(factory, workers, pool, Path(tmp))
                send = sender(broker)
                listener = EndsListener(url)
                remote = RemoteSessions(
                    jobs, Workers(factory), send, queue_of, 60.0, listener=listener
                )
                dispatcher = Dispatcher(jobs, None, limits, remote=remote)
            else:
                collection = CollectionService(
                    factory,
                    box,
                    CollectionSettings(
                        backfill=timedelta(days=1), timeouts=Timeouts(10, 10, 20, 2)
                    ),
                )
                dispatcher = Dispatcher(jobs, collection.run, limits)
            plans = PlanService(factory, jobs, ZoneInfo("Asia/Ho_Chi_Minh"))
            plan = plans.save(
                PlanSpec(
                    "daily", "5 0 * * *", (ReadKind.REGISTERS, ReadKind.LOAD_PROFILE), {"all": True}
                ),
                actor=Actor("bench"),
            )
            with factory() as session, session.begin():
                stored = session.get(ReadPlan, plan.id)
                assert stored is not None
                stored.last_fired_at = datetime.now(UTC) - timedelta(days=2)

            async def go() -> tuple[float, float, bool]:
                scheduler = PlanScheduler(plans, dispatcher.wake)
                began, cpu = time.perf_counter(), time.process_time()
                await scheduler.start()  # the missed slot fires once, now
                scheduler.stop()
                with factory() as session:
                    ids = list(session.scalars(select(ReadJob.id)))
                done = await dispatcher.run_until_finished(ids, timeout_s=args.timeout)
                return time.perf_counter() - began, time.process_time() - cpu, done

            before = _others(pool)
            wall, cpu, done = asyncio.run(go())
            others = {key: value - before[key] for key, value in _others(pool).items()}
            dispatcher.close()
            with factory() as session:
                succeeded = (
                    session.scalar(
                        select(func.count())
                        .select_from(ReadJob)
                        .where(ReadJob.state == JobState.SUCCEEDED)
                    )
                    or 0
                )
                pks = list(session.scalars(select(Meter.id)))
                intervals = sum(
                    len(cols)
                    for _, _, cols in IntervalRepository(session).columns(pks, None, EARLY, None)
                )
            engine.dispose()
        finally:
            _stop_workers(pool)
            if workers:
                _rabbitmqctl("delete_vhost", vhost)
            _drop(url)
    return {
        **others,
        "wall": wall,
        "cpu": cpu,
        "succeeded": succeeded,
        "intervals": intervals,
        "finished": float(done),
        "peak": dispatcher.stats.peak_sessions,
    }


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _vhost(name: str) -> str:
    """A RabbitMQ virtual host of the run's own; its broker URL."""
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"{RABBIT}/{name}"


def _start_workers(
    url: str, broker: str, count: int, sessions: int, folder: Path
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "HEADEND_DATABASE_URL": url,
        "HEADEND_SECRET_KEY": SECRET,
        "HEADEND_BROKER_URL": broker,
        "HEADEND_EXECUTOR": "celery",
        "HEADEND_BACKFILL_DAYS": "1",
        "HEADEND_CONNECT_TIMEOUT_S": "10",
        "HEADEND_RESPONSE_TIMEOUT_S": "20",
        "HEADEND_RETRY_DELAY_SCALE": "0.01",
        "HEADEND_LOG_LEVEL": "WARNING",
    }
    pool = []
    for number in range(count):
        log = (folder / f"worker-{number}.log").open("wb")
        env["HEADEND_SPOOL_DIR"] = str(folder / f"spool-{number}")
        pool.append(
            subprocess.Popen(
                [sys.executable, "-m", "headend", "worker", "--sessions", str(sessions)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return pool


def _wait_for_workers(
    factory: sessionmaker[Session], count: int, pool: list[subprocess.Popen[bytes]], folder: Path
) -> None:
    workers = Workers(factory)
    deadline = time.monotonic() + 60
    while len(workers.alive()) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in pool):
            logs = "".join(p.read_text() for p in folder.glob("worker-*.log"))
            raise SystemExit(f"the workers did not start:\n{logs}")
        time.sleep(0.2)
    time.sleep(1.0)  # their consumers are up a moment after the first heartbeat


def _stop_workers(pool: list[subprocess.Popen[bytes]]) -> None:
    for process in pool:
        process.send_signal(signal.SIGTERM)
    for process in pool:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _others(pool: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far of each worker, PostgreSQL and RabbitMQ."""
    found = {f"worker{n}": process_cpu(p.pid) for n, p in enumerate(pool)}
    return {**found, "postgres": postgres_cpu(), "rabbitmq": rabbitmq_cpu()}


def _fleet(
    args: argparse.Namespace, meters: int, latency_s: float, folder: Path, name: str
) -> tuple[Path, Path]:
    ports = meters // args.per_port + 2
    specs = generate_fleet(
        FleetOptions(
            meters=meters,
            seed=3,
            transport="wrapper",
            per_port=args.per_port,
            base_port=_free_base(ports),
            history_days=3,
            latency_s=latency_s,
        )
    )
    fleet_file, registry = folder / f"{name}.json", folder / f"{name}.csv"
    save_fleet(fleet_file, specs)
    write_registry(registry, specs)
    return fleet_file, registry


class Simulating:
    """``headend simulate`` serving a fleet file in its own process."""

    def __init__(self, fleet_file: Path) -> None:
        self.log = fleet_file.with_suffix(".log")
        self.fleet_file = fleet_file

    def __enter__(self) -> Simulating:
        out = self.log.open("w")
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "headend", "simulate", "--fleet", str(self.fleet_file)],
            stdout=out,
            stderr=out,
        )
        while "serving" not in self.log.read_text():
            if self.sim.poll() is not None:
                raise SystemExit(self.log.read_text())
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.terminate()
        self.sim.wait(30)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--max-sessions", type=int, default=400)
    parser.add_argument("--per-port", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-sessions", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--latency-meters", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.executor == "celery":
        return main_celery(args)
    configure_logging("WARNING")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory() as tmp:
        fleet_file, registry = _fleet(args, args.meters, 0.0, Path(tmp), "fleet")
        with Simulating(fleet_file):
            results = {kind: run(kind, registry, args) for kind in kinds}
    print(
        f"fleet run: {args.meters:,} meters, daily registers + one day of load profile, "
        f"up to {args.max_sessions} sessions"
    )
    print(
        f"{'store':<12}{'succeeded':>10}{'intervals':>12}{'wall s':>9}{'meters/s':>10}"
        f"{'CPU ms/meter':>14}{'715,016 meters':>16}{'vs 2 min goal':>15}"
    )
    for kind, r in results.items():
        rate = r["succeeded"] / r["wall"]
        print(
            f"{kind:<12}{int(r['succeeded']):>10,}{int(r['intervals']):>12,}{r['wall']:>9.1f}"
            f"{rate:>10.1f}{1000 * r['cpu'] / args.meters:>14.2f}"
            f"{FLEET_SIZE / rate / 3600:>14.1f} h{r['wall'] / BUDGET_S:>14.0%}"
        )
    return 0


def main_celery(args: argparse.Namespace) -> int:
    """The local executor against the Celery executor on PostgreSQL, then the latency fleet on
    one worker against ``--workers``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fleet_file, registry = _fleet(args, args.meters, 0.0, folder, "fleet")
        with Simulating(fleet_file):
            local = run("postgresql", registry, args)
            celery = run("postgresql", registry, args, args.workers, args.max_sessions)
        latency: dict[int, dict[str, float]] = {}
        if args.latency_meters:
            slow, slow_registry = _fleet(
                args, args.latency_meters, args.latency_ms / 1000, folder, "latency"
            )
            with Simulating(slow):
                for count in (1, args.workers):
                    latency[count] = run(
                        "postgresql",
                        slow_registry,
                        args,
                        count,
                        args.worker_sessions,
                        args.worker_sessions * args.workers * 2,
                    )
    n = args.meters
    print(
        f"fleet run: {n:,} meters, daily registers + one day of load profile, PostgreSQL, "
        f"up to {args.max_sessions} sessions"
    )
    print(
        f"{'executor':<22}{'succeeded':>10}{'wall s':>9}{'meters/s':>10}"
        f"{'CPU ms per meter: coordinator':>31}{'workers':>16}{'PostgreSQL':>12}{'RabbitMQ':>10}"
    )
    for label, r in (("local", local), (f"celery, {args.workers} workers", celery)):
        per_worker = [1000 * v / n for k, v in sorted(r.items()) if k.startswith("worker")]
        print(
            f"{label:<22}{int(r['succeeded']):>10,}{r['wall']:>9.1f}"
            f"{r['succeeded'] / r['wall']:>10.1f}"
            f"{1000 * r['cpu'] / n:>31.2f}"
            f"{' + '.join(f'{w:.2f}' for w in per_worker) or '-':>16}"
            f"{1000 * r['postgres'] / n:>12.2f}{1000 * r['rabbitmq'] / n:>10.2f}"
        )
    workers_total = sum(v for k, v in celery.items() if k.startswith("worker"))
    print(
        f"worker CPU per meter, all workers: {1000 * workers_total / n:.2f} ms against the local "
        f"process's {1000 * local['cpu'] / n:.2f} ms (x{workers_total / local['cpu']:.2f})"
    )
    if latency:
        one, many = latency[1], latency[args.workers]
        rate_one = one["succeeded"] / one["wall"]
        rate_many = many["succeeded"] / many["wall"]
        print(
            f"latency fleet: {args.latency_meters:,} meters, {args.latency_ms:.0f} ms per answer, "
            f"{args.worker_sessions} sessions per worker: 1 worker {rate_one:.1f} meters/s "
            f"({one['wall']:.1f} s), {args.workers} workers {rate_many:.1f} meters/s "
            f"({many['wall']:.1f} s): x{rate_many / rate_one:.2f} (goal x1.8 for 2)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
