"""The listings of the command line: each as a table, and with ``--json`` as one JSON document
holding what the services behind the API give (a store filled with read jobs that failed
and succeeded, a validated day with findings, a read plan and a key)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import MeterStatus, ReadKind, Role
from headend.services.access.keys import KeyService
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanService, PlanSpec
from headend.services.registry.service import RegistryService
from headend.services.reporting.reports import ReportService
from headend.store import migrations
from headend.store.engine import make_session_factory
from tests.cli.conftest import Headend
from tests.conftest import TEST_ACTOR
from tests.services.billing.fleet import empty
from tests.services.reporting.test_reports import (
    BUS_1,
    DAY,
    GPRS_1,
    GPRS_2,
    GPRS_3,
    OK,
    REFUSED,
    TIMEOUT,
    TZ,
    collect,
    local,
    registry,
)
from tests.services.validation.test_edits import GAP, land_and_validate


@pytest.fixture(scope="module")
def filled(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """The sample registry; a day on which two meters' reads failed and one's succeeded; a
    validated day of GPRS_3 with a gap VEE estimated; a read plan; an API key."""
    store = make_session_factory(engine)
    empty(engine)
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [TIMEOUT] * 4, GPRS_2: [OK], BUS_1: [REFUSED]})
    land_and_validate(store, {GPRS_3: [i for i in range(97) if i not in GAP]})
    PlanService(store, JobService(store), TZ).save(
        PlanSpec("daily", "5 0 * * *", (ReadKind.REGISTERS,), {"all": True}), actor=TEST_ACTOR
    )
    KeyService(store).create("cmis-billing", Role.BILLING, actor=TEST_ACTOR)
    yield store
    empty(engine)


def _json(ran_stdout: str) -> Any:
    """The one JSON document on stdout (json.loads refuses anything after it)."""
    return json.loads(ran_stdout)


def test_failed_reads_as_json_and_csv_are_the_report_the_api_gives(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    rows = ReportService(filled, TZ).failed_reads(DAY)
    assert {r.meter_id for r in rows} == {GPRS_1, BUS_1}
    ran = headend("reports", "failed-reads", "--date", DAY.isoformat(), "--json")
    assert ran.code == 0, ran.stderr
    assert _json(ran.stdout) == [r.model_dump(mode="json") for r in rows]
    as_csv = headend("reports", "failed-reads", "--date", DAY.isoformat(), "--csv")
    expected = io.StringIO()
    ReportService.failed_reads_csv(rows, expected)
    # the same text; the runner gives CSV's \r\n line ends as \n
    assert as_csv.stdout == expected.getvalue().replace("\r\n", "\n")
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == 2
    shown = headend("reports", "failed-reads", "--date", DAY.isoformat())
    assert shown.stdout.splitlines()[0].split()[:3] == ["meter", "gateway", "profile"]
    assert {line.split()[0] for line in shown.stdout.splitlines()[1:]} == {GPRS_1, BUS_1}


def test_failed_reads_filter_by_category_and_refuse_an_unknown_one_or_two_formats(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    day = ["reports", "failed-reads", "--date", DAY.isoformat()]
    only = _json(headend(*day, "--category", str(REFUSED), "--json").stdout)
    assert [r["meter_id"] for r in only] == [BUS_1]
    unknown = headend(*day, "--category", "gremlins", "--json")
    assert unknown.code == 2 and unknown.stdout == ""
    assert "--category: unknown failure category 'gremlins'" in unknown.stderr
    both = headend(*day, "--json", "--csv")
    assert both.code == 2 and both.stdout == "" and "--json and --csv" in both.stderr
    bad_day = headend("reports", "failed-reads", "--date", "2026-11-31")
    assert bad_day.code == 2 and bad_day.stdout == "" and "--date" in bad_day.stderr


def test_read_success_counts_the_meters_attempted_and_read_by_gateway(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    start, end = (DAY - timedelta(days=1)).isoformat(), DAY.isoformat()
    ran = headend("reports", "read-success", "--start", start, "--end", end, "--by", "all")
    assert ran.code == 0, ran.stderr
    expected = ReportService(filled, TZ).success_rates(DAY - timedelta(days=1), DAY, "all")
    ran = headend(
        "reports", "read-success", "--start", start, "--end", end, "--by", "all", "--json"
    )
    assert _json(ran.stdout) == [r.model_dump(mode="json") for r in expected]
    assert _json(ran.stdout) == [
        {
            "day": DAY.isoformat(),
            "group": None,
            "attempted": 3,
            "succeeded": 1,
            "failed": 2,
            "rate": "0.3333",
        }
    ]


def test_findings_list_shows_the_open_vee_findings_oldest_first(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    expected = ReportService(filled, TZ).open_findings()
    assert expected and {f.meter_id for f in expected} == {GPRS_3}
    ran = headend("findings", "list", "--json")
    assert ran.code == 0, ran.stderr
    assert _json(ran.stdout) == [f.model_dump(mode="json") for f in expected]
    paged = _json(headend("findings", "list", "--after", str(expected[0].id), "--json").stdout)
    assert paged == [f.model_dump(mode="json") for f in expected[1:]]
    shown = headend("findings", "list").stdout.splitlines()
    assert len(shown) == 1 + len(expected)
    assert shown[1].split()[:4] == [str(expected[0].id), GPRS_3, "1.0.1.8.0.255", expected[0].rule]


def test_meters_list_is_the_registry_as_the_api_pages_it_and_filters_by_status(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    registry_api = RegistryService(filled)
    ran = headend("meters", "list", "--json")
    assert ran.code == 0, ran.stderr
    assert _json(ran.stdout) == registry_api.meters() and len(registry_api.meters()) == 24
    page = _json(headend("meters", "list", "--after", GPRS_1, "--limit", "2", "--json").stdout)
    assert page == registry_api.meters(after=GPRS_1, limit=2)
    assert all("lls_password" not in row for row in page)
    inactive = headend("meters", "list", "--status", str(MeterStatus.INACTIVE), "--json")
    assert _json(inactive.stdout) == []
    shown = headend("meters", "list", "--limit", "3").stdout.splitlines()
    assert [line.split()[0] for line in shown] == ["meter", GPRS_1, GPRS_2, GPRS_3]


def test_gateways_list_is_the_registrys_gateways(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    ran = headend("gateways", "list", "--json")
    assert ran.code == 0, ran.stderr
    assert _json(ran.stdout) == RegistryService(filled).gateways()
    shown = headend("gateways", "list").stdout.splitlines()
    assert shown[0].split() == ["gateway", "kind", "host", "port", "device", "sessions", "site"]
    assert len(shown) == 1 + 18


@pytest.mark.parametrize(
    "listing",
    [
        ["jobs", "list"],
        ["plans", "list"],
        ["keys", "list"],
        ["meters", "summary"],
        ["meters", "list"],
        ["gateways", "list"],
        ["findings", "list"],
        ["reports", "failed-reads", "--date", DAY.isoformat()],
        ["reports", "read-success", "--start", DAY.isoformat(), "--end", DAY.isoformat()],
        ["db", "current"],
    ],
    ids=" ".join,
)
def test_every_listing_prints_one_json_document_with_json_and_text_without(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend, listing: list[str]
) -> None:
    as_json = headend(*listing, "--json")
    assert as_json.code == 0, as_json.stderr
    assert as_json.stdout.endswith("\n") and as_json.stdout.count("\n") == 1
    assert _json(as_json.stdout)
    as_text = headend(*listing)
    assert as_text.code == 0, as_text.stderr
    assert as_text.stdout.strip() and not as_text.stdout.lstrip().startswith(("[", "{"))


def test_jobs_show_and_db_current_give_json_too(
    filled: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    jobs = _json(headend("jobs", "list", "--json").stdout)
    first = next(job for job in jobs if job["attempts"])
    shown = _json(headend("jobs", "show", str(first["id"]), "--json").stdout)
    assert shown["id"] == first["id"] and shown["attempts"]
    current = _json(headend("db", "current", "--json").stdout)
    head = ScriptDirectory.from_config(
        migrations.alembic_config(cli_env["HEADEND_DATABASE_URL"])
    ).get_current_head()
    assert current == {
        "database": cli_env["HEADEND_DATABASE_URL"],
        "revision": head,
        "head": head,
        "up_to_date": True,
    }
