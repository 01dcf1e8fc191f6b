"""The API under load: one meter's billing record and the bulk billing stream, on PostgreSQL.

    python bench/api.py [--meters 10000] [--days 31] [--requests 2000] [--rate 150] [--load 8]
                        [--stream-seconds 10] [--rebuild] [--database NAME]

A PostgreSQL store (database ``headend_api_bench``, kept between runs and rebuilt when its
size changes or with --rebuild) holds the meters (one in ten three-phase, the rest
single-phase) with ``--days`` days of load-profile data at each device profile's capture
period (15 minutes; 30 on the three-phase meters) on two channels (import and export), each
interval as read (version 0) and validated (version 1), and a daily register read at local
midnight (tariff registers on the three-phase meters). It is filled inside PostgreSQL
with generate_series, not through the collection path, which bench/collect.py measures: in
the layout of one row per interval version (schema revision 0005), then converted to the
store's interval blocks by the migration that converts any store of that layout (its time
is printed).
Then, as landing and the VEE pass leave it, every meter's day rollups are marked stale from
the first day, and the rollup pass that ends ``headend collect`` builds them; its time is
reported (meters per second). A kept store is
migrated to the newest schema first, and any meter still marked is rolled up.

``headend serve --no-collect`` serves it. This process asks for one meter's billing record
for the month, meter after meter, and then streams every meter's record for the month as
NDJSON (the whole stream, again and again for ``--stream-seconds``; one pass before starts
the billing workers), in three settings: alone; while a second process (``load`` mode) asks
for other meters' records at a steady ``--rate`` per second, each request sent on time
whether or not the ones before have been answered (a billing front end or a portal of many
users); and while the second process keeps ``--load`` requests in flight back to back (a
saturating load: the server is then never idle and each request waits for the ones ahead of
it). It reports p50, p99 and the mean of the one record, the stream's records per second,
and the second process's answered requests per second; and, from /proc, the CPU time a one-
record request and a streamed record cost the serving process, its billing workers and
PostgreSQL with no load from the second process.
Baseline (issue 7): p99 under 20 ms for one record, at least 5,000 records per second for
the stream, under concurrent load from a second process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from cpu import children, postgres_cpu, process_cpu
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from headend.domain.enums import Role
from headend.services.access.audit import Actor
from headend.services.access.keys import KeyService
from headend.services.validation.rollups import RollupService
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.repositories.intervals import IntervalRepository

ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "headend_api_bench"  # --database names another
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BENCH = Actor("bench")  # who the audit trail names for the key the bench makes
P99_GOAL_MS = 20.0
STREAM_GOAL = 5000.0
BATCH = 250  # meters per INSERT while building
ROW_LAYOUT = "0005_meters_firmware"  # the last revision with one row per interval version


def _url() -> str:
    return make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)


def _use_database(name: str) -> None:
    global DB_NAME
    DB_NAME = name


def _spec_of(args: argparse.Namespace, first_day: date) -> str:
    return f"meters={args.meters} days={args.days} from={first_day} periods=profile"


def build(args: argparse.Namespace, first_day: date) -> float:
    """Create and fill the bench store unless it holds this size already; seconds spent."""
    spec = _spec_of(args, first_day)
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
    if exists and not args.rebuild:
        engine = create_engine(_url())
        with engine.connect() as conn:
            try:
                stored = conn.scalar(text("SELECT spec FROM bench_spec"))
            except Exception:
                stored = None
        engine.dispose()
        if stored == spec:
            admin.dispose()
            migrations.upgrade(_url())  # a store built before a migration gets it now
            return 0.0
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    began = time.perf_counter()
    url = _url()
    # filled in SQL in the layout of one row per interval version, then converted to the
    # store's packed blocks by the migration that converts any store of that layout
    migrations.upgrade(url, ROW_LAYOUT)
    engine = create_engine(url)
    start = datetime.combine(first_day, datetime.min.time(), TZ)
    end = start + timedelta(days=args.days)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gateways (name, kind, host, port, max_sessions, created_at,"
                " updated_at) SELECT 'gw-' || lpad(g::text, 4, '0'), 'tcp', '10.0.0.1',"
                " 4059 + g, 8, now(), now() "
                "FROM generate_series(1, :n) g"
            ),
            {"n": args.meters // 100 + 1},
        )
        conn.execute(
            text(
                "INSERT INTO meters (meter_id, gateway_id, transport, client_sap, server_logical,"
                " auth, device_profile, ct_ratio, vt_ratio, status, invocation_counter,"
                " created_at, updated_at) "
                "SELECT 'EM' || lpad(m::text, 8, '0'), m / 100 + 1, 'wrapper', 16, 1, 'none',"
                " CASE WHEN m % 10 = 0 THEN 'three_phase_tou' ELSE 'single_phase_residential'"
                " END, CASE WHEN m % 10 = 0 THEN 40 ELSE 1 END, 1, 'active', 0, now(), now() "
                "FROM generate_series(0, :n - 1) m"
            ),
            {"n": args.meters},
        )
    # intervals: a household shape with noise, as read (v0, RAW) and validated (v1, VALID)
    intervals = text(
        """
        INSERT INTO interval_readings (meter_id, channel, interval_end, version, value,
            cumulative, quality, flags, status, created_by, created_at)
        SELECT s.meter_id, s.channel, s.interval_end, v.version, s.value,
               1000000000 + sum(s.value) OVER (PARTITION BY s.meter_id, s.channel
                                               ORDER BY s.interval_end),
               v.quality, 0, 0, v.created_by, now()
        FROM (
            SELECT m.id AS meter_id, c.channel, t AS interval_end,
                   CASE WHEN c.channel = '1.0.2.8.0.255' THEN 0 ELSE
                   (20000 + 40000 * (1 + sin(extract(epoch FROM t) / 13751.0))
                    + (hashtext(m.id::text || t::text) & 65535))::bigint * 1 END AS value
            FROM meters m
            CROSS JOIN (VALUES ('1.0.1.8.0.255'), ('1.0.2.8.0.255')) c(channel)
            CROSS JOIN LATERAL generate_series(:start, :end, CASE m.device_profile
                WHEN 'three_phase_tou' THEN interval '30 minutes'
                ELSE interval '15 minutes' END) t
            WHERE m.id > :lo AND m.id <= :hi
        ) s
        CROSS JOIN (VALUES (0, 'RAW', 'meter'), (1, 'VALID', 'vee:default')) v(version, quality,
                                                                               created_by)
        """
    )
    registers = text(
        """
        INSERT INTO register_readings (meter_id, obis, read_at, version, value, unit,
            quality, flags, created_by, created_at)
        SELECT i.meter_id, r.obis, i.interval_end, 0,
               CASE r.obis WHEN '1.0.1.8.1.255' THEN i.cumulative / 2
                           WHEN '1.0.1.8.2.255' THEN i.cumulative / 5
                           WHEN '1.0.1.8.3.255' THEN i.cumulative - i.cumulative / 2
                                                     - i.cumulative / 5
                           ELSE i.cumulative END,
               'kWh', 'RAW', 0, 'meter', now()
        FROM interval_readings i
        JOIN meters m ON m.id = i.meter_id
        CROSS JOIN (VALUES ('1.0.1.8.0.255'), ('1.0.1.8.1.255'), ('1.0.1.8.2.255'),
                           ('1.0.1.8.3.255')) r(obis)
        WHERE i.meter_id > :lo AND i.meter_id <= :hi AND i.version = 1
          AND i.channel = '1.0.1.8.0.255'
          AND extract(epoch FROM i.interval_end - :start) :: bigint % 86400 = 0
          AND (r.obis = '1.0.1.8.0.255' OR m.device_profile = 'three_phase_tou')
        """
    )
    for lo in range(0, args.meters, BATCH):
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            bounds = {"lo": lo, "hi": lo + BATCH, "start": start, "end": end}
            conn.execute(intervals, bounds)
            conn.execute(registers, bounds)
        done = min(lo + BATCH, args.meters)
        print(f"  built {done:,} of {args.meters:,} meters", end="\r", file=sys.stderr)
    engine.dispose()
    converting = time.perf_counter()
    migrations.upgrade(url)
    print(f"  converted to interval blocks in {time.perf_counter() - converting:.0f} s",
          file=sys.stderr)  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_spec (spec text)"))
        conn.execute(text("INSERT INTO bench_spec VALUES (:s)"), {"s": spec})
        # as landing would have: every meter's day rollups stale from the first day
        conn.execute(text("UPDATE meters SET rollup_from = :start"), {"start": start})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - began


def _interval_count(url: str, first_day: date, days: int) -> int:
    """Interval versions stored in the period (as read and validated)."""
    engine = make_engine(url)
    store = make_session_factory(engine)
    start = datetime.combine(first_day, datetime.min.time(), TZ)
    try:
        with store() as session:
            pks = list(session.scalars(text("SELECT id FROM meters")))
            repo = IntervalRepository(session)
            return sum(
                len(c)
                for _, _, c in repo.columns(
                    pks, None, start - timedelta(days=1), start + timedelta(days=days + 1)
                )
            )
    finally:
        engine.dispose()


def roll_up(url: str) -> tuple[int, float]:
    """The rollup pass over every marked meter, as ``headend collect`` ends: (meters,
    seconds)."""
    engine = make_engine(url)
    began = time.perf_counter()
    summary = RollupService(make_session_factory(engine), TZ).run_pending()
    took = time.perf_counter() - began
    if summary.meters:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE interval_days"))
    engine.dispose()
    return summary.meters, took


def server_cpu(pid: int) -> tuple[float, float, float]:
    """CPU seconds so far of the serving process, of its billing workers and of PostgreSQL."""
    workers = 0.0
    for child in children(pid):
        try:
            workers += process_cpu(child)
        except (OSError, ValueError):
            continue
    return process_cpu(pid), workers, postgres_cpu()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_record_latencies(url: str, key: str, meters: int, n: int, period: str) -> list[float]:
    rng = random.Random(7)
    took: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(50):  # warm the server's caches and connection pool
            client.get(f"/api/v1/meters/EM{rng.randrange(meters):08}/billing?period={period}")
        for _ in range(n):
            meter = f"EM{rng.randrange(meters):08}"
            began = time.perf_counter()
            response = client.get(f"/api/v1/meters/{meter}/billing?period={period}")
            took.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{meter}: {response.status_code} {response.text}")
    return took


def stream_rate(url: str, key: str, period: str, seconds: float) -> tuple[int, float]:
    """Records streamed and the time taken: the whole stream, again and again until
    ``seconds`` have passed, so that one figure does not rest on a pass shorter than a second."""
    began = time.perf_counter()
    count = 0
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        with httpx.stream(
            "GET", f"{url}/api/v1/billing?period={period}", headers=headers, timeout=600
        ) as response:
            for line in response.iter_lines():
                if line:
                    count += 1
        took = time.perf_counter() - began
        if took >= seconds:
            return count, took


async def _load(
    url: str, key: str, meters: int, concurrency: int, period: str, rate: float
) -> None:
    """The second process, until told to stop: with ``rate`` > 0, one request every
    1/``rate`` seconds (at most 256 waiting); else ``concurrency`` requests back to back."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    done = dropped = 0
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, limits=limits
    ) as client:
        rng = random.Random(11)

        async def one() -> None:
            nonlocal done, dropped
            meter = f"EM{rng.randrange(meters):08}"
            try:
                await client.get(f"/api/v1/meters/{meter}/billing?period={period}")
            except httpx.TransportError:
                dropped += 1  # e.g. a kept-alive connection the server closed as it was reused
            else:
                done += 1

        async def worker() -> None:
            while not stop.is_set():
                await one()

        began = time.perf_counter()
        if rate > 0:
            waiting: set[asyncio.Task[None]] = set()
            due = began
            while not stop.is_set():
                if len(waiting) < 256:
                    task = asyncio.create_task(one())
                    waiting.add(task)
                    task.add_done_callback(waiting.discard)
                due += 1.0 / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await asyncio.gather(*waiting, return_exceptions=True)
        else:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    answered = done / (time.perf_counter() - began)
    print(json.dumps({"requests": done, "per_second": answered, "dropped": dropped}), flush=True)


