"""Each role sees exactly what it may; no key is 401, a wrong role 403; commands are audited."""

from __future__ import annotations

import pytest

from headend.domain.enums import Role
from headend.services.access.keys import KeyService
from tests.conftest import TEST_ACTOR
from tests.served import Served

RANGE = "start=2026-11-01T00:00:00%2B07:00&end=2026-11-02T00:00:00%2B07:00"

# (method, path template, the lowest role allowed)
ENDPOINTS = [
    ("GET", "/api/v1/meters/{meter}/billing?period=2026-11", Role.BILLING),
    ("GET", "/api/v1/billing?period=2026-11&limit=1", Role.BILLING),
    ("GET", "/api/v1/meters/{meter}/intervals?" + RANGE, Role.BILLING),
    ("GET", "/api/v1/meters/{meter}/registers?" + RANGE, Role.BILLING),
    ("GET", "/api/v1/jobs/1", Role.TECHNICIAN),
    ("GET", "/api/v1/reports/failed-reads?date=2026-11-01", Role.OPERATOR),
    ("GET", "/api/v1/reports/read-success?start=2026-11-01&end=2026-11-02", Role.OPERATOR),
    ("GET", "/api/v1/reports/findings", Role.OPERATOR),
    ("GET", "/api/v1/meters", Role.OPERATOR),
    ("GET", "/api/v1/meters/{meter}", Role.OPERATOR),
    ("GET", "/api/v1/gateways", Role.OPERATOR),
    ("GET", "/api/v1/plans", Role.OPERATOR),
    ("GET", "/api/v1/learned-quirks", Role.OPERATOR),
    ("GET", "/api/v1/keys", Role.ADMIN),
]
ORDER = [Role.BILLING, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN]


@pytest.mark.parametrize(("method", "path", "lowest"), ENDPOINTS)
def test_each_role_sees_exactly_what_it_may(
    served: Served, method: str, path: str, lowest: Role
) -> None:
    url = path.format(meter=served.healthy()[0])
    for role in ORDER:
        with served.client(role) as client:
            response = client.request(method, url)
        if ORDER.index(role) >= ORDER.index(lowest):
            assert response.status_code not in (401, 403), (role, response.text)
            assert response.status_code < 500, response.text
        else:
            assert response.status_code == 403, (role, response.text)
            problem = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert f"role {lowest}" in problem["detail"]


@pytest.mark.parametrize(("method", "path", "lowest"), ENDPOINTS)
def test_a_request_without_a_key_is_401_with_a_bearer_challenge(
    served: Served, method: str, path: str, lowest: Role
) -> None:
    with served.client() as client:
        response = client.request(method, path.format(meter=served.healthy()[0]))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]


def test_a_technician_may_not_edit_data_nor_a_billing_key_request_a_read(served: Served) -> None:
    meter = served.healthy()[0]
    with served.client(Role.BILLING) as client:
        assert client.post(f"/api/v1/meters/{meter}/reads", json={}).status_code == 403
    with served.client(Role.TECHNICIAN) as client:
        edit = {
            "channel": "1.0.1.8.0.255",
            "start": "2026-11-01T00:00:00+07:00",
            "end": "2026-11-01T01:00:00+07:00",
            "value_kwh": "0.1",
            "reason_code": "TEST",
        }
        assert client.post(f"/api/v1/meters/{meter}/edits", json=edit).status_code == 403
        assert client.put("/api/v1/plans/p", json={}).status_code == 403
        assert client.post("/api/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403


def test_a_wrong_or_revoked_key_is_refused(served: Served) -> None:
    keys = KeyService(served.store)
    _, key = keys.create("short-lived", Role.OPERATOR, actor=TEST_ACTOR)
    with served.client(key=key) as client:
        assert client.get("/api/v1/plans").status_code == 200
        keys.revoke("short-lived", actor=TEST_ACTOR)
        assert client.get("/api/v1/plans").status_code == 401
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in (forged, "not-a-key", "hk_000000000000_" + "x" * 43):
        with served.client(key=bad) as client:
            assert client.get("/api/v1/plans").status_code == 401


def test_an_admin_creates_and_revokes_keys_and_each_is_audited(served: Served) -> None:
    with served.client(Role.ADMIN) as client:
        made = client.post("/api/v1/keys", json={"name": "cmis-billing", "role": "billing"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert key.startswith("hk_")
        listed = client.get("/api/v1/keys").json()
        assert "key" not in next(k for k in listed if k["name"] == "cmis-billing")
        assert (
            client.post(
                "/api/v1/keys", json={"name": "cmis-billing", "role": "billing"}
            ).status_code
            == 409
        )
        with served.client(key=key) as billing:
            assert billing.get("/api/v1/plans").status_code == 403
        assert client.post("/api/v1/keys/cmis-billing/revoke").status_code == 200
        with served.client(key=key) as billing:
            assert billing.get("/api/v1/billing?period=2026-11&limit=1").status_code == 401
    actions = [(e.actor, e.action, e.target) for e in served.context.audit.recent(20)]
    assert (f"test-{Role.ADMIN}", "key.create", "key:cmis-billing") in actions
    assert (f"test-{Role.ADMIN}", "key.revoke", "key:cmis-billing") in actions


def test_health_and_metrics_need_no_key(served: Served) -> None:
    with served.client() as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["database"] == "ok"
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert "headend_api_request_seconds_bucket" in text
    assert "headend_sessions_in_flight" in text
    assert 'headend_sessions_total{outcome="succeeded"}' in text or "headend_sessions" in text
