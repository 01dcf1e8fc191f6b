"""Registry import: 100,000 meters into a fresh store, then the same file again.

Baseline (issue 2): 100,000 rows must import "well under a minute" on SQLite; the figures are
compared with that 60-second budget. Run: ``.venv/bin/python bench/registry_import.py
[--rows N] [--postgresql]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from headend.domain.registry_format import REGISTRY_COLUMNS
from headend.services.registry.imports import import_registry
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.secrets import SecretBox

BUDGET_S = 60.0
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})


def write_fleet(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REGISTRY_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for i in range(rows):
            bus = i // 8
            row = {
                "meter_id": f"26{i:08d}",
                "service_point": f"SP{i:08d}",
                "customer_ref": f"PA13{i:09d}",
                "gateway": f"gw-{bus:06d}",
                "transport": "hdlc" if bus % 4 == 0 else "wrapper",
                "client_sap": "16",
                "server_logical": str(1 + i % 8),
                "device_profile": "three_phase_tou" if i % 10 == 0 else "single_phase_residential",
                "ct_ratio": "1",
                "vt_ratio": "1",
                "install_date": "2026-01-15",
                "status": "active",
                "auth": "none",
            }
            if i % 8 == 0:
                kind = "tcp_serial" if bus % 4 == 0 else "tcp"
                row.update(
                    gateway_kind=kind,
                    gateway_host=f"10.{bus % 250}.{bus // 250 % 250}.1",
                    gateway_port="4059",
                    gateway_max_sessions="1" if kind == "tcp_serial" else "8",
                )
            if row["transport"] == "hdlc":
                row.update(server_physical=str(17 + i % 8), server_logical="1")
            if i % 3 == 1:
                row.update(auth="lls", lls_password=f"{rng.randrange(10**8):08d}")
            elif i % 3 == 2:
                row.update(
                    auth="hls_gmac",
                    hls_encryption_key=f"{rng.getrandbits(128):032x}",
                    hls_authentication_key=f"{rng.getrandbits(128):032x}",
                )
            writer.writerow(row)


def _database(postgresql: bool, folder: Path) -> str:
    if not postgresql:
        return f"sqlite:///{folder / 'bench.db'}"
    admin_url = os.environ.get(
        "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"headend_bench_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    admin_url = os.environ.get(
        "HEADEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fleet = folder / "fleet.csv"
        write_fleet(fleet, args.rows)
        url = _database(args.postgresql, folder)
        migrations.upgrade(url)
        factory = make_session_factory(make_engine(url))
        box = SecretBox("bench-secret-key-0123456789abcdefghijklmnop")
        figures = []
        for label in ("first import", "same file again"):
            started, cpu = time.perf_counter(), time.process_time()
            summary = import_registry(factory, fleet, box, PROFILES)
            wall = time.perf_counter() - started
            figures.append((label, wall, time.process_time() - cpu, summary))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        factory.kw["bind"].dispose()
        if args.postgresql:
            _drop(url)
    backend = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"registry import, {args.rows:,} rows, {backend}")
    print(
        f"{'run':<18}{'wall s':>9}{'cpu s':>9}{'rows/s':>10}{'added':>9}{'unchanged':>11}"
        f"{'vs 60 s budget':>16}"
    )
    for label, wall, cpu, summary in figures:
        print(
            f"{label:<18}{wall:>9.2f}{cpu:>9.2f}{args.rows / wall:>10,.0f}"
            f"{summary.meters_added:>9,}{summary.meters_unchanged:>11,}"
            f"{wall / BUDGET_S:>15.1%}"
        )
    print(f"peak memory {peak_mb:,.0f} MB")
    return 0 if figures[0][1] < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
