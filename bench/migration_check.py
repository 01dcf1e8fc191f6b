"""The interval-data migration keeps the API's answers: the same store served before and after.

    python bench/migration_check.py [--meters 1000] [--days 31] [--baseline 022c9f8] [--keep]

Run it with the code to check, from its checkout (``PYTHONPATH=<checkout>/src``); the baseline
REV is a git revision of the same repository whose code and schema come before the migration
(by default 022c9f8, at revision 0005_meters_firmware, intervals one row per version in
``interval_readings``). In a temporary folder:

1. The baseline's code, in a temporary detached worktree of REV (``git worktree add
   --detach``; its processes run with PYTHONPATH=<worktree>/src and their working directory
   in it), builds the API bench's store (``bench/api.py`` of REV: its ``build`` and
   ``roll_up`` functions, called from a subprocess, as ``python bench/api.py`` would before
   measuring) in the PostgreSQL database ``headend_migration_check`` on the server of
   HEADEND_TEST_POSTGRES_URL, created afresh: ``--meters`` meters (one in ten three-phase at
   30 minutes, the rest single-phase at 15), ``--days`` days of two channels from
   2026-10-01 (local midnight, Asia/Ho_Chi_Minh), each interval as read (version 0, RAW)
   and validated (version 1, VALID), daily register reads, and the day rollups. It also
   makes one API key (role billing) with ``KeyService``; the key's row outlives the
   migration and serves both sides.
2. ``headend serve --no-collect`` of REV (on 127.0.0.1, a free port) serves it, and these
   answers are saved, each body as sent, in ``before/``: the billing records of the period
   (``GET /api/v1/billing`` with ``start`` and ``end`` at the period's local midnights) as
   NDJSON and as CSV, the same NDJSON for the period less six hours at each end (the records
   then read part-days from the intervals rather than from the day rollups), the NEM12
   export of the period for every meter (``GET /api/v1/billing/nem12``), and every meter's
   ``GET /api/v1/meters/{id}/intervals`` with ``version=raw`` and with ``version=current``
   from a day before the period to a day after it (every stored interval, the one ending at
   the first midnight included). Over 2,000 meters, the intervals of 500 of them only,
   evenly spaced in meter-id order, the first and last included. The status and the
   Content-Type and Content-Disposition headers are kept too. The server is then stopped.
3. The code this file is run with migrates the database to head
   (``headend.store.migrations.upgrade``, in a subprocess with PYTHONPATH=<this
   checkout>/src), timed; the rate is the rows of ``interval_readings`` (interval versions)
   before the migration per second of it. Then the rollup pass that ``headend serve`` and
   ``headend collect`` run (timed on its own) rebuilds the day rollups and day ends the
   migration cleared, so that the answers after are read as a running store reads them. The
   database's size is taken before the migration and after the rollup pass: ``VACUUM
   ANALYZE`` (what autovacuum would do; not ``VACUUM FULL``) then ``pg_database_size``.
4. ``headend serve --no-collect`` of this checkout serves the migrated store (working
   directory a temporary folder), and the same answers are saved in ``after/``.
5. Each answer is compared byte for byte with its counterpart, except that in the NEM12
   file the creation date-time of the 100 record (its third field, DateTime; the time the
   file was written) is blanked on both sides. One line per output says identical or
   gives the first differing line (number, both lines; a line longer than 200 characters
   is shown around its first differing character). The per-meter intervals are
   summarised in one line per version, followed by one line per meter that differs. An
   answer whose status is not 200 on either side counts as differing.

The database, the worktree and the temporary folder are removed at the end unless ``--keep``
(their paths are printed). Exit status 0 when every answer is identical, 1 when any
differs, 2 when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from worktrees import UnknownRevision, baseline_tree

TOP = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "headend_migration_check"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"  # bench/api.py's
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST_DAY = date(2026, 10, 1)  # bench/api.py's
KEY_NAME = "migration-check"
SAMPLE_ABOVE, SAMPLE = 2000, 500
LONG_LINE = 200
HEADERS = ("content-type", "content-disposition")

# Run in the baseline's worktree: bench/api.py's build and rollup pass, then an API key.
BUILD = """
import argparse, json, sys
from datetime import date
sys.path.insert(0, "bench")
import api
import headend
from headend.domain.enums import Role
from headend.services.access.keys import KeyService
from headend.store.engine import make_engine, make_session_factory
name, meters, days, first, key_name = sys.argv[1:6]
api._use_database(name)
args = argparse.Namespace(meters=int(meters), days=int(days), rebuild=True)
built = api.build(args, date.fromisoformat(first))
rolled, rolling = api.roll_up(api._url())
engine = make_engine(api._url())
_, key = KeyService(make_session_factory(engine)).create(key_name, Role.BILLING, actor=api.BENCH)
engine.dispose()
print(json.dumps({"built_s": built, "rolled": rolled, "rollup_s": rolling, "key": key,
                  "headend": headend.__file__}))
