"""Collection reports over what the job service stores: failed reads, success rates, findings."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.domain.reports import FailedRead
from headend.services.access.audit import Actor
from headend.services.collection.jobs import AttemptOutcome, JobService
from headend.services.registry.imports import import_registry
from headend.services.reporting.reports import FAILED_READ_COLUMNS, ReportError, ReportService
from headend.services.validation.edits import EditService
from headend.store.base import table_of
from headend.store.models import Gateway, Meter, ReadAttempt, ReadJob
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.scheduling.simfleet_store import make_fleet, serving_into_store
from tests.services.validation.test_edits import GAP, OTHER, PROFILES, land_and_validate

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 25)
OK = None  # an attempt that succeeded
TIMEOUT = FailureCategory.RESPONSE_TIMEOUT  # retried, up to 4 attempts
REFUSED = FailureCategory.AUTHENTICATION_FAILED  # not retried
# meters of the sample registry
GPRS_1, GPRS_2, GPRS_3, GPRS_4 = "2611000001", "2611000002", "2611000003", "2611000004"
BUS_1, BUS_2 = "2611000100", "2611000101"  # three_phase_tou on rs485-substation-a
SERIAL_1 = "2611000200"  # three_phase_tou on serial-0


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def registry(store: sessionmaker[Session]) -> None:
    import_registry(
        store, REPO / "fixtures" / "sample_fleet.csv", SecretBox(TEST_SECRET_KEY), PROFILES
    )


def collect(
    store: sessionmaker[Session],
    at: datetime,
    attempts: dict[str, Sequence[FailureCategory | None]],
    kind: ReadKind = ReadKind.FULL,
) -> None:
    """One read job per meter queued at ``at``; each attempt ends as listed (None: it read
    the meter), retries following the job service's own policy, ten minutes apart."""
    clock = Clock(at)
    jobs = JobService(store, clock=clock, retry_delay_scale=0.01, rng=random.Random(1))
    ids = jobs.queue_for_meters(list(attempts), kind, skip_if_active=False)
    left = {meter: list(outcomes) for meter, outcomes in attempts.items()}
    while not jobs.all_finished(ids):
        due = [job for job in jobs.due(1000, set()) if job.id in ids]
        assert all(jobs.start_many(due))
        ended = []
        for job in due:
            failure = left[job.meter_id].pop(0)
            ended.append(
                (
                    job,
                    AttemptOutcome(
                        started_at=clock.now,
                        finished_at=clock.now + timedelta(seconds=4),
                        succeeded=failure is None,
                        category=failure,
                        detail=f"{failure} on attempt {job.attempts + 1}" if failure else None,
                    ),
                )
            )
        jobs.finish_many(ended)
        clock.now += timedelta(minutes=10)
    assert all(not outcomes for outcomes in left.values()), left


def report(store: sessionmaker[Session]) -> ReportService:
    return ReportService(store, TZ)


def by_meter(rows: list[FailedRead]) -> dict[str, FailedRead]:
    return {row.meter_id: row for row in rows}


def test_a_meter_that_failed_all_day_is_in_the_report_with_its_category(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    collect(
        store,
        local(DAY, 2),
        {GPRS_1: [TIMEOUT] * 4, GPRS_2: [OK], BUS_1: [REFUSED]},
    )
    rows = by_meter(report(store).failed_reads(DAY))
    assert set(rows) == {GPRS_1, BUS_1}
    failed = rows[GPRS_1]
    assert (failed.gateway, failed.gateway_kind.value, failed.device_profile) == (
        "gprs-0001",
        "tcp",
        "single_phase_residential",
    )
    assert (failed.category, failed.detail) == (TIMEOUT, "response_timeout on attempt 4")
    assert (failed.attempts, failed.consecutive_failures) == (4, 4)
    assert failed.last_attempt_at == local(DAY, 2, 30)
    assert failed.last_success_at is None
    assert failed.job_state is JobState.FAILED
    assert rows[BUS_1].category is REFUSED and rows[BUS_1].gateway_kind.value == "tcp_serial"


def test_a_meter_read_on_a_retry_is_not_in_the_report(store: sessionmaker[Session]) -> None:
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [TIMEOUT, TIMEOUT, OK]})
    assert report(store).failed_reads(DAY) == []


