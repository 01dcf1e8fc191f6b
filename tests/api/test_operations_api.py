"""Operators: failed-read reports, findings and edits, read plans and the registry."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

from headend.domain.enums import Role
from tests.served import Served

A_PLUS = "1.0.1.8.0.255"


def test_the_failed_read_report_lists_the_unreachable_meter_with_its_category(
    served: Served,
) -> None:
    day = served.fleet.clock.now.astimezone(served.context.settings.tz).date()
    with served.client(Role.OPERATOR) as client:
        rows = client.get("/api/v1/reports/failed-reads", params={"date": str(day)}).json()
        as_csv = client.get(
            "/api/v1/reports/failed-reads", params={"date": str(day), "format": "csv"}
        )
    unreachable = next(m for m, kind in served.faulty.items() if kind == "no_answer")
    by_meter = {r["meter_id"]: r for r in rows}
    assert unreachable in by_meter
    assert by_meter[unreachable]["category"] in ("connect_timeout", "response_timeout")
    assert by_meter[unreachable]["consecutive_failures"] >= 1
    assert not set(by_meter) & set(served.healthy())
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert unreachable in {r["meter_id"] for r in table}


def test_the_read_success_rate_by_gateway_counts_every_meter_attempted(served: Served) -> None:
    day = served.fleet.clock.now.astimezone(served.context.settings.tz).date()
    with served.client(Role.OPERATOR) as client:
        rates = client.get(
            "/api/v1/reports/read-success",
            params={"start": str(day - timedelta(days=1)), "end": str(day), "by": "all"},
        ).json()
    attempted = sum(r["attempted"] for r in rates if r["day"] == str(day))
    assert attempted == len(served.fleet.specs)


def test_an_operator_edits_intervals_and_the_edit_is_a_new_version_audited(
    served: Served,
) -> None:
    meter = served.healthy()[-1]
    tz = served.context.settings.tz
    end = served.fleet.clock.now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    start = end - timedelta(hours=1)
    window = {"start": start.astimezone(tz).isoformat(), "end": end.astimezone(tz).isoformat()}
    with served.client(Role.OPERATOR) as client:
        edit = client.post(
            f"/api/v1/meters/{meter}/edits",
            json={
                **window,
                "channel": A_PLUS,
                "value_kwh": "0.25",
                "reason_code": "CUST_CALL",
                "comment": "customer away, meter confirmed",
            },
        )
        assert edit.status_code == 201, edit.text
        current = client.get(
            f"/api/v1/meters/{meter}/intervals", params={**window, "channel": A_PLUS}
        ).json()
        raw = client.get(
            f"/api/v1/meters/{meter}/intervals",
            params={**window, "channel": A_PLUS, "version": "raw"},
        ).json()
        assert {r["quality"] for r in current} == {"EDITED"}
        assert {Decimal(r["value_kwh"]) for r in current} == {Decimal("0.25")}
        assert all(r["version"] > 0 and r["created_by"] == f"test-{Role.OPERATOR}" for r in current)
        assert {r["version"] for r in raw} == {0}
        reverted = client.post(f"/api/v1/edits/{edit.json()['id']}/revert")
        assert reverted.status_code == 200, reverted.text
        again = client.get(
            f"/api/v1/meters/{meter}/intervals", params={**window, "channel": A_PLUS}
        ).json()
    assert [r["value_kwh"] for r in again] == [r["value_kwh"] for r in raw]
    actions = [(e.actor, e.action) for e in served.context.audit.recent(50)]
    assert (f"test-{Role.OPERATOR}", "interval.edit") in actions
    assert (f"test-{Role.OPERATOR}", "interval.revert") in actions


def test_open_findings_are_listed_and_one_can_be_resolved(served: Served) -> None:
    with served.client(Role.OPERATOR) as client:
        findings = client.get("/api/v1/reports/findings").json()
        if not findings:
            return  # the fleet's outage produced no finding on this run's dates
        first = findings[0]
        resolved = client.post(f"/api/v1/findings/{first['id']}/resolve", json={"note": "ok"})
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["status"] == "resolved"
        remaining = client.get("/api/v1/reports/findings").json()
    assert first["id"] not in {f["id"] for f in remaining}


def test_read_plans_are_created_changed_and_deactivated(served: Served) -> None:
    plan = {"cron": "5 0 * * *", "kinds": ["registers"], "selector": {"all": True}}
    with served.client(Role.OPERATOR) as client:
        made = client.put("/api/v1/plans/nightly-registers", json=plan)
        assert made.status_code == 200, made.text
        changed = client.put(
            "/api/v1/plans/nightly-registers",
            json={**plan, "cron": "0 */4 * * *", "kinds": ["load_profile"]},
        ).json()
        assert (changed["cron"], changed["kinds"]) == ("0 */4 * * *", ["load_profile"])
        bad = client.put("/api/v1/plans/broken", json={**plan, "cron": "every day"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cron"
        off = client.post("/api/v1/plans/nightly-registers/deactivate").json()
        assert off["active"] is False
        assert client.post("/api/v1/plans/never-made/deactivate").status_code == 404
        names = {p["name"]: p for p in client.get("/api/v1/plans").json()}
    assert names["nightly-registers"]["active"] is False
    assert "broken" not in names


def test_the_registry_is_listed_by_cursor_and_a_meter_created_without_secrets_shown(
    served: Served,
) -> None:
    with served.client(Role.OPERATOR) as client:
        first = client.get("/api/v1/meters", params={"limit": 3}).json()
        rest = client.get("/api/v1/meters", params={"after": first[-1]["meter_id"]}).json()
        ids = [m["meter_id"] for m in first + rest]
        assert ids == sorted(ids) and set(served.fleet.specs) <= set(ids)
        template = dict(first[0])
        template.pop("meter_id")
        template.update(
            auth="lls",
            lls_password="12345678",
            secret_ref="",
            status="inactive",
            gateway_port=str(int(template["gateway_port"]) + 1000),
            gateway=template["gateway"] + "-new",
        )
        made = client.put("/api/v1/meters/NEW-METER-1", json=template)
        assert made.status_code == 200, made.text
        shown = client.get("/api/v1/meters/NEW-METER-1").json()
        assert shown["auth"] == "lls" and "lls_password" not in shown
        assert shown["firmware"] == ""  # never read
        meter = served.healthy()[0]
        entry = client.get(f"/api/v1/meters/{meter}").json()
        assert entry["firmware"] == "1.0.0"  # as its last read reported it
        off = client.post(f"/api/v1/meters/{meter}/deactivate")
        assert off.json()["status"] == "inactive"
        entry.pop("meter_id")
        # sent back as shown: the firmware is read-only, the meter's own is kept
        sent = {**entry, "status": "active", "firmware": "9.9"}
        back = client.put(f"/api/v1/meters/{meter}", json=sent)
        assert (back.json()["status"], back.json()["firmware"]) == ("active", "1.0.0")
    audit = [(e.action, e.target) for e in served.context.audit.recent(50)]
    assert ("meter.put", "meter:NEW-METER-1") in audit
    detail = next(
        e.detail for e in served.context.audit.recent(50) if e.target == "meter:NEW-METER-1"
    )
    assert detail["fields"]["lls_password"] == "***"