"""
# Run with this checkout's code: the migration to head, timed; then the rollup pass that
# `headend serve` and `headend collect` run, rebuilding the rollups the migration cleared.
MIGRATE = """
import json, sys, time
from zoneinfo import ZoneInfo
import headend
from headend.services.validation.rollups import RollupService
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
began = time.perf_counter()
migrations.upgrade(sys.argv[1])
took = time.perf_counter() - began
began = time.perf_counter()
engine = make_engine(sys.argv[1])
rolled = RollupService(make_session_factory(engine), ZoneInfo(sys.argv[2])).run_pending()
rolling = time.perf_counter() - began
engine.dispose()
print(json.dumps({"seconds": took, "revision": migrations.current_revision(sys.argv[1]),
                  "headend": headend.__file__, "rolled": rolled.meters, "rollup_s": rolling}))
"""


class StepFailed(Exception):
    """A step could not be carried out; the message says which and why."""


@dataclass(frozen=True)
class Output:
    """One answer of the API: where it is saved, what it is, how it is asked for."""

    file: str  # relative to before/ and after/
    label: str
    path: str
    params: dict[str, str]
    group: str | None = None  # the per-meter answers are summarised by group


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _url() -> str:
    return make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)


def _admin_execute(statement: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    except OperationalError as exc:
        raise StepFailed(
            f"cannot reach PostgreSQL at {make_url(ADMIN_URL).render_as_string()}"
            f" (HEADEND_TEST_POSTGRES_URL): {str(exc.orig).strip().splitlines()[0]}"
        ) from exc
    finally:
        admin.dispose()


def _drop_database() -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def size_of(url: str) -> int:
    """The database's size after ``VACUUM ANALYZE`` (not ``VACUUM FULL``)."""
    engine = create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    finally:
        engine.dispose()


def _env(src: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any HEADEND_ setting but the test server's, with
    PYTHONPATH=``src``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEADEND_") or k == "HEADEND_TEST_POSTGRES_URL"
    }
    return {**env, "PYTHONPATH": str(src), **extra}


def _run_python(code: str, args: list[str], src: Path, cwd: Path, what: str) -> dict[str, Any]:
    """``python -c code args`` with the code under ``src``; its last line of output, JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=_env(src),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise StepFailed(f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = Path(result["headend"]).resolve()
    if not loaded.is_relative_to(src.resolve()):
        raise StepFailed(f"{what}: headend was imported from {loaded}, not from {src}")
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(src: Path, cwd: Path, log: Path) -> Iterator[str]:
    """``headend serve --no-collect`` with the code under ``src`` on the check's database;
    its base URL. Stopped (SIGINT) on leaving."""
    port = _free_port()
    env = _env(
        src,
        HEADEND_DATABASE_URL=_url(),
        HEADEND_SECRET_KEY=SECRET,
        HEADEND_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "headend", "serve", "--no-collect"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise StepFailed(
                        f"the server ({src}) did not start:\n{log.read_text().strip()}"
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the server's own group: its workers
            server.wait(10)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def outputs(meters: list[str], days: int) -> list[Output]:
    """Every answer compared, in the order they are fetched."""
    start = datetime.combine(FIRST_DAY, datetime.min.time(), TZ)
    end = start + timedelta(days=days)
    period = {"start": _iso(start), "end": _iso(end)}
    inner = {"start": _iso(start + timedelta(hours=6)), "end": _iso(end - timedelta(hours=6))}
    found = [
        Output("billing.ndjson", "billing records, NDJSON", "/api/v1/billing", period),
        Output(
            "billing.csv", "billing records, CSV", "/api/v1/billing", {**period, "format": "csv"}
        ),
        Output(
            "billing-inner.ndjson",
            "billing records, NDJSON, period less 6 h at each end",
            "/api/v1/billing",
            inner,
        ),
        Output("nem12.csv", "NEM12 export", "/api/v1/billing/nem12", period),
    ]
    if len(meters) > SAMPLE_ABOVE:
        step = (len(meters) - 1) / (SAMPLE - 1)
        meters = [meters[round(i * step)] for i in range(SAMPLE)]
    span = {"start": _iso(start - timedelta(days=1)), "end": _iso(end + timedelta(days=1))}
    for version in ("raw", "current"):
        for meter in meters:
            found.append(
                Output(
                    f"intervals/{meter}.{version}.json",
                    f"intervals of {meter}, version={version}",
                    f"/api/v1/meters/{meter}/intervals",
                    {**span, "version": version},
                    group=f"intervals, version={version}",
                )
            )
    return found


def fetch(base: str, key: str, wanted: list[Output], folder: Path) -> float:
    """Every answer saved under ``folder`` as sent (and ``manifest.json``: status and
    headers of each); seconds taken."""
    (folder / "intervals").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, str | int]] = {}
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=1800) as client:
        for n, out in enumerate(wanted, 1):
            with (
                client.stream("GET", out.path, params=out.params) as response,
                (folder / out.file).open("wb") as saved,
            ):
                for chunk in response.iter_raw():
                    saved.write(chunk)
                manifest[out.file] = {
                    "status": response.status_code,
                    **{h: response.headers.get(h, "") for h in HEADERS},
                }
            if response.status_code != 200:
                body = (folder / out.file).read_bytes()[:300].decode("utf-8", "replace")
                _say(f"  {folder.name}: {out.label}: status {response.status_code}: {body}")
            if n % 100 == 0 or out.group is None:
                _say(f"  {folder.name}: {n:,} of {len(wanted):,} answers")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return time.perf_counter() - began


def _nem12_normalised(lines: list[bytes]) -> list[bytes]:
    """The lines with the 100 record's DateTime (its third field) blanked."""
    out = []
    for line in lines:
        if line.startswith(b"100,"):
            fields = line.split(b",")
            if len(fields) > 2:
                fields[2] = b""
            line = b",".join(fields)
        out.append(line)
    return out


