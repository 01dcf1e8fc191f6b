"""Billing records over HTTP, compared with what the simulated meters measured."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time, timedelta
from decimal import Decimal

from headend.domain.enums import Role
from tests.served import Served


def _day(served: Served) -> tuple[datetime, datetime]:
    """Yesterday in the utility's time zone: inside the two days collected."""
    tz = served.context.settings.tz
    today = served.fleet.clock.now.astimezone(tz).date()
    start = datetime.combine(today - timedelta(days=1), time(0), tz)
    return start, start + timedelta(days=1)


def _query(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def test_each_healthy_meters_consumption_and_tou_split_equal_the_simulators_truth(
    served: Served,
) -> None:
    start, end = _day(served)
    with served.client(Role.BILLING) as client:
        for meter in served.healthy():
            response = client.get(f"/api/v1/meters/{meter}/billing", params=_query(start, end))
            assert response.status_code == 200, response.text
            record = response.json()
            truth = served.fleet.data(meter).truth(start, end)
            multiplier = Decimal(record["multiplier"])
            assert Decimal(record["import_energy"]["consumption_kwh"]) == (
                truth.consumption["A+"] * multiplier
            ), meter
            tou = record["tou"]
            assert Decimal(tou["normal_kwh"]) == truth.tariffs["T1"] * multiplier, meter
            assert Decimal(tou["peak_kwh"]) == truth.tariffs["T2"] * multiplier, meter
            assert Decimal(tou["off_peak_kwh"]) == truth.tariffs["T3"] * multiplier, meter
            intervals = record["import_energy"]["intervals"]
            assert intervals["expected"] == 96 * 900 // served.fleet.specs[meter].capture_period_s
            assert intervals["missing"] == 0
            assert record["period"]["timezone"] == "Asia/Ho_Chi_Minh"


def test_a_period_with_an_outage_is_marked_estimated_not_actual(served: Served) -> None:
    meter = next(m for m, kind in served.faulty.items() if kind == "outage")
    tz = served.context.settings.tz
    now = served.fleet.clock.now
    note = next(
        n
        for n in served.fleet.data(meter).truth(now - timedelta(days=2), now).faults
        if n.kind == "outage"
    )
    day = note.start.astimezone(tz).date()
    start = datetime.combine(day, time(0), tz)
    with served.client(Role.BILLING) as client:
        record = client.get(
            f"/api/v1/meters/{meter}/billing", params=_query(start, start + timedelta(days=1))
        ).json()
    assert record["quality"] != "actual", record
    counts = record["import_energy"]["intervals"]
    assert counts["estimated"] + counts["missing"] + counts["suspect"] > 0, counts
    assert record["reason"]


def test_the_version_of_a_record_changes_when_an_edit_changes_its_numbers(served: Served) -> None:
    meter = served.healthy()[0]
    start, end = _day(served)
    path = f"/api/v1/meters/{meter}/billing"
    with served.client(Role.OPERATOR) as client:
        before = client.get(path, params=_query(start, end)).json()
        assert client.get(path, params=_query(start, end)).json()["version"] == before["version"]
        edit = client.post(
            f"/api/v1/meters/{meter}/edits",
            json={
                "channel": "1.0.1.8.0.255",
                "start": (start + timedelta(hours=10)).isoformat(),
                "end": (start + timedelta(hours=11)).isoformat(),
                "value_kwh": "1.5",
                "reason_code": "TEST",
            },
        )
        assert edit.status_code == 201, edit.text
        after = client.get(path, params=_query(start, end)).json()
        client.post(f"/api/v1/edits/{edit.json()['id']}/revert")
    assert after["version"] != before["version"]
    assert after["quality"] != "actual"


def test_the_bulk_stream_returns_every_meter_in_order_and_resumes_after_a_cursor(
    served: Served,
) -> None:
    start, end = _day(served)
    with served.client(Role.BILLING) as client:
        with client.stream("GET", "/api/v1/billing", params=_query(start, end)) as response:
            assert response.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in response.iter_lines() if line]
        ids = [r["meter_id"] for r in lines]
        assert ids == sorted(served.fleet.specs)
        rest = client.get(
            "/api/v1/billing", params={**_query(start, end), "after": ids[2], "limit": 3}
        )
        assert [json.loads(x)["meter_id"] for x in rest.text.splitlines()] == ids[3:6]
        as_csv = client.get("/api/v1/billing", params={**_query(start, end), "format": "csv"})
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["meter_id"] for row in table] == ids
    one = next(r for r in lines if r["meter_id"] == served.healthy()[0])
    row = next(r for r in table if r["meter_id"] == served.healthy()[0])
    assert row["billable"] == ("true" if one["billable"] else "false")


def test_a_month_is_taken_in_the_utilitys_time_zone(served: Served) -> None:
    meter = served.healthy()[0]
    with served.client(Role.BILLING) as client:
        record = client.get(f"/api/v1/meters/{meter}/billing", params={"period": "2026-11"}).json()
    assert record["period"]["start"].startswith("2026-10-31T17:00:00")
    assert record["period"]["end"].startswith("2026-11-30T17:00:00")
    assert record["period"]["label"] == "2026-11"


def test_the_nem12_export_has_a_day_of_intervals_per_channel_with_quality(served: Served) -> None:
    start, end = _day(served)
    with served.client(Role.BILLING) as client:
        response = client.get("/api/v1/billing/nem12", params=_query(start, end))
    assert response.status_code == 200, response.text
    records = list(csv.reader(io.StringIO(response.text)))
    assert records[0][:2] == ["100", "NEM12"] and records[-1] == ["900"]
    nmis = {r[1] for r in records if r[0] == "200"}
    assert set(served.healthy()) <= nmis
    day_rows = [r for r in records if r[0] == "300"]
    assert day_rows and all(r[1] == start.strftime("%Y%m%d") for r in day_rows)
