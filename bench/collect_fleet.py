"""The fleet run of the collection benchmark: simulated meters read through the scheduler and
the dispatcher into the store, end to end.

    python bench/collect.py fleet [--meters 10000] [--database sqlite|postgresql|both]
                                  [--max-sessions 400] [--per-port 10]

Each meter gets a daily collection (clock, registers, one day of load profile) fired by a read
plan on APScheduler (it missed its slot, so it fires once at start-up), dispatched within the
limits and landed in a fresh store. The simulator runs in its own process. Printed: meters per
second end to end, the head-end process's CPU per meter, and the time 715,016 meters would
take at that rate, compared with the goal of 10,000 meters in under two minutes on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from headend.domain.enums import JobState, ReadKind
from headend.logs import configure_logging
from headend.protocol.transports import Timeouts
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.scheduling.plans import PlanScheduler
from headend.services.access.audit import Actor
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService, PlanSpec
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.registry.imports import import_registry
from headend.simulator.fleet import FleetOptions, generate_fleet, save_fleet
from headend.simulator.registry import write_registry
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter, ReadJob, ReadPlan
from headend.store.repositories.intervals import IntervalRepository
from headend.store.secrets import SecretBox

FLEET_SIZE = 715_016
EARLY = datetime(1970, 1, 2, tzinfo=UTC)  # before any interval
BUDGET_S = 120.0
ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})


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


def run(kind: str, fleet_file: Path, registry: Path, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = _database(kind, Path(tmp))
        try:
            migrations.upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            box = SecretBox("bench-secret-key-0123456789abcdefghijklmnop")
            import_registry(factory, registry, box, PROFILES)
            jobs = JobService(factory, retry_delay_scale=0.01)
            collection = CollectionService(
                factory,
                box,
                CollectionSettings(backfill=timedelta(days=1), timeouts=Timeouts(10, 10, 20, 2)),
            )
            dispatcher = Dispatcher(
                jobs, collection.run, DispatcherLimits(max_sessions=args.max_sessions)
            )
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

            wall, cpu, done = asyncio.run(go())
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
            _drop(url)
    return {
        "wall": wall,
        "cpu": cpu,
        "succeeded": succeeded,
        "intervals": intervals,
        "finished": float(done),
        "peak": dispatcher.stats.peak_sessions,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--max-sessions", type=int, default=400)
    parser.add_argument("--per-port", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ports = args.meters // args.per_port + 2
        specs = generate_fleet(
            FleetOptions(
                meters=args.meters,
                seed=3,
                transport="wrapper",
                per_port=args.per_port,
                base_port=_free_base(ports),
                history_days=3,
            )
        )
        fleet_file, registry = folder / "fleet.json", folder / "registry.csv"
        save_fleet(fleet_file, specs)
        write_registry(registry, specs)
        log = (folder / "sim.log").open("w")
        sim = subprocess.Popen(
            [sys.executable, "-m", "headend", "simulate", "--fleet", str(fleet_file)],
            stdout=log,
            stderr=log,
        )
        try:
            while "serving" not in (folder / "sim.log").read_text():
                if sim.poll() is not None:
                    raise SystemExit((folder / "sim.log").read_text())
                time.sleep(0.2)
            results = {kind: run(kind, fleet_file, registry, args) for kind in kinds}
        finally:
            sim.terminate()
            sim.wait(30)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