def _shown(line: bytes | None, at: int) -> str:
    if line is None:
        return "<end of file>"
    body = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    if len(body) <= LONG_LINE:
        return body
    lo = body.rfind("{", max(0, at - 150), at + 1)  # a JSON object's start, if near
    lo = lo if lo >= 0 else max(0, at - 80)
    hi = min(len(body), lo + 200)
    return f"(characters {lo + 1}-{hi} of {len(body):,}) {body[lo:hi]}"


def first_difference(before: Path, after: Path, nem12: bool = False) -> str | None:
    """None when the files are the same (NEM12: but for the 100 record's DateTime), else
    the first differing line: its number and both lines."""
    old, new = before.read_bytes(), after.read_bytes()
    if old == new:
        return None
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if nem12:
        old_lines, new_lines = _nem12_normalised(old_lines), _nem12_normalised(new_lines)
    for number in range(max(len(old_lines), len(new_lines))):
        a = old_lines[number] if number < len(old_lines) else None
        b = new_lines[number] if number < len(new_lines) else None
        if a != b:
            at = 0
            if a is not None and b is not None:
                at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), 0)
                at = at or min(len(a), len(b))
            return (
                f"line {number + 1}:\n    {before}: {_shown(a, at)}\n    {after}: {_shown(b, at)}"
            )
    return None  # NEM12 differing only in the blanked field


def compare(wanted: list[Output], before: Path, after: Path) -> bool:
    """One line per answer (per-meter answers: one per group and one per differing meter);
    True when all are identical."""
    old = json.loads((before / "manifest.json").read_text())
    new = json.loads((after / "manifest.json").read_text())
    same = True
    groups: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for out in wanted:
        found = first_difference(before / out.file, after / out.file, out.file == "nem12.csv")
        if old[out.file] != new[out.file]:
            meta = f"status and headers {old[out.file]} before, {new[out.file]} after"
            found = meta if found is None else f"{meta}; {found}"
        elif old[out.file]["status"] != 200:
            found = f"status {old[out.file]['status']} on both sides: no answer to compare"
        if found is not None:
            same = False
        if out.group is None:
            size = (before / out.file).stat().st_size
            where = f"GET {out.path}?" + "&".join(f"{k}={v}" for k, v in out.params.items())
            if found is None:
                print(f"{out.label}: identical ({where}; {size:,} bytes)")
            else:
                print(f"{out.label}: DIFFERS ({where}) at {found}")
            continue
        counts[out.group] = counts.get(out.group, 0) + 1
        if found is not None:
            groups.setdefault(out.group, []).append(f"  {out.label}: DIFFERS at {found}")
    for group, count in counts.items():
        differing = groups.get(group, [])
        if differing:
            print(f"{group}, {count:,} meters: {len(differing):,} differ")
            for line in differing:
                print(line)
        else:
            print(f"{group}, {count:,} meters: identical")
    return same


