"""``headend export billing`` gives what the API's billing stream and NEM12 export give, on a
store filled by collection from simulated meters (the API tests' fleet and server)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from headend.domain.enums import Role
from tests.cli.conftest import Headend, on_a_terminal
from tests.conftest import headend_env
from tests.served import Served

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def served_env(served: Served, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``headend`` pointed at the store the API serves."""
    return headend_env(served.database_url, monkeypatch)


def _yesterday(served: Served) -> datetime:
    """Local midnight starting yesterday: inside the two days collected."""
    tz = served.context.settings.tz
    today = served.fleet.clock.now.astimezone(tz).date()
    return datetime.combine(today - timedelta(days=1), time(0), tz)


def _forms(served: Served) -> dict[str, dict[str, str]]:
    """The same kinds of period, as API query parameters."""
    start = _yesterday(served)
    return {
        "day": {"period": start.date().isoformat()},
        "month": {"period": start.strftime("%Y-%m")},
        "start_end": {
            "start": start.isoformat(),
            "end": (start + timedelta(days=1)).isoformat(),
        },
    }


def _options(query: dict[str, str]) -> list[str]:
    return [part for name, value in query.items() for part in (f"--{name}", value)]


def _api(served: Served, path: str, query: dict[str, str]) -> str:
    with served.client(Role.BILLING) as client:
        response = client.get(path, params=query)
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("form", ["day", "month", "start_end"])
@pytest.mark.parametrize("format", ["csv", "ndjson"])
def test_export_billing_equals_the_api_stream(
    served: Served, served_env: dict[str, str], headend: Headend, format: str, form: str
) -> None:
    query = _forms(served)[form]
    expected = _api(served, "/api/v1/billing", {**query, "format": format})
    ran = headend("export", "billing", *_options(query), "--format", format)
    assert ran.code == 0, ran.stderr
    assert ran.stdout == expected
    records = ran.stdout.splitlines()[1:] if format == "csv" else ran.stdout.splitlines()
    assert len(records) == len(served.fleet.specs)


def test_export_billing_nem12_equals_the_api_export_but_for_the_time_it_was_made(
    served: Served, served_env: dict[str, str], headend: Headend
) -> None:
    query = _forms(served)["day"]
    expected = _api(served, "/api/v1/billing/nem12", query).splitlines()
    ran = headend("export", "billing", *_options(query), "--format", "nem12")
    assert ran.code == 0, ran.stderr
    got = ran.stdout.splitlines()
    header, expected_header = got[0].split(","), expected[0].split(",")
    del header[2], expected_header[2]  # the 100 record's creation time
    assert header == expected_header == ["100", "NEM12", "HEADEND", "EVN"]
    assert got[1:] == expected[1:]
    assert {line.split(",")[1] for line in got if line.startswith("200,")} == set(
        served.fleet.specs
    )


def test_export_billing_to_a_file_writes_the_stream_there_and_nothing_on_stdout(
    served: Served, served_env: dict[str, str], headend: Headend, tmp_path: Path
) -> None:
    query = _forms(served)["day"]
    target = tmp_path / "billing.csv"
    ran = headend("export", "billing", *_options(query), "--format", "csv", "-o", str(target))
    assert ran.code == 0, ran.stderr
    assert ran.stdout == ""
    assert target.read_bytes().decode() == _api(
        served, "/api/v1/billing", {**query, "format": "csv"}
    )
    assert list(tmp_path.iterdir()) == [target]  # no partial file left beside it


def test_with_stderr_on_a_terminal_the_bar_is_there_and_stdout_is_exactly_the_stream(
    served: Served, served_env: dict[str, str]
) -> None:
    query = _forms(served)["day"]
    expected = _api(served, "/api/v1/billing", query)
    code, stdout, terminal = on_a_terminal(["export", "billing", *_options(query)], served_env)
    assert code == 0, terminal.decode(errors="replace")
    assert stdout.decode() == expected
    assert f"billing {query['period']}".encode() in terminal


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (["--period", "2026-13"], "--period", "not a real month or day"),
        (["--period", "November"], "--period", "neither a month"),
        ([], "--period", "give a period"),
        (["--period", "2026-11", "--start", "2026-11-01T00:00+07:00"], "--period", "not both"),
        (["--start", "2026-11-01T00:00+07:00"], "--end", "end is missing"),
        (["--start", "2026-11-01T00:00", "--end", "2026-11-02T00:00+07:00"], "--start", "offset"),
        (
            ["--start", "2026-11-05T00:00+07:00", "--end", "2026-11-01T00:00+07:00"],
            "--end",
            "is before start",
        ),
        (["--period", "2026-11", "--format", "xml"], "--format", "'xml' is not one of"),
    ],
)
def test_a_bad_period_format_or_range_exits_2_naming_the_option_with_nothing_on_stdout(
    headend: Headend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    option: str,
    says: str,
) -> None:
    store = tmp_path / "never-made.db"
    monkeypatch.setenv("HEADEND_DATABASE_URL", f"sqlite:///{store}")
    target = tmp_path / "billing.csv"
    ran = headend("export", "billing", *args, "--output", str(target))
    assert ran.code == 2
    assert ran.stdout == ""
    assert option in ran.stderr and says in ran.stderr, ran.stderr
    assert not target.exists() and not store.exists()