def under_load(
    url: str, key: str, args: argparse.Namespace, period: str, rate: float
) -> tuple[list[float], tuple[int, float], float]:
    """One-record latencies, the stream, and the load's answered requests per second, while
    the second process loads the server (at ``rate`` per second, or back to back)."""
    load = subprocess.Popen(
        [sys.executable, __file__, "load", url, key, str(args.meters), str(args.load), period,
         str(rate)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        took = one_record_latencies(url, key, args.meters, args.requests, period)
        stream = stream_rate(url, key, period, args.stream_seconds)
    finally:
        load.send_signal(signal.SIGTERM)
        out, _ = load.communicate(timeout=60)
    load_said = json.loads(out.strip().splitlines()[-1])
    if load_said["dropped"]:
        print(f"  {load_said['dropped']} load requests lost their connection", file=sys.stderr)
    return took, stream, load_said["per_second"]


def main(argv: list[str]) -> int:
    if argv and argv[0] == "load":
        url, key, meters, concurrency, period, per_second = argv[1:7]
        asyncio.run(_load(url, key, int(meters), int(concurrency), period, float(per_second)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--rate", type=float, default=150.0, help="the steady load's requests per second"
    )
    parser.add_argument(
        "--load", type=int, default=8, help="the saturating load's requests in flight"
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=10.0,
        help="how long each setting streams the month (the whole stream, repeated)",
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--database", default=DB_NAME, help="the PostgreSQL database to use")
    args = parser.parse_args(argv)
    _use_database(args.database)
    first_day = date(2026, 10, 1)
    period = first_day.strftime("%Y-%m")
    built = build(args, first_day)
    if built:
        print(f"built the store in {built:.0f} s", file=sys.stderr)
    rolled, rolling = roll_up(_url())
    if rolled:
        print(
            f"rollup pass: {rolled:,} meters in {rolling:.1f} s = {rolled / rolling:,.0f} meters/s",
            file=sys.stderr,
        )
    intervals = _interval_count(_url(), first_day, args.days)
    store = make_session_factory(make_engine(_url()))
    keys = KeyService(store)
    name = f"bench-{os.getpid()}"
    _, key = keys.create(name, Role.BILLING, actor=BENCH)
    port = 24300 + os.getpid() % 500
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HEADEND_DATABASE_URL": _url(),
        "HEADEND_SECRET_KEY": SECRET,
        "HEADEND_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp, Path(tmp, "serve.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "headend", "serve", "--no-collect", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(Path(tmp, "serve.log").read_text()) from None
                    time.sleep(0.2)
            stream_rate(url, key, period, 0.0)  # starts the billing workers, warms the pages
            before = server_cpu(server.pid)
            alone = one_record_latencies(url, key, args.meters, args.requests, period)
            between = server_cpu(server.pid)
            stream = stream_rate(url, key, period, args.stream_seconds)
            after = server_cpu(server.pid)
            per_record = [
                1000 * (b - a) / (args.requests + 50) for a, b in zip(before, between, strict=True)
            ]
            per_streamed = [1000 * (b - a) / stream[0] for a, b in zip(between, after, strict=True)]
            results: list[tuple[str, list[float], tuple[int, float], float | None]] = [
                ("alone", alone, stream, None)
            ]
            steady = under_load(url, key, args, period, args.rate)
            results.append((f"{args.rate:.0f}/s steady from another process", *steady))
            saturating = under_load(url, key, args, period, 0.0)
            results.append((f"{args.load} in flight back to back", *saturating))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)
            keys.revoke(name, actor=BENCH)
    print(
        f"API bench: {args.meters:,} meters, {args.days} days of 15-minute data (30-minute on "
        "the three-phase meters) "
        f"({intervals:,} interval rows, two versions), PostgreSQL, period {period}"
    )
    print(
        f"{'load':<38}{'p50 ms':>8}{'p99 ms':>8}{'mean ms':>9}{'p99/goal':>9}"
        f"{'stream rec/s':>14}{'/goal':>7}{'load req/s':>12}"
    )
    for label, took, (records, seconds), answered in results:
        p99 = _percentile(took, 0.99)
        rate = records / seconds
        print(
            f"{label:<38}{statistics.median(took):>8.1f}{p99:>8.1f}"
            f"{statistics.fmean(took):>9.1f}{p99 / P99_GOAL_MS:>9.0%}"
            f"{rate:>14,.0f}{rate / STREAM_GOAL:>7.2f}"
            + (f"{answered:>12,.0f}" if answered is not None else f"{'-':>12}")
        )
    print(f"goals: p99 under {P99_GOAL_MS:.0f} ms, stream at least {STREAM_GOAL:,.0f} records/s")
    print(
        "CPU ms alone, serving process / billing workers / PostgreSQL: one record "
        + " / ".join(f"{ms:.3f}" for ms in per_record)
        + ", a streamed record "
        + " / ".join(f"{ms:.3f}" for ms in per_streamed)
    )
    if rolled:
        rate = rolled / rolling
        print(f"rollup pass: {rolled:,} meters in {rolling:.1f} s = {rate:,.0f} meters/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
