"""The store's cost: bytes on disk per interval read, and the landing, VEE and billing rates.

    python bench/store.py [--meters 1000] [--days 31] [--database sqlite|postgresql|both]
                          [--baseline REV] [--json]

Simulated meters (the shipped profiles, one in five three-phase) are served by the simulator
in its own process, with ``history_days`` covering the period. For each database a fresh
store is made (a SQLite file in a temporary folder, or a new PostgreSQL database on the
server of HEADEND_TEST_POSTGRES_URL, dropped afterwards), migrated, and the fleet's
registry imported. Then:

1. Collection. Each meter is read once, through the real collection path (one job per meter
   on JobService, run by the Dispatcher and CollectionService.run): registers and the load
   profile of the last ``--days`` whole local days (the job's ``start`` and ``end``). The
   intervals the meters sent are counted from the reads as the protocol returned them, as
   they reach landing: load-profile rows times the energy channels captured. The store's size
   is taken before the collection and after each step (after landing; after the VEE pass;
   after the rollup pass, which is what ``headend collect`` leaves and the headline figure).
   PostgreSQL: ``VACUUM ANALYZE`` (what autovacuum would do; it truncates empty trailing
   pages and writes the free-space and visibility maps) then ``pg_database_size``; SQLite:
   ``PRAGMA wal_checkpoint(TRUNCATE)``, then the file plus its -wal. Bytes per interval is
   the growth divided by the intervals sent: tables, indexes, TOAST, raw reads, jobs,
   everything. The split by table (PostgreSQL ``pg_total_relation_size``, indexes and TOAST
   included, a table's monthly partitions counted as the table; SQLite the ``dbstat``
   table, indexes counted with their table) is printed at the end, and so are the bytes per
   register read and per raw read: the growth of ``register_readings`` (the versions VEE
   adds included) and of ``raw_reads`` over the rows each holds.
2. Landing rate: the time spent inside ``CollectionService.land_reads`` (the store side of
   landing: one transaction per batch of finished sessions), with the store's calls made in
   one thread so the sum is the time landing held the store; intervals the landing reports
   inserted per second of it. Sessions are not timed.
3. VEE pass rate: ``ValidationService.run_pending`` over everything collected (no rollups),
   intervals landed per second; then the rollup pass (``RollupService.run_pending``), timed
   on its own, as ``headend collect`` ends.
4. Billing: every meter's record for the period read (the ``--days`` days) through
   ``BillingService.records_json`` (the NDJSON stream's pages), records per second.

With ``--baseline REV`` the same file first runs with the code of git revision REV (a
temporary detached worktree, removed after; PYTHONPATH=<worktree>/src, ``--json``; its own
simulator process, of that code too), then with the code it is run with, and prints both with
new/old ratios. At small sizes the bytes include fixed costs (each PostgreSQL table and index
starts with whole pages) and the rates vary by up to a quarter between runs of the same code. The
measurement uses only service-level calls (migrations, registry import, jobs, collection,
VEE, rollups, billing) and no model of the reading tables, so it runs on any layout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from worktrees import UnknownRevision, baseline_tree

from headend.domain.enums import ReadKind
from headend.logs import configure_logging
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.services.billing.period import BillingPeriod
from headend.services.billing.service import BillingService
from headend.services.collection.jobs import JobService
from headend.services.collection.runner import CollectionService
from headend.services.registry.imports import import_registry
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.simulator.fleet import FleetOptions, generate_fleet, save_fleet
from headend.simulator.registry import write_registry
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.secrets import SecretBox

ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
ENERGY_UNITS = frozenset({"Wh", "varh", "kWh", "kvarh"})
FLEET = 715_016
YEAR_OF_INTERVALS = FLEET * 2 * 96 * 365  # two channels at 15 minutes
STEPS = ("landed", "validated", "rolled_up")


class TimedCollection(CollectionService):
    """The collection path as it is, with the store side of landing timed and the intervals
    the meters sent counted as their reads reach it."""

    landing_s = 0.0
    sent = 0
    landed = 0

    def land_reads(self, items: Sequence[Any]) -> list[Any]:
        for _job, read, _at in items:
            profile = read.load_profile
            if profile is not None:
                energy = [c for c in profile.columns if (c.unit or "") in ENERGY_UNITS]
                self.sent += len(profile.rows) * len(energy)
        began = time.perf_counter()
        results = super().land_reads(items)
        self.landing_s += time.perf_counter() - began
        self.landed += sum(r["intervals"] for r in results if isinstance(r, dict))
        return results


def _free_base(size: int) -> int:
    import socket

    base = 31000
    while True:
        socks: list[socket.socket] = []
        try:
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
        return f"sqlite:///{folder / 'store.db'}"
    name = f"headend_store_bench_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        raise SystemExit(
            f"store.py: cannot create a database on {make_url(ADMIN_URL).render_as_string()}"
            f" (HEADEND_TEST_POSTGRES_URL): {str(exc.orig).strip().splitlines()[0]}"
        ) from exc
    finally:
        admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    if url.startswith("sqlite"):
        return
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def size_of(engine: Engine, url: str) -> int:
    """The whole store's size on disk, as the docstring says it is taken."""
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = Path(make_url(url).database or "")
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def tables_of(engine: Engine, url: str) -> dict[str, int]:
    """Bytes per table, its indexes (and on PostgreSQL its TOAST) included."""
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            try:
                rows = conn.execute(
                    text(
                        "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d"
                        " LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
                    )
                ).all()
            except Exception:  # SQLite built without dbstat: no split
                return {}
        else:
            rows = conn.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm')"
                )
            ).all()
    sizes: dict[str, int] = {}
    for name, size in rows:  # a table's monthly partitions count as the table
        table = "interval_blocks" if str(name).startswith("interval_blocks_") else str(name)
        sizes[table] = sizes.get(table, 0) + int(size)
    return sizes


