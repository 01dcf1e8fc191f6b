"""``headend serve``: the API, the scheduler and the dispatcher in one process, as deployed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import JobState
from headend.simulator.fleet import load_fleet
from headend.store.models import ReadJob
from tests.cli.test_collect_command import HEADEND, _fast, _headend, _simulator
from tests.ports import free_ports

pytestmark = pytest.mark.timeout(180)


def _daily_reads_done(store: sessionmaker[Session]) -> int:
    with store() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ReadJob)
                .where(ReadJob.requested_by == "serve --collect-now")
                .where(ReadJob.state == JobState.SUCCEEDED)
            )
            or 0
        )


def test_keys_create_prints_the_key_once_and_list_never_shows_it(
    cli_env: dict[str, str], store: sessionmaker[Session]
) -> None:
    made = _headend(["keys", "create", "--name", "cmis", "--role", "billing"], cli_env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("hk_") and len(key) > 40
    listed = _headend(["keys", "list", "--json"], cli_env)
    assert key not in listed.stdout and '"role": "billing"' in listed.stdout
    again = _headend(["keys", "create", "--name", "cmis", "--role", "admin"], cli_env)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert _headend(["keys", "revoke", "cmis"], cli_env).returncode == 0
    assert "revoked" in _headend(["keys", "list"], cli_env).stdout


def test_serve_answers_on_the_port_it_is_given_reads_a_meter_and_stops_on_ctrl_c(
    cli_env: dict[str, str], store: sessionmaker[Session], tmp_path: Path
) -> None:
    env = _fast(cli_env)
    with _simulator(
        tmp_path, env, "--meters", "3", "--transport", "wrapper", "--seed", "4"
    ) as fleet:
        meter = load_fleet(fleet)[0].meter_id
        key = _headend(["keys", "create", "--name", "tech", "--role", "technician"], env)
        port = free_ports(1)
        log = (tmp_path / "serve.log").open("w")
        server = subprocess.Popen(
            [*HEADEND, "serve", "--host", "127.0.0.1", "--port", str(port), "--collect-now"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:  # the API answers at once; the scheduler starts beside it
                try:
                    status = httpx.get(f"{url}/health", timeout=2).json()
                    if status["scheduler"] == "running":
                        break
                except httpx.TransportError:
                    assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the server or its scheduler did not come up"
                time.sleep(0.2)
            assert (status["status"], status["database"], status["scheduler"]) == (
                "ok",
                "ok",
                "running",
            )
            assert 0 <= status["sessions_in_flight"] <= 3
            auth = {"Authorization": f"Bearer {key.stdout.strip()}"}
            with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                queued = client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "registers"})
                assert queued.status_code == 202, queued.text
                done = client.get(queued.headers["location"], params={"wait": 20}).json()
            assert done["state"] == "succeeded", done
            assert done["values"][0]["serial_number"] == meter
            # --collect-now read every meter once, beside the on-demand read
            deadline = time.monotonic() + 60
            while _daily_reads_done(store) < 3:
                assert time.monotonic() < deadline, "the start-up collection did not end"
                time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGINT)
            code = server.wait(20)
            log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert "API on http://127.0.0.1:" in (tmp_path / "serve.log").read_text()