def check(args: argparse.Namespace, folder: Path) -> bool:
    """The steps of the docstring; True when every answer is identical."""
    url = _url()
    before, after = folder / "before", folder / "after"
    with baseline_tree(args.baseline, folder, args.keep) as (tree, commit):
        if not (tree / "bench" / "api.py").exists():
            raise StepFailed(f"{args.baseline} has no bench/api.py to build the store with")
        _say(f"building the API bench's store ({args.meters:,} meters x {args.days} days) in")
        _say(f"  {DB_NAME} with {commit[:10]}'s code ({tree})")
        built = _run_python(
            BUILD,
            [DB_NAME, str(args.meters), str(args.days), FIRST_DAY.isoformat(), KEY_NAME],
            tree / "src",
            tree,
            "building the store with the baseline's bench/api.py",
        )
        engine = create_engine(url)
        with engine.connect() as conn:
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
            meters = [str(m) for m in conn.scalars(text("SELECT meter_id FROM meters ORDER BY 1"))]
        engine.dispose()
        build_s, rollup_s = float(built["built_s"]), float(built["rollup_s"])
        _say(f"  built in {build_s:.0f} s, rollup pass {rollup_s:.1f} s; schema {revision}")
        wanted = outputs(meters, args.days)
        with serving(tree / "src", tree, folder / "serve-before.log") as base:
            took = fetch(base, str(built["key"]), wanted, before)
        _say(f"  before/: {len(wanted):,} answers in {took:.0f} s")
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = int(conn.scalar(text("SELECT count(*) FROM interval_readings")) or 0)
        intervals = int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT DISTINCT meter_id, channel, interval_end"
                    " FROM interval_readings) s"
                )
            )
            or 0
        )
    engine.dispose()
    size_before = size_of(url)
    _say(f"migrating to head with the code of {TOP / 'src'}")
    migrated = _run_python(MIGRATE, [url, TZ.key], TOP / "src", folder, "the migration to head")
    seconds = float(migrated["seconds"])
    _say(
        f"  migrated in {seconds:.1f} s; rollup pass after it: {migrated['rolled']:,} meters in"
        f" {float(migrated['rollup_s']):.1f} s"
    )
    size_after = size_of(url)
    with serving(TOP / "src", folder, folder / "serve-after.log") as base:
        took = fetch(base, str(built["key"]), wanted, after)
    _say(f"  after/: {len(wanted):,} answers in {took:.0f} s")
    print(
        f"migration check: {args.meters:,} meters x {args.days} days (the API bench's store),"
        f" built and served by {args.baseline} ({commit[:10]}), migrated and served by"
        f" {TOP}"
    )
    same = compare(wanted, before, after)
    print(
        f"migration {revision} -> {migrated['revision']}: {rows:,} interval rows"
        f" ({intervals:,} intervals, {rows / max(intervals, 1):.2f} versions each) in"
        f" {seconds:.1f} s = {rows / seconds:,.0f} rows/s ({intervals / seconds:,.0f}"
        " intervals/s)"
    )
    print(
        f"database size (VACUUM ANALYZE, not VACUUM FULL, then pg_database_size): before"
        f" {size_before / 2**20:,.1f} MiB, after {size_after / 2**20:,.1f} MiB"
        f" ({size_after / size_before:.2f}x; {size_before / max(rows, 1):,.1f} ->"
        f" {size_after / max(rows, 1):,.1f} bytes per interval row)"
    )
    print("all answers identical" if same else "SOME ANSWERS DIFFER")
    return same


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--baseline", metavar="REV", default="022c9f8")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database, the worktree and the answers"
    )
    args = parser.parse_args(argv)
    if args.meters < 1 or not 1 <= args.days <= 60:
        parser.error("--meters must be at least 1 and --days 1 to 60")
    folder = Path(tempfile.mkdtemp(prefix="migration_check_"))
    try:
        same = check(args, folder)
    except (StepFailed, UnknownRevision) as exc:
        print(f"migration_check.py: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            _say(
                f"kept: database {DB_NAME}, the answers and logs in {folder}, the worktree"
                f" {folder / 'baseline'} (git worktree remove --force {folder / 'baseline'})"
            )
        else:
            try:
                _drop_database()
            except StepFailed as exc:
                _say(f"migration_check.py: could not drop {DB_NAME}: {exc}")
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
