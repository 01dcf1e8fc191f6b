from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from headend.store import migrations
from tests.conftest import REPO

HEADEND = [sys.executable, "-m", "headend"]
SAMPLE = REPO / "fixtures" / "sample_fleet.csv"


def _run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEADEND, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands(cli_env: dict[str, str]) -> None:
    result = _run(["--help"], cli_env)
    assert result.returncode == 0
    for command in ("db", "meters", "jobs", "plans", "keys", "serve", "probe", "simulate", "vee"):
        assert command in result.stdout


def test_db_upgrade_brings_a_fresh_database_to_head(
    fresh_database_url: str, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "HEADEND_DATABASE_URL": fresh_database_url}
    result = _run(["db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(
        migrations.alembic_config(fresh_database_url)
    ).get_current_head()
    assert f"is at revision {head}" in result.stdout
    assert _run(["db", "current"], env).stdout.strip() == head


def test_importing_the_sample_fleet_then_summarising_it(cli_env: dict[str, str]) -> None:
    result = _run(["meters", "import", str(SAMPLE)], cli_env)
    assert result.returncode == 0, result.stderr
    assert "24 meters added" in result.stdout
    again = _run(["meters", "import", str(SAMPLE), "--json"], cli_env)
    assert json.loads(again.stdout)["meters_unchanged"] == 24
    summary = json.loads(_run(["meters", "summary", "--json"], cli_env).stdout)
    assert summary["meters"] == 24
    assert summary["by_gateway_kind"] == {"serial": 2, "tcp": 16, "tcp_serial": 6}
    exported = _run(["meters", "export"], cli_env).stdout
    assert len(list(csv.DictReader(exported.splitlines()))) == 24
    # leave the shared store as found
    from sqlalchemy import create_engine

    from headend.store.base import Base

    engine = create_engine(cli_env["HEADEND_DATABASE_URL"])
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def test_a_bad_registry_file_is_reported_by_line_and_field_and_exits_1(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    rows = SAMPLE.read_text().splitlines()
    rows[2] = rows[2].replace(",wrapper,", ",carrier-pigeon,")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    result = _run(["meters", "import", str(bad)], cli_env)
    assert result.returncode == 1
    assert (
        f"{bad}: line 3, transport: must be one of wrapper, hdlc, got 'carrier-pigeon'"
        in result.stderr
    )
    assert "nothing was imported" in result.stderr
    summary = json.loads(_run(["meters", "summary", "--json"], cli_env).stdout)
    assert summary["meters"] == 0


def test_a_missing_secret_key_stops_the_import_with_a_clear_message(
    cli_env: dict[str, str],
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HEADEND_SECRET_KEY"}
    result = _run(["meters", "import", str(SAMPLE)], env)
    assert result.returncode == 2
    assert "HEADEND_SECRET_KEY is not set" in result.stderr
