"""The dashboard's pages over HTTP: login and sessions, what each page shows, and the forms
that change data (roles, CSRF tokens), against the real server on a collected fleet."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from headend.domain.enums import Role
from headend.domain.quality import Quality
from headend.services.access.keys import KeyService
from tests.api.conftest import LISTED
from tests.api.pages.conftest import Served, as_coordinator, csrf_of, fleet_day, log_in
from tests.conftest import TEST_ACTOR

PAGES = ("/", "/failed-reads", "/meters", "/findings", "/gateways", "/workers")


def test_a_page_without_a_session_sends_the_browser_to_the_login_form(served: Served) -> None:
    with served.client() as client:
        answer = client.get("/failed-reads", params={"date": "2026-11-26"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Ffailed-reads%3Fdate%3D2026-11-26"
        assert client.get("/login").status_code == 200


def test_a_wrong_or_revoked_key_does_not_log_in(served: Served) -> None:
    info, key = KeyService(served.store).create("pages-revoked", Role.OPERATOR, actor=TEST_ACTOR)
    KeyService(served.store).revoke(info.name, actor=TEST_ACTOR)
    with served.client() as client:
        for wrong in ("hk_000000000000_" + "x" * 43, key, ""):
            answer = log_in(client, wrong)
            assert answer.status_code in (401, 422)
            assert "headend_session" not in answer.cookies
            assert "not valid" in answer.text or "Enter your API key" in answer.text


def test_the_login_form_refuses_a_post_without_its_own_token(served: Served) -> None:
    with served.client() as client:
        client.get("/login")
        answer = client.post("/login", data={"key": served.keys[Role.BILLING], "csrf": "forged"})
        assert answer.status_code == 403
        assert "headend_session" not in answer.cookies


def test_the_session_cookie_is_httponly_strict_and_reveals_no_key(served: Served) -> None:
    key = served.keys[Role.OPERATOR]
    with served.client() as client:
        answer = log_in(client, key, "/gateways")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/gateways"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("headend_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        secret = key.split("_", 2)[2]
        assert key[3:15] not in value and secret not in value and len(value) >= 40


def test_login_goes_back_only_to_a_page_of_this_site(served: Served) -> None:
    with served.client() as client:
        answer = log_in(client, served.keys[Role.BILLING], "//elsewhere.example/x")
        assert answer.headers["location"] == "/"


def test_every_page_answers_with_strict_headers_and_loads_nothing_from_elsewhere(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    client = sessions[Role.OPERATOR]
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        links = re.findall(r'(?:src|href|action)="([^"]*)"', page.text)
        assert links and all(u.startswith(("/", "#", "?")) for u in links), (path, links)
    for asset in ("/static/dashboard.css", "/static/dashboard.js", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200


def test_each_role_sees_the_pages_it_may_and_only_their_links(
    sessions: dict[Role, httpx.Client],
) -> None:
    allowed = {
        Role.BILLING: {"/"},
        Role.TECHNICIAN: {"/", "/meters"},
        Role.OPERATOR: set(PAGES),
    }
    for role, pages in allowed.items():
        client = sessions[role]
        nav = client.get("/").text.split('aria-label="Dashboard"', 1)[1].split("</nav>", 1)[0]
        for path in PAGES:
            status = client.get(path).status_code
            assert status == (200 if path in pages else 403), (role, path, status)
            assert (f'href="{path}"' in nav) == (path in pages), (role, path)
        assert client.get("/failed-reads.csv").status_code == (
            200 if "/failed-reads" in pages else 403
        )


def test_the_overview_shows_meters_by_state_the_rate_and_the_last_30_days(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    day = fleet_day(served)
    page = sessions[Role.OPERATOR].get("/", params={"date": str(day)})
    assert page.status_code == 200
    html = page.text
    assert f"Fleet overview, {day}" in html
    assert re.search(r"<dt>Active</dt><dd>8</dd>", html)
    assert re.search(r'class="figure">\d+\.\d %', html)
    assert html.count('class="bar-ok"') >= 1 and '<svg class="chart"' in html
    assert "Read success, last 30 days" in html
    unreachable = next(m for m, kind in served.faulty.items() if kind == "no_answer")
    gateway = served.context.registry.meter(unreachable)["gateway"]
    worst = html.split("Gateways with the most failed meters", 1)[1]
    assert f">{gateway}</a>" in worst  # the unreachable meter's gateway failed that day


def test_failed_reads_are_listed_filtered_linked_and_downloadable(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    day = fleet_day(served)
    unreachable = next(m for m, kind in served.faulty.items() if kind == "no_answer")
    client = sessions[Role.OPERATOR]
    page = client.get("/failed-reads", params={"date": str(day)})
    assert page.status_code == 200
    assert f'href="/meters/{unreachable}"' in page.text
    row = served.context.reports.failed_reads(day)[0]
    kept = client.get(
        "/failed-reads",
        params={"date": str(day), "gateway": row.gateway, "category": str(row.category)},
    )
    assert row.meter_id in kept.text
    others = [m for m in served.fleet.specs if m != row.meter_id]
    assert not any(f'href="/meters/{m}"' in kept.text for m in others)
    csv = client.get("/failed-reads.csv", params={"date": str(day)})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("meter_id,gateway")
    assert unreachable in csv.text
    bad = client.get("/failed-reads", params={"date": str(day), "category": "bogus"})
    assert bad.status_code == 422 and "unknown failure category" in bad.text


def test_the_meter_page_shows_registry_reads_chart_findings_and_jobs(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    day = fleet_day(served)
    meter = next(f.meter_id for f in served.context.reports.open_findings())
    page = sessions[Role.TECHNICIAN].get(
        f"/meters/{meter}", params={"start": str(day - timedelta(days=1)), "end": str(day)}
    )
    assert page.status_code == 200
    html = page.text
    assert f"Meter {meter}" in html and "Device profile" in html
    assert "1.0.1.8.0.255" in html  # a register read and a channel
    assert '<svg class="chart"' in html and "Actual (read and valid):" in html
    assert "Open VEE findings" in html and f"/findings?meter_id={meter}" in html
    assert "state-succeeded" in html  # the collection's job
    assert 'id="read-now"' in html


def test_the_meter_page_shows_the_billing_records_of_the_api_for_its_days(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    whole_day = fleet_day(served) - timedelta(days=1)  # the last day read in full
    meter = next(m for m in served.fleet.specs if m not in served.faulty)
    client = sessions[Role.TECHNICIAN]
    page = client.get(f"/meters/{meter}", params={"start": str(whole_day), "end": str(whole_day)})
    assert page.status_code == 200
    section = page.text.split('id="billing-h"', 1)[1].split("</section>", 1)[0]
    month = (whole_day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for period in (str(whole_day), month):
        record = client.get(f"/api/v1/meters/{meter}/billing", params={"period": period}).json()
        assert f"billing?period={period}" in section
        row = section.split(f">{period}</a>", 1)[1].split("</tr>", 1)[0]
        consumption = record["import_energy"]["consumption_kwh"]
        assert (consumption if consumption is not None else "—") in row
        assert ("yes" if record["billable"] else "no") in row and record["quality"] in row
    day_record = client.get(f"/api/v1/meters/{meter}/billing", params={"period": str(whole_day)})
    assert day_record.json()["billable"] is True  # a healthy meter's whole day


def test_the_overview_offers_every_meters_billing_records_for_download(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    day = fleet_day(served)
    client = sessions[Role.BILLING]
    html = client.get("/", params={"date": str(day)}).text
    link = re.search(r'href="(/api/v1/billing\?period=([0-9-]+)&amp;format=csv)"', html)
    ended = day - timedelta(days=1) if day >= served.context.dashboard.today() else day
    assert link is not None and link.group(2) == str(ended)  # the last whole day
    download = client.get(link.group(1).replace("&amp;", "&"))  # with the session cookie
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert len(download.text.splitlines()) == 1 + len(served.fleet.specs)


def test_the_meter_page_of_an_unknown_meter_or_a_bad_range_says_so(
    sessions: dict[Role, httpx.Client],
) -> None:
    client = sessions[Role.TECHNICIAN]
    assert client.get("/meters/NOPE-0001").status_code == 404
    wide = client.get("/meters/NOPE-0001", params={"start": "2026-01-01", "end": "2026-02-01"})
    assert wide.status_code == 404
    meter_list = client.get("/meters", params={"q": "NOPE-0001"})
    assert meter_list.status_code == 200 and "There is no meter NOPE-0001" in meter_list.text


def test_the_api_takes_the_session_cookie_and_needs_its_csrf_token_for_changes(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    client = sessions[Role.TECHNICIAN]
    meter = served.healthy()[0]
    now = datetime.now(UTC)
    reads = client.get(
        f"/api/v1/meters/{meter}/intervals",
        params={"start": (now - timedelta(days=1)).isoformat(), "end": now.isoformat()},
    )
    assert reads.status_code == 200
    refused = client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "clock"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    token = csrf_of(client.get(f"/meters/{meter}").text)
    queued = client.post(
        f"/api/v1/meters/{meter}/reads", json={"kind": "clock"}, headers={"X-CSRF-Token": token}
    )
    assert queued.status_code == 202, queued.text
    job = client.get(f"/api/v1/jobs/{queued.json()['job_id']}", params={"wait": 20}).json()
    assert job["state"] == "succeeded"
    forbidden = sessions[Role.BILLING].get(f"/api/v1/jobs/{job['job_id']}")
    assert forbidden.status_code == 403


def test_a_finding_edit_needs_the_operator_role_and_the_csrf_token(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    finding = next(f for f in served.context.reports.open_findings() if f.channel)
    form = {"mode": "keep", "reason_code": "ESTIMATE_OK", "comment": "ok"}
    technician = sessions[Role.TECHNICIAN]
    token = csrf_of(technician.get("/meters").text)
    answer = technician.post(f"/findings/{finding.id}/edit", data={**form, "csrf": token})
    assert answer.status_code == 403 and "needs the role operator" in answer.text
    operator = sessions[Role.OPERATOR]
    answer = operator.post(f"/findings/{finding.id}/edit", data={**form, "csrf": "stale"})
    assert answer.status_code == 403 and "reload the page" in answer.text
    assert finding.id in {f.id for f in served.context.reports.open_findings()}


def test_an_operator_edit_of_a_finding_makes_edited_versions_and_resolves_it(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    finding = next(f for f in served.context.reports.open_findings() if f.channel)
    assert finding.channel
    operator = sessions[Role.OPERATOR]
    page = operator.get("/findings")
    assert f'action="/findings/{finding.id}/edit"' in page.text
    refused = operator.post(
        f"/findings/{finding.id}/edit",
        data={
            "csrf": csrf_of(page.text),
            "mode": "value",
            "value": "-1",
            "reason_code": "X",
            "back": "/findings",
        },
    )
    assert refused.status_code == 422 and "negative energy" in refused.text
    assert 'name="back" value="/findings"' in refused.text  # a retry goes back to the list
    done = operator.post(
        f"/findings/{finding.id}/edit",
        data={
            "csrf": csrf_of(page.text),
            "mode": "value",
            "value": "0.125",
            "reason_code": "FIELD_READ",
            "comment": "read on site",
            "back": "/findings",
        },
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith(f"/findings?edited={finding.id}&edit=")
    assert (
        f"Finding {finding.id} is resolved by edit" in operator.get(done.headers["location"]).text
    )
    assert finding.id not in {f.id for f in served.context.reports.open_findings()}
    rows = served.context.readings.intervals(
        finding.meter_id, finding.start, finding.end, finding.channel
    )
    assert rows and all(r.quality is Quality.EDITED and r.value == Decimal("0.125") for r in rows)


def test_an_operator_resolves_a_finding_without_an_edit(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    finding = served.context.reports.open_findings()[0]
    operator = sessions[Role.OPERATOR]
    token = csrf_of(operator.get("/findings").text)
    done = operator.post(
        f"/findings/{finding.id}/resolve", data={"csrf": token, "note": "known outage"}
    )
    assert done.status_code == 303
    assert finding.id not in {f.id for f in served.context.reports.open_findings()}
    again = operator.post(f"/findings/{finding.id}/resolve", data={"csrf": token})
    assert again.status_code == 409


def test_the_gateways_page_shows_sessions_failures_and_the_circuit_breaker(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    gateways = served.context.dashboard.gateways()
    first = gateways[0]
    runtime = served.context.runtime
    until = datetime.now(UTC) + timedelta(minutes=5)
    saved = runtime.paused_gateways, runtime.gateway_sessions
    runtime.paused_gateways = lambda: {first.id: until}
    runtime.gateway_sessions = lambda: {first.id: 1}
    try:
        page = sessions[Role.OPERATOR].get("/gateways", params={"date": str(fleet_day(served))})
    finally:
        runtime.paused_gateways, runtime.gateway_sessions = saved
    assert page.status_code == 200
    for gateway in gateways:
        assert gateway.name in page.text
    assert page.text.count(">Paused</span>") == 1 and "1 gateway paused" in page.text
    assert "1 of 1" in page.text


def test_the_workers_page_lists_each_worker_alive_or_lost_with_its_sites_and_sessions(
    served: Served, sessions: dict[Role, httpx.Client]
) -> None:
    with as_coordinator(served, "leader"):
        page = sessions[Role.OPERATOR].get("/workers")
    assert page.status_code == 200
    html = page.text
    assert "celery: meter sessions run on <code>headend worker</code> processes" in html
    assert ">Leader</span>" in html
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", html.split("<tbody>", 1)[1])
    assert rows == [
        ("hanoi-1:101", "hanoi, haiphong"),
        ("spare:102", "no site"),
        ("a-lost:103", "hanoi"),
    ]
    assert [name for name, _ in rows] == LISTED  # not the stopped one, not the one gone a day
    assert ">3 of 20</td>" in html and ">5 of 20</td>" in html and ">41</td>" in html
    assert html.count(">Alive</span>") == 2 and html.count(">Lost</span>") == 1
    assert "2 workers alive" in html
    assert re.search(r"<dt>Sessions open now</dt>\s*<dd>3 on the workers alive", html)
    with as_coordinator(served, "standby"):
        standby = sessions[Role.OPERATOR].get("/workers").text
    assert ">Standby</span>: another coordinator leads" in standby


def test_the_workers_page_says_sessions_run_in_this_process_with_the_local_executor(
    sessions: dict[Role, httpx.Client],
) -> None:
    page = sessions[Role.OPERATOR].get("/workers")
    assert page.status_code == 200
    assert "local: meter sessions run in this process; there are no workers" in page.text
    assert "<table" not in page.text  # the heartbeats of any worker are not listed
    assert "Collects nothing" in page.text  # the served app runs no scheduler


def test_logging_out_ends_the_session_for_pages_and_the_api(served: Served) -> None:
    with served.client() as client:
        log_in(client, served.keys[Role.OPERATOR])
        token = csrf_of(client.get("/").text)
        cookie = client.cookies["headend_session"]
        answer = client.post("/logout", data={"csrf": token})
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    with served.client() as stale:
        stale.cookies.set("headend_session", cookie)
        assert stale.get("/").status_code == 303
        assert stale.get("/api/v1/reports/findings").status_code == 401


def test_revoking_a_key_ends_its_dashboard_sessions(served: Served) -> None:
    keys = KeyService(served.store)
    info, key = keys.create("pages-soon-revoked", Role.OPERATOR, actor=TEST_ACTOR)
    with served.client() as client:
        log_in(client, key)
        assert client.get("/findings").status_code == 200
        keys.revoke(info.name, actor=TEST_ACTOR)
        assert client.get("/findings").status_code == 303