def test_a_meter_that_failed_after_reading_earlier_that_day_is_in_the_report(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [OK], GPRS_2: [REFUSED]})
    collect(store, local(DAY, 20), {GPRS_1: [REFUSED], GPRS_2: [OK]})
    (row,) = report(store).failed_reads(DAY)
    assert row.meter_id == GPRS_1
    assert (row.attempts, row.consecutive_failures) == (2, 1)
    assert row.last_success_at == local(DAY, 2)


def test_consecutive_failures_count_back_to_the_last_success_on_an_earlier_day(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    collect(store, local(before, 2), {GPRS_1: [OK]})
    collect(store, local(DAY, 2), {GPRS_1: [REFUSED], GPRS_2: [REFUSED]})
    collect(store, local(DAY, 14), {GPRS_1: [TIMEOUT] * 4, GPRS_2: [REFUSED]})
    collect(store, local(after, 2), {GPRS_1: [OK], GPRS_2: [REFUSED]})
    rows = by_meter(report(store).failed_reads(DAY))
    assert (rows[GPRS_1].consecutive_failures, rows[GPRS_1].attempts) == (5, 5)
    assert rows[GPRS_1].last_success_at == local(before, 2)
    assert rows[GPRS_1].category is TIMEOUT  # the last attempt's
    assert (rows[GPRS_2].consecutive_failures, rows[GPRS_2].last_success_at) == (2, None)
    # sorted by consecutive failures, most first
    assert [row.meter_id for row in report(store).failed_reads(DAY)] == [GPRS_1, GPRS_2]
    # the next day: GPRS_1 was read again, GPRS_2 goes on failing
    (row,) = report(store).failed_reads(after)
    assert (row.meter_id, row.consecutive_failures, row.attempts) == (GPRS_2, 3, 1)


def test_meters_with_as_many_failures_are_sorted_by_meter_id(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    collect(store, local(DAY, 2), {m: [REFUSED] for m in (GPRS_4, GPRS_2, BUS_2, GPRS_3)})
    collect(store, local(DAY, 3), {BUS_2: [REFUSED]})
    ids = [row.meter_id for row in report(store).failed_reads(DAY)]
    assert ids == [BUS_2, GPRS_2, GPRS_3, GPRS_4]


def test_an_attempt_counts_on_the_local_day_it_started(store: sessionmaker[Session]) -> None:
    registry(store)
    collect(store, local(DAY - timedelta(days=1), 23, 30), {GPRS_1: [REFUSED]})
    collect(store, local(DAY, 0, 30), {GPRS_2: [REFUSED]})  # still the 24th in UTC
    assert [r.meter_id for r in report(store).failed_reads(DAY)] == [GPRS_2]
    assert [r.meter_id for r in report(store).failed_reads(DAY - timedelta(days=1))] == [GPRS_1]


def test_the_report_is_filtered_by_gateway_device_profile_and_category(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    collect(
        store,
        local(DAY, 2),
        {GPRS_1: [TIMEOUT] * 4, BUS_1: [REFUSED], BUS_2: [TIMEOUT] * 4, SERIAL_1: [REFUSED]},
    )
    reports = report(store)

    def ids(**filters: str) -> set[str]:
        return {row.meter_id for row in reports.failed_reads(DAY, **filters)}  # type: ignore[arg-type]

    assert ids(gateway="rs485-substation-a") == {BUS_1, BUS_2}
    assert ids(device_profile="three_phase_tou") == {BUS_1, BUS_2, SERIAL_1}
    assert ids(category="response_timeout") == {GPRS_1, BUS_2}
    assert ids(gateway="rs485-substation-a", category="authentication_failed") == {BUS_1}
    assert ids(gateway="no-such-gateway") == set()
    with pytest.raises(ReportError, match="unknown failure category") as refused:
        reports.failed_reads(DAY, category="on_fire")
    assert refused.value.field == "category"


def test_the_report_can_keep_to_one_read_kind(store: sessionmaker[Session]) -> None:
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [OK], GPRS_2: [REFUSED]})
    collect(store, local(DAY, 9), {GPRS_1: [REFUSED]}, kind=ReadKind.CLOCK)  # on demand
    assert {r.meter_id for r in report(store).failed_reads(DAY)} == {GPRS_1, GPRS_2}
    scheduled = report(store).failed_reads(DAY, kind=ReadKind.FULL)
    assert [r.meter_id for r in scheduled] == [GPRS_2]


def test_the_csv_has_a_header_and_a_line_per_meter(store: sessionmaker[Session]) -> None:
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [TIMEOUT] * 4, BUS_1: [REFUSED]})
    rows = report(store).failed_reads(DAY)
    out = io.StringIO()
    ReportService.failed_reads_csv(rows, out)
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert out.getvalue().splitlines()[0] == ",".join(FAILED_READ_COLUMNS)
    assert [line["meter_id"] for line in lines] == [GPRS_1, BUS_1]
    first = lines[0]
    assert first["category"] == "response_timeout" and first["gateway_kind"] == "tcp"
    assert first["last_attempt_at"] == local(DAY, 2, 30).isoformat()
    assert (first["last_success_at"], first["consecutive_failures"], first["attempts"]) == (
        "",
        "4",
        "4",
    )
    # text a spreadsheet would run as a formula is written as text
    forged = rows[1].model_copy(update={"detail": "=HYPERLINK(1)"})
    out = io.StringIO()
    ReportService.failed_reads_csv([forged], out)
    assert next(csv.DictReader(io.StringIO(out.getvalue())))["detail"] == "'=HYPERLINK(1)"


