"""``headend simulate``: generating fleets, printing the truth, serving until told to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dlms_cosem.connection import DlmsConnection
from dlms_cosem.security import NoSecurityAuthentication

from headend.simulator.devices import meter_data
from headend.simulator.fleet import load_fleet
from headend.simulator.registry import COLUMNS
from tests.ports import free_ports
from tests.simulator.transport_support import read_wrapped, wrap

HEADEND = [sys.executable, "-m", "headend"]
pytestmark = pytest.mark.timeout(90)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HEADEND, *args], capture_output=True, text=True, timeout=60, env=env)


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [*HEADEND, "simulate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving"), (line, process.stderr and process.stderr.read())
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def associates(port: int, logical: int = 1) -> bool:
    aarq = DlmsConnection(
        client_system_title=b"TESTTEST", authentication=NoSecurityAuthentication()
    ).get_aarq()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(wrap(aarq.to_bytes(), destination=logical))
        _source, _destination, aare = read_wrapped(sock)
    return aare[0] == 0x61 and b"\xa2\x03\x02\x01\x00" in aare  # AARE, result accepted


def test_a_generated_fleet_and_its_registry_are_written_without_serving(tmp_path: Path) -> None:
    fleet, registry = tmp_path / "fleet.json", tmp_path / "registry.csv"
    result = run(
        "simulate", "--meters", "8", "--transport", "mixed", "--auth", "mixed",
        "--faults", "slow=1,outage=25%", "--seed", "3", "--no-serve",
        "--fleet-out", str(fleet), "--registry-out", str(registry), "--pty-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    specs = load_fleet(fleet)
    assert len(specs) == 8 and sum(1 for s in specs if s.faults) == 3
    lines = registry.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 9


def test_a_bad_fault_text_is_refused_with_a_clear_message_and_exit_2() -> None:
    result = run("simulate", "--meters", "3", "--faults", "fire=1", "--no-serve")
    assert result.returncode == 2
    assert "unknown fault 'fire'" in result.stderr


def test_expect_prints_the_meters_truth_as_json(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.json"
    run("simulate", "--meters", "2", "--no-serve", "--fleet-out", str(fleet))
    spec = load_fleet(fleet)[1]
    result = run(
        "simulate", "--fleet", str(fleet), "--expect", spec.meter_id,
        "--start", "2026-11-01T00:00:00+07:00", "--end", "2026-11-02T00:00:00+07:00", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    from datetime import datetime

    truth = meter_data(spec).truth(
        datetime.fromisoformat("2026-11-01T00:00:00+07:00"),
        datetime.fromisoformat("2026-11-02T00:00:00+07:00"),
    )
    assert printed == json.loads(truth.to_json())
    assert printed["meter_id"] == spec.meter_id and "A+" in printed["consumption"]


def test_the_registry_of_a_fleet_is_accepted_by_meters_import(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    registry = tmp_path / "registry.csv"
    made = run(
        "simulate", "--meters", "10", "--transport", "mixed", "--auth", "mixed", "--bus-size",
        "2", "--no-serve", "--registry-out", str(registry), "--pty-dir", str(tmp_path),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    imported = run("meters", "import", str(registry), "--json", env=cli_env)
    try:
        assert imported.returncode == 0, imported.stderr
        assert json.loads(imported.stdout)["meters_added"] == 10
    finally:
        from sqlalchemy import create_engine

        from headend.store.base import Base

        engine = create_engine(cli_env["HEADEND_DATABASE_URL"])
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        engine.dispose()


def test_serving_prints_where_the_meters_are_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    base = free_ports(4)
    args = ["--meters", "6", "--transport", "mixed", "--bus-size", "2", "--base-port", str(base),
            "--pty-dir", str(tmp_path)]  # fmt: skip
    with serving(*args) as (process, line):
        assert f"wrapper 3 meters on 127.0.0.1:{base}-{base + 2}" in line
        assert f"hdlc 2 meters on 127.0.0.1:{base + 3};" in line
        assert f"serial 1 meter on {tmp_path}/line-0000" in line
        assert associates(base + 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert not os.path.lexists(tmp_path / "line-0000")


@pytest.mark.slow
def test_one_process_serves_five_thousand_meters(tmp_path: Path) -> None:
    base = free_ports(5000)
    with serving("--meters", "5000", "--base-port", str(base)) as (process, line):
        assert line.startswith(f"serving 5000 meters; wrapper 5000 meters on 127.0.0.1:{base}-")
        assert associates(base) and associates(base + 2500) and associates(base + 4999)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
