"""Bad requests get a problem document naming what is wrong, never a 500, and change nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from headend.domain.enums import JobState, Role
from headend.store.base import Base
from tests.served import Served

A_PLUS = "1.0.1.8.0.255"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _counts(served: Served) -> dict[str, int]:
    """Rows per table, once no read job is queued or running: the module's server starts by
    carrying out the re-read that the template's validation pass queued."""
    jobs = Base.metadata.tables["read_jobs"]
    busy = select(func.count()).where(jobs.c.state.in_([JobState.QUEUED, JobState.RUNNING]))
    deadline = time.monotonic() + 30
    with served.store() as session:
        while session.scalar(busy):
            assert time.monotonic() < deadline, "read jobs still queued or running after 30 s"
            session.rollback()
            time.sleep(0.05)
        return {
            t.name: session.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
            if t.name not in ("audit_events", "api_keys")
        }


def test_an_unknown_meter_is_404_on_every_meter_resource(served: Served) -> None:
    paths = [
        "/api/v1/meters/NOPE/billing?period=2026-11",
        "/api/v1/meters/NOPE/intervals?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
        "/api/v1/meters/NOPE/registers?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
        "/api/v1/meters/NOPE",
    ]
    with served.client(Role.ADMIN) as client:
        for path in paths:
            assert "NOPE" in _problem(client.get(path), 404)["detail"]
        assert "NOPE" in _problem(client.post("/api/v1/meters/NOPE/reads", json={}), 404)["detail"]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("start=2026-11-01T00:00:00%2B07:00&end=2026-10-01T00:00:00%2B07:00", "end", "not after"),
        ("start=2026-01-01T00:00:00%2B07:00&end=2026-11-01T00:00:00%2B07:00", "end", "longer than"),
        ("start=2026-11-01T00:00:00&end=2026-11-02T00:00:00%2B07:00", "start", "time zone"),
        ("start=yesterday&end=2026-11-02T00:00:00%2B07:00", "start", ""),
        ("end=2026-11-02T00:00:00%2B07:00", "start", "required"),
    ],
)
def test_a_bad_time_range_is_422_naming_the_field(
    served: Served, query: str, field: str, words: str
) -> None:
    meter = served.healthy()[0]
    with served.client(Role.BILLING) as client:
        body = _problem(client.get(f"/api/v1/meters/{meter}/intervals?{query}"), 422)
    assert body["errors"][0]["field"] == field
    assert words in body["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=2026-13", "period"),
        ("period=last-month", "period"),
        ("", "period"),
        ("period=2026-11&start=2026-11-01T00:00:00%2B07:00", "period"),
        ("start=2026-11-01T00:00:00&end=2026-11-05T00:00:00%2B07:00", "start"),
        ("start=2026-11-05T00:00:00%2B07:00&end=2026-11-01T00:00:00%2B07:00", "end"),
        ("start=2025-01-01T00:00:00%2B07:00&end=2026-11-01T00:00:00%2B07:00", "end"),
    ],
)
def test_a_bad_billing_period_is_422_naming_the_field(
    served: Served, query: str, field: str
) -> None:
    meter = served.healthy()[0]
    with served.client(Role.BILLING) as client:
        one = _problem(client.get(f"/api/v1/meters/{meter}/billing?{query}"), 422)
        bulk = _problem(client.get(f"/api/v1/billing?{query}"), 422)
    assert one["errors"][0]["field"] == field
    assert bulk["errors"][0]["field"] == field


def test_an_unknown_field_in_a_body_is_422_naming_it(served: Served) -> None:
    meter = served.healthy()[0]
    with served.client(Role.ADMIN) as client:
        read = _problem(
            client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "clock", "urgent": True}),
            422,
        )
        plan = _problem(
            client.put(
                "/api/v1/plans/daily",
                json={
                    "cron": "5 0 * * *",
                    "kinds": ["registers"],
                    "selector": {"all": True},
                    "colour": "red",
                },
            ),
            422,
        )
        meter_put = _problem(client.put(f"/api/v1/meters/{meter}", json={"colour": "red"}), 422)
    assert read["errors"][0]["field"] == "urgent"
    assert "not a field" in read["errors"][0]["message"]
    assert plan["errors"][0]["field"] == "colour"
    assert meter_put["errors"][0]["field"] == "colour"