def test_success_rates_count_meters_attempted_and_read_per_local_day_and_group(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    second = DAY + timedelta(days=1)
    collect(
        store,
        local(DAY, 2),
        {GPRS_1: [OK], GPRS_2: [TIMEOUT, OK], GPRS_3: [REFUSED], BUS_1: [OK], BUS_2: [REFUSED]},
    )
    collect(store, local(DAY, 20), {GPRS_1: [OK]})  # read twice: counted once
    collect(store, local(second, 2), {GPRS_1: [OK], GPRS_3: [REFUSED]})
    reports = report(store)
    everything = reports.success_rates(DAY, second + timedelta(days=1), "all")
    assert [(r.day, r.group, r.attempted, r.succeeded, r.failed, r.rate) for r in everything] == [
        (DAY, None, 5, 3, 2, Decimal("0.6")),
        (second, None, 2, 1, 1, Decimal("0.5")),
    ]  # the third day had no attempt: no row
    profiles = reports.success_rates(DAY, DAY, "device_profile")
    assert [(r.group, r.attempted, r.succeeded, r.rate) for r in profiles] == [
        ("single_phase_residential", 3, 2, Decimal("0.6667")),
        ("three_phase_tou", 2, 1, Decimal("0.5")),
    ]
    gateways = reports.success_rates(DAY, DAY, "gateway")
    assert [(r.group, r.attempted, r.succeeded) for r in gateways] == [
        ("gprs-0001", 1, 1),
        ("gprs-0002", 1, 1),
        ("gprs-0003", 1, 0),
        ("rs485-substation-a", 2, 1),
    ]


@pytest.mark.parametrize(
    ("start", "end", "by", "field"),
    [
        (DAY, DAY - timedelta(days=1), "all", "end"),
        (DAY, DAY + timedelta(days=400), "all", "end"),
        (DAY, DAY, "feeder", "by"),
    ],
)
def test_success_rates_refuse_a_range_or_grouping_they_cannot_report(
    store: sessionmaker[Session], start: date, end: date, by: str, field: str
) -> None:
    with pytest.raises(ReportError) as refused:
        report(store).success_rates(start, end, by)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_open_findings_are_listed_oldest_first_and_paged_by_id(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    day = [i for i in range(97) if i not in GAP]
    land_and_validate(store, {GPRS_3: day, OTHER: day[:60]})
    reports = report(store)
    everything = reports.open_findings()
    assert len(everything) >= 2 and {f.meter_id for f in everything} == {GPRS_3, OTHER}
    assert [f.id for f in everything] == sorted(f.id for f in everything)
    paged, after = [], None
    while page := reports.open_findings(limit=2, after_id=after):
        paged.extend(page)
        after = page[-1].id
    assert paged == everything
    mine = reports.open_findings(meter_id=GPRS_3)
    assert mine == [f for f in everything if f.meter_id == GPRS_3]
    rule = everything[0].rule
    assert reports.open_findings(rule=rule) == [f for f in everything if f.rule == rule]
    EditService(store).resolve_finding(everything[0].id, actor=Actor("lan.nguyen"))
    assert reports.open_findings() == everything[1:]
    with pytest.raises(ReportError) as refused:
        reports.open_findings(limit=0)
    assert refused.value.field == "limit"


def test_a_faulty_simulated_meter_is_reported_under_its_category_and_healthy_ones_are_not(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 3, faults="reject=1", transport="wrapper", auth="lls")
    faulty = next(s.meter_id for s in specs if s.faults)
    with serving_into_store(specs, store) as fleet:
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.REGISTERS)
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=60))
        finally:
            dispatcher.close()
        day = fleet.clock.now.astimezone(TZ).date()
    rows = report(store).failed_reads(day)
    assert [(r.meter_id, r.category) for r in rows] == [
        (faulty, FailureCategory.AUTHENTICATION_FAILED)
    ]
    (rate,) = report(store).success_rates(day, day, "all")
    assert (rate.attempted, rate.succeeded) == (3, 2)  # the two healthy meters were read