def run(kind: str, registry: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One database: fresh store, collection, VEE, rollups, billing; the figures."""
    today = datetime.combine(datetime.now(TZ).date(), datetime.min.time(), TZ)
    start, end = today - timedelta(days=args.days), today
    with tempfile.TemporaryDirectory() as tmp:
        url = _database(kind, Path(tmp))
        try:
            migrations.upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            box = SecretBox(SECRET)
            import_registry(factory, registry, box, PROFILES)
            jobs = JobService(factory, retry_delay_scale=0.01)
            store_thread = ThreadPoolExecutor(1, thread_name_prefix="store")
            collection = TimedCollection(factory, box, store_executor=store_thread)
            dispatcher = Dispatcher(
                jobs, collection.run, DispatcherLimits(max_sessions=args.max_sessions)
            )
            with engine.connect() as conn:
                pks = [int(pk) for pk in conn.scalars(text("SELECT id FROM meters"))]
            sizes = {"before": size_of(engine, url)}
            tables_before = tables_of(engine, url)
            params = {
                "kinds": [ReadKind.REGISTERS.value, ReadKind.LOAD_PROFILE.value],
                "start": start.astimezone(UTC).isoformat(),
                "end": end.astimezone(UTC).isoformat(),
            }
            ids = jobs.queue(pks, ReadKind.LOAD_PROFILE, params=params, requested_by="bench")

            async def collect() -> bool:
                return await dispatcher.run_until_finished(ids, timeout_s=args.timeout)

            began = time.perf_counter()
            finished = asyncio.run(collect())
            collect_s = time.perf_counter() - began
            dispatcher.close()
            store_thread.shutdown()
            summary = jobs.summary(ids)
            sizes["landed"] = size_of(engine, url)
            began = time.perf_counter()
            checked = ValidationService(factory).run_pending()
            vee_s = time.perf_counter() - began
            sizes["validated"] = size_of(engine, url)
            began = time.perf_counter()
            rolled = RollupService(factory, TZ).run_pending()
            rollup_s = time.perf_counter() - began
            sizes["rolled_up"] = size_of(engine, url)
            billing = BillingService(factory, TZ)
            period = BillingPeriod(
                start.astimezone(UTC), end.astimezone(UTC), f"{args.days} days to {end:%Y-%m-%d}"
            )
            began = time.perf_counter()
            records = sum(1 for _ in billing.records_json(period))
            billing_s = time.perf_counter() - began
            tables = {
                name: size - tables_before.get(name, 0)
                for name, size in tables_of(engine, url).items()
            }
            with engine.connect() as conn:
                counts = {
                    table: int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                    for table in ("register_readings", "raw_reads")
                }
            engine.dispose()
        finally:
            _drop(url)
    return {
        "meters": len(pks),
        "succeeded": summary["succeeded"],
        "finished": finished,
        "collect_s": collect_s,
        "sent": collection.sent,
        "landed": collection.landed,
        "landing_s": collection.landing_s,
        "vee_meters": checked.meters,
        "new_versions": checked.new_versions,
        "vee_s": vee_s,
        "rolled_up": rolled.meters,
        "rollup_s": rollup_s,
        "records": records,
        "billing_s": billing_s,
        "sizes": sizes,
        "tables": tables,
        "counts": counts,
    }


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every database asked for, against one simulator process."""
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ports = args.meters // args.per_port + 2
        specs = generate_fleet(
            FleetOptions(
                meters=args.meters,
                seed=19,
                transport="wrapper",
                per_port=args.per_port,
                base_port=_free_base(ports),
                history_days=args.days + 2,
                timezone=TZ.key,
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
            return {kind: run(kind, registry, args) for kind in kinds}
        finally:
            sim.terminate()
            sim.wait(30)
            log.close()


def baseline(rev: str, argv: list[str]) -> dict[str, dict[str, Any]]:
    """This file run with the code of ``rev`` (a temporary worktree), its figures."""
    try:
        with tempfile.TemporaryDirectory() as tmp, baseline_tree(rev, Path(tmp)) as (tree, _):
            env = {**os.environ, "PYTHONPATH": str(tree / "src")}
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), *argv, "--json"],
                env=env,
                capture_output=True,
                text=True,
            )
    except UnknownRevision as exc:
        raise SystemExit(f"store.py: {exc}") from None
    if done.returncode:
        raise SystemExit(f"store.py: the baseline run failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def figures(r: dict[str, Any]) -> dict[str, float]:
    """The compared figures of one database's run."""
    sent = max(1, r["sent"])
    grown = {step: r["sizes"][step] - r["sizes"]["before"] for step in STEPS}
    return {
        "bytes/interval (landed)": grown["landed"] / sent,
        "bytes/interval (VEE)": grown["validated"] / sent,
        "bytes/interval (all)": grown["rolled_up"] / sent,
        "landing intervals/s": r["landed"] / max(r["landing_s"], 1e-9),
        "VEE intervals/s": r["landed"] / max(r["vee_s"], 1e-9),
        "rollup intervals/s": r["landed"] / max(r["rollup_s"], 1e-9),
        "billing records/s": r["records"] / max(r["billing_s"], 1e-9),
        "bytes/register read": r["tables"].get("register_readings", 0)
        / max(1, r["counts"]["register_readings"]),
        "bytes/raw read": r["tables"].get("raw_reads", 0) / max(1, r["counts"]["raw_reads"]),
    }


def report(new: dict[str, dict[str, Any]], old: dict[str, dict[str, Any]] | None) -> None:
    for kind, r in new.items():
        grown = r["sizes"]["rolled_up"] - r["sizes"]["before"]
        print(
            f"{kind}: {r['meters']:,} meters, {r['succeeded']:,} read"
            f"{'' if r['finished'] else ' (timed out)'} in {r['collect_s']:.1f} s; "
            f"{r['sent']:,} intervals sent, {r['landed']:,} landed, "
            f"{r['new_versions']:,} new versions by VEE, {r['records']:,} billing records; "
            f"store grew {grown / 2**20:,.1f} MiB"
        )
    header = f"{'':<26}" + "".join(f"{k:>14}" for k in new)
    if old is not None:
        header += "".join(f"{k + ' old':>16}{'new/old':>9}" for k in new if k in old)
    print(header)
    mine = {k: figures(r) for k, r in new.items()}
    theirs = {k: figures(r) for k, r in (old or {}).items()}
    for name in next(iter(mine.values())):
        line = f"{name:<26}" + "".join(f"{mine[k][name]:>14,.1f}" for k in mine)
        for k in mine:
            if k in theirs:
                ratio = mine[k][name] / theirs[k][name] if theirs[k][name] else float("nan")
                line += f"{theirs[k][name]:>16,.1f}{ratio:>9.2f}"
        print(line)
    if "postgresql" in mine:
        per = mine["postgresql"]["bytes/interval (all)"]
        print(
            f"a year of {FLEET:,} meters, two channels at 15 minutes "
            f"({YEAR_OF_INTERVALS / 1e9:,.1f} billion intervals) at {per:,.0f} bytes each on "
            f"PostgreSQL: {YEAR_OF_INTERVALS * per / 1e12:,.1f} TB"
        )
    for kind, r in new.items():
        sent = max(1, r["sent"])
        grown = r["sizes"]["rolled_up"] - r["sizes"]["before"]
        top = sorted(r["tables"].items(), key=lambda kv: -kv[1])
        shown = [(name, size) for name, size in top if size > 0][:8]
        rest = grown - sum(size for _, size in shown)
        split = ", ".join(f"{name} {size / sent:,.1f}" for name, size in shown)
        print(
            f"{kind}, growth in bytes per interval sent by table (indexes included): "
            + (f"{split}, the rest {rest / sent:,.1f}" if shown else "not available")
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--max-sessions", type=int, default=200)
    parser.add_argument("--per-port", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if args.meters < 1 or args.days < 1:
        parser.error("--meters and --days must be at least 1")
    configure_logging("WARNING")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    old = None
    if args.baseline:
        passed = [a for a in argv if a != "--json"]
        cut = passed.index("--baseline") if "--baseline" in passed else None
        if cut is not None:
            del passed[cut : cut + 2]
        passed = [a for a in passed if not a.startswith("--baseline=")]
        old = baseline(args.baseline, passed)
    new = measure(args)
    if args.json:  # the baseline's figures, if any, under "old"
        print(json.dumps(new if old is None else {**new, "old": old}))
    else:
        print(
            f"store bench: {args.meters:,} meters x {args.days} days of load profile"
            + (f"; old = {args.baseline}" if old is not None else "")
        )
        report(new, old)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