def test_a_bad_read_request_is_422_and_queues_nothing(served: Served) -> None:
    meter = served.healthy()[0]
    before = _counts(served)
    bad_bodies = [
        {"kind": "everything"},
        {
            "kind": "registers",
            "start": "2026-11-01T00:00:00+07:00",
            "end": "2026-11-02T00:00:00+07:00",
        },
        {"kind": "load_profile", "start": "2026-11-01T00:00:00+07:00"},
        {"kind": "load_profile", "start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00"},
        {
            "kind": "load_profile",
            "start": "2026-11-02T00:00:00+07:00",
            "end": "2026-11-01T00:00:00+07:00",
        },
    ]
    with served.client(Role.TECHNICIAN) as client:
        for body in bad_bodies:
            _problem(client.post(f"/api/v1/meters/{meter}/reads", json=body), 422)
        _problem(
            client.post(
                f"/api/v1/meters/{meter}/reads",
                content=b"{not json",
                headers={"content-type": "application/json"},
            ),
            422,
        )
    assert _counts(served) == before


def test_a_bad_edit_is_refused_and_leaves_the_store_as_it_was(served: Served) -> None:
    meter = served.healthy()[0]
    before = _counts(served)
    now = served.fleet.clock.now
    base = {
        "channel": A_PLUS,
        "start": (now.replace(minute=0, second=0, microsecond=0)).isoformat(),
        "end": (now.replace(minute=0, second=0, microsecond=0)).isoformat(),
        "value_kwh": "0.5",
        "reason_code": "FIX",
    }
    with served.client(Role.OPERATOR) as client:
        for change in (
            {},  # end not after start
            {"channel": "9.9.9.9.9.255"},
            {"value_kwh": "-1"},
            {"reason_code": ""},
            {"start": "2026-11-01T00:00:00"},
        ):
            response = client.post(f"/api/v1/meters/{meter}/edits", json={**base, **change})
            assert response.status_code in (404, 422), response.text
            assert response.headers["content-type"] == "application/problem+json"
    assert _counts(served) == before


def test_a_bad_registry_entry_lists_every_problem_and_stores_nothing(served: Served) -> None:
    before = _counts(served)
    with served.client(Role.OPERATOR) as client:
        body = _problem(
            client.put(
                "/api/v1/meters/NEW-1",
                json={"gateway": "", "transport": "carrier-pigeon", "device_profile": "toaster"},
            ),
            422,
        )
    fields = {e["field"] for e in body["errors"]}
    assert {"transport", "device_profile"} <= fields
    assert _counts(served) == before


def test_odd_requests_never_make_the_server_fail(served: Served) -> None:
    meter = served.healthy()[0]
    before = _counts(served)
    odd = [
        ("GET", f"/api/v1/meters/{meter}/intervals?start=%00&end=%FF"),
        (
            "GET",
            f"/api/v1/meters/{meter}/intervals?start=9999-12-31T23:59:59%2B14:00&end=9999-12-31T23:59:59%2B14:00",
        ),
        ("GET", f"/api/v1/meters/{'x' * 5000}/billing?period=2026-11"),
        ("GET", "/api/v1/billing?period=2026-11&limit=-5"),
        ("GET", "/api/v1/billing?period=2026-11&format=xml"),
        ("GET", "/api/v1/jobs/not-a-number"),
        ("GET", "/api/v1/jobs/1?wait=100000"),
        ("GET", "/api/v1/reports/failed-reads?date=2026-02-30"),
        ("GET", "/api/v1/reports/failed-reads?date=0001-01-01"),
        ("GET", "/api/v1/reports/read-success?start=9999-12-30&end=9999-12-31"),
        ("GET", "/api/v1/billing?period=0001-01"),
        ("GET", f"/api/v1/meters/{meter}/billing?period=9999-12"),
        (
            "GET",
            f"/api/v1/meters/{meter}/billing?start=0001-01-01T00:00:00%2B14:00&end=0001-01-02T00:00:00%2B14:00",
        ),
        (
            "GET",
            f"/api/v1/meters/{meter}/intervals?start=9999-12-30T00:00:00-12:00&end=9999-12-31T23:59:59-12:00",
        ),
        ("GET", "/api/v1/reports/read-success?start=2026-11-05&end=2026-11-01"),
        ("GET", "/api/v1/reports/findings?limit=0"),
        ("GET", "/api/v1/reports/findings?after=-15"),
        ("GET", "/api/v1/reports/findings?after=99999999999999999999999"),
        ("GET", "/api/v1/jobs/99999999999999999999999"),
        ("GET", "/api/v1/nowhere"),
        ("DELETE", f"/api/v1/meters/{meter}/billing"),
        ("PUT", "/api/v1/plans/x"),
        ("POST", "/api/v1/findings/999999/resolve"),
        ("POST", "/api/v1/findings/9462768809416325154752548359372800/resolve"),
        ("POST", "/api/v1/edits/999999/revert"),
        ("POST", f"/api/v1/meters/{meter}/edits"),
    ]
    with served.client(Role.ADMIN) as client:
        for method, path in odd:
            response = client.request(method, path, json={} if method == "POST" else None)
            assert 400 <= response.status_code < 500, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json", path
    assert _counts(served) == before
