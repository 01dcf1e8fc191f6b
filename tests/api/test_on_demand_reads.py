"""A technician's read of one meter, through the API, carried out by the dispatcher."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

from headend.domain.enums import Role
from tests.served import Served


def test_an_on_demand_read_of_a_simulated_meter_returns_its_values_within_seconds(
    served: Served,
) -> None:
    meter = served.healthy()[0]
    began = time.monotonic()
    with served.client(Role.TECHNICIAN) as client:
        queued = client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "registers"})
        assert queued.status_code == 202, queued.text
        job = queued.json()
        assert queued.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
        done = client.get(queued.headers["location"], params={"wait": 20}).json()
    took = time.monotonic() - began
    assert done["state"] == "succeeded", done
    (values,) = done["values"]
    assert values["serial_number"] == meter
    a_plus = values["registers"]["1.0.1.8.0.255"]
    now = served.fleet.clock.now
    truth = served.fleet.data(meter).truth(now - timedelta(days=1), now)
    scale = {"Wh": Decimal(1000), "kWh": Decimal(1)}[a_plus["unit"]]
    assert Decimal(a_plus["value"]) / scale == truth.registers_end["A+"]
    print(f"on-demand read answered in {took:.2f} s")  # shown with -s; not asserted


def test_an_on_demand_read_of_an_unreachable_meter_ends_failed_with_its_category(
    served: Served,
) -> None:
    meter = next(m for m, kind in served.faulty.items() if kind == "no_answer")
    with served.client(Role.TECHNICIAN) as client:
        queued = client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "clock"})
        assert queued.status_code == 202
        done = client.get(f"/api/v1/jobs/{queued.json()['job_id']}", params={"wait": 60}).json()
    assert done["state"] == "failed", done
    assert done["failure_category"] in ("connect_timeout", "response_timeout", "link_setup_failed")
    assert done["failure_detail"]


def test_a_load_profile_read_takes_a_range(served: Served) -> None:
    meter = served.healthy()[1]
    end = served.fleet.clock.now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=3)
    with served.client(Role.TECHNICIAN) as client:
        queued = client.post(
            f"/api/v1/meters/{meter}/reads",
            json={"kind": "load_profile", "start": start.isoformat(), "end": end.isoformat()},
        )
        assert queued.status_code == 202, queued.text
        done = client.get(f"/api/v1/jobs/{queued.json()['job_id']}", params={"wait": 20}).json()
    assert done["state"] == "succeeded", done
    rows = done["values"][0]["load_profile"]["rows"]
    assert rows and all(start <= datetime.fromisoformat(r[0]) <= end for r in rows)


def test_on_demand_reads_of_one_meter_are_rate_limited(served: Served) -> None:
    meter = served.healthy()[2]
    limit = served.context.rate_limit.limit
    with served.client(Role.TECHNICIAN) as client:
        answers = [
            client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "clock"})
            for _ in range(limit + 1)
        ]
        assert [a.status_code for a in answers[:-1]] == [202] * limit
        refused = answers[-1]
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "try again" in refused.json()["detail"]
        # another meter is not held back
        other = served.healthy()[3]
        assert (
            client.post(f"/api/v1/meters/{other}/reads", json={"kind": "clock"}).status_code == 202
        )
        for answer in answers[:-1]:
            client.get(f"/api/v1/jobs/{answer.json()['job_id']}", params={"wait": 20})


def test_each_read_request_is_audited_with_the_keys_name(served: Served) -> None:
    meter = served.healthy()[4]
    with served.client(Role.TECHNICIAN) as client:
        queued = client.post(f"/api/v1/meters/{meter}/reads", json={"kind": "clock"})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        client.get(f"/api/v1/jobs/{job_id}", params={"wait": 20})
    audited = [
        (e.actor, e.action, e.target)
        for e in served.context.audit.recent(200)
        if e.detail.get("job_id") == job_id
    ]
    assert audited == [(f"test-{Role.TECHNICIAN}", "read.request", f"meter:{meter}")]


def test_an_unknown_job_is_404(served: Served) -> None:
    with served.client(Role.TECHNICIAN) as client:
        response = client.get("/api/v1/jobs/999999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "there is no job 999999999"