@pytest.mark.slow
def test_the_failed_read_report_of_ten_thousand_meters_lists_each_failing_one_once(
    store: sessionmaker[Session],
) -> None:
    meters, gateways = 10_000, 100
    start = local(DAY, 2)
    with store() as session, session.begin():
        session.execute(
            insert(table_of(Gateway)),
            [{"id": g + 1, "name": f"gw-{g:03}", "kind": "tcp"} for g in range(gateways)],
        )
        session.execute(
            insert(table_of(Meter)),
            [
                {
                    "id": m + 1,
                    "meter_id": f"M{m:07}",
                    "gateway_id": m % gateways + 1,
                    "transport": "wrapper",
                    "server_physical": m,
                    "device_profile": "single_phase_residential",
                }
                for m in range(meters)
            ],
        )
        jobs: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        for m in range(meters):
            failing = m % 10 == 0  # one meter in ten fails all day, over four attempts
            for day in (-1, 0):  # yesterday's read too, so history is looked at
                job_id = len(jobs) + 1
                state = JobState.FAILED if failing and day == 0 else JobState.SUCCEEDED
                jobs.append({"id": job_id, "meter_id": m + 1, "kind": "full", "state": state})
                tries = 4 if failing and day == 0 else 1
                for n in range(tries):
                    at = start + timedelta(days=day, minutes=10 * n, seconds=m % 600)
                    attempts.append(
                        {
                            "job_id": job_id,
                            "number": n + 1,
                            "started_at": at,
                            "finished_at": at + timedelta(seconds=5),
                            "succeeded": tries == 1,
                            "failure_category": None if tries == 1 else "response_timeout",
                        }
                    )
        session.execute(insert(table_of(ReadJob)), jobs)
        session.execute(insert(table_of(ReadAttempt)), attempts)
    rows = report(store).failed_reads(DAY)
    assert len(rows) == meters // 10
    assert len({r.meter_id for r in rows}) == len(rows)
    assert {(r.attempts, r.consecutive_failures) for r in rows} == {(4, 4)}


def test_a_meter_that_failed_on_a_bug_of_ours_is_marked_internal_in_the_report(
    store: sessionmaker[Session],
) -> None:
    registry(store)
    collect(store, local(DAY, 2), {GPRS_1: [FailureCategory.INTERNAL], GPRS_2: [REFUSED]})
    rows = by_meter(report(store).failed_reads(DAY))
    assert rows[GPRS_1].internal and rows[GPRS_1].job_state is JobState.FAILED
    assert not rows[GPRS_2].internal
    assert [r.meter_id for r in report(store).failed_reads(DAY, category="internal")] == [GPRS_1]
