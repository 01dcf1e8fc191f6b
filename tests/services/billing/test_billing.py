"""Billing records from a store filled by real collection from simulated meters, then VEE,
compared with what the meters measured."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import OperationalError

from headend.domain.billing import BillingRecord, RecordQuality
from headend.domain.quality import Quality
from headend.domain.tou import EVN_2014, TouCalendar, TouPeriod
from headend.services.billing.service import (
    BillingService,
    PeriodError,
    UnknownMeter,
    parse_period,
)
from headend.services.billing.workers import PageWorkers
from headend.services.registry.imports import import_registry
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.simulator.devices import meter_data
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import store_versions
from tests.services.billing.fleet import (
    A_PLUS,
    ICT,
    Collected,
    add_version,
    collect,
    current_version,
    empty,
    split,
    tariffs,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def collected(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    """Ten meters read with three days of backfill and validated; one had an outage yesterday."""
    store = make_session_factory(engine)
    for attempt in range(3):  # another test run on this machine may take a port first
        empty(engine)
        try:
            specs, clock = collect(store, tmp_path_factory.mktemp("fleet"))
            break
        except OSError:
            if attempt == 2:
                raise
    rollups = RollupService(store, ICT, clock=clock)  # whole days are billed from rollups
    ValidationService(store, clock=clock, rollups=rollups).run_pending()
    yesterday = clock.now.astimezone(ICT).date() - timedelta(days=1)
    day = parse_period(yesterday.isoformat(), None, None, ICT)
    outage = next(s.meter_id for s in specs if s.faults)
    healthy = sorted(s.meter_id for s in specs if not s.faults)
    yield Collected(
        store, {s.meter_id: s for s in specs}, clock.now, day, outage, healthy[:-2], *healthy[-2:]
    )
    empty(engine)


def test_a_healthy_meters_daily_consumption_and_tou_split_equal_the_simulators_truth(
    collected: Collected,
) -> None:
    service = collected.service()
    for meter_id in collected.healthy:
        record = service.record(meter_id, collected.day)
        truth = collected.truth(meter_id, collected.day)
        assert record.import_energy.consumption_kwh == truth.consumption["A+"], meter_id
        assert record.import_energy.source == "registers"
        assert record.import_energy.interval_kwh == truth.consumption["A+"]
        assert record.export_energy is not None
        assert record.export_energy.consumption_kwh == truth.consumption["A-"]
        assert record.tou.source == "registers"  # the profiles' tariffs: T1..T3 settings
        assert split(record) == tariffs(truth), meter_id
        opening, closing = record.import_energy.opening, record.import_energy.closing
        assert opening is not None and closing is not None
        assert (opening.value_kwh, closing.value_kwh) == (
            truth.registers_start["A+"],
            truth.registers_end["A+"],
        )
        counts = record.import_energy.intervals
        assert counts.expected == 86400 // (collected.specs[meter_id].capture_period_s)
        assert counts.missing == counts.suspect == counts.unvalidated == 0
        # VEE may hold a household's sudden peak as a spike and put back the same value (E2)
        assert record.quality is (
            RecordQuality.ACTUAL if counts.actual == counts.expected else RecordQuality.ESTIMATED
        )
        assert record.billable
        assert (record.reason is None) == (record.quality is RecordQuality.ACTUAL)


def test_intervals_split_by_their_local_start_equal_the_truth_when_no_tariff_read_is_at_hand(
    collected: Collected,
) -> None:
    # boundaries off midnight: no billing snapshot there, so registers come from the load
    # profile's captures and the split from the intervals on the EVN calendar
    start = collected.day.start - timedelta(hours=17, minutes=50)
    period = parse_period(
        None,
        start.astimezone(ICT).isoformat(),
        (collected.day.end - timedelta(hours=5, minutes=20)).astimezone(ICT).isoformat(),
        ICT,
    )
    for meter_id in collected.healthy:
        record = collected.service().record(meter_id, period)
        truth = collected.truth(meter_id, period)
        assert record.tou.source == "intervals"
        assert split(record) == tariffs(truth), meter_id
        assert record.import_energy.consumption_kwh == truth.consumption["A+"]
        opening = record.import_energy.opening
        assert opening is not None and opening.source == "load_profile"
        assert opening.read_at == truth.registers_at[0]


def test_the_maximum_demand_is_the_registers_when_it_fell_in_the_period(
    collected: Collected,
) -> None:
    day = collected.day
    month = datetime.combine(day.start.astimezone(ICT).date().replace(day=1), time(), ICT)
    to_date = parse_period(None, month.isoformat(), day.end.astimezone(ICT).isoformat(), ICT)
    for meter_id in collected.healthy:
        watts, at = meter_data(collected.specs[meter_id]).max_demand(day.end)
        # the month to date: the register's maximum is the period's
        record = collected.service().record(meter_id, to_date)
        assert record.max_demand is not None, meter_id
        assert (record.max_demand.kw, record.max_demand.at) == (Decimal(watts) / 1000, at)
        # one day: only if the month's maximum so far came on that day
        demand = collected.service().record(meter_id, day).max_demand
        if day.start < at <= day.end:
            assert demand == record.max_demand
        else:
            assert demand is None


def test_the_multiplier_scales_consumption_and_thesplit(collected: Collected) -> None:
    meter_id = next(
        (m for m in collected.healthy if collected.specs[m].profile == "three_phase_tou"),
        collected.healthy[0],
    )
    truth = collected.truth(meter_id, collected.day)
    with collected.store() as session, session.begin():
        session.execute(
            update(Meter)
            .where(Meter.meter_id == meter_id)
            .values(ct_ratio=Decimal(40), vt_ratio=Decimal("1.5"))
        )
    try:
        record = collected.service().record(meter_id, collected.day)
    finally:
        with collected.store() as session, session.begin():
            session.execute(
                update(Meter).where(Meter.meter_id == meter_id).values(ct_ratio=1, vt_ratio=1)
            )
    assert record.multiplier == 60
    assert record.import_energy.consumption_kwh == truth.consumption["A+"] * 60
    assert split(record) == {k: v * 60 for k, v in tariffs(truth).items()}
    opening = record.import_energy.opening
    assert opening is not None and opening.value_kwh == truth.registers_start["A+"]  # as shown


def test_a_meter_with_a_gap_vee_estimated_is_billable_on_estimates_from_its_registers(
    collected: Collected,
) -> None:
    record = collected.service().record(collected.outage, collected.day)
    truth = collected.truth(collected.outage, collected.day)
    counts = record.import_energy.intervals
    assert counts.estimated > 0 and counts.missing == 0
    assert record.quality is RecordQuality.ESTIMATED
    assert record.billable
    assert record.reason is not None
    assert f"{counts.estimated} of {counts.expected} import intervals estimated" in record.reason
    # the registers did not move while the power was off: consumption is what was measured
    assert record.import_energy.consumption_kwh == truth.consumption["A+"]


def test_a_period_before_the_collected_data_is_partial_and_says_what_is_missing(
    collected: Collected,
) -> None:
    start = collected.day.start - timedelta(days=2)
    period = parse_period(
        None, start.astimezone(ICT).isoformat(), collected.day.end.isoformat(), ICT
    )
    record = collected.service().record(collected.healthy[0], period)
    counts = record.import_energy.intervals
    assert counts.missing > 0
    assert record.quality is RecordQuality.PARTIAL and not record.billable
    assert record.reason is not None
    assert "no import register read at the period start" in record.reason
    assert f"{counts.missing} of {counts.expected} import intervals missing" in record.reason
    assert record.import_energy.consumption_kwh is None


def test_a_day_with_no_data_is_missing(collected: Collected) -> None:
    day = (collected.day.start - timedelta(days=6)).astimezone(ICT).date()
    record = collected.service().record(
        collected.healthy[0], parse_period(str(day), None, None, ICT)
    )
    assert record.quality is RecordQuality.MISSING and not record.billable
    assert record.import_energy.opening is None and record.tou.peak_kwh is None


def test_the_version_changes_when_an_interval_gets_a_new_version_and_not_otherwise(
    collected: Collected,
) -> None:
    meter_id, day, service = collected.for_versions, collected.day, collected.service()
    first = service.record(meter_id, day)
    assert service.record(meter_id, day).version == first.version
    ValidationService(collected.store, clock=lambda: collected.now).run_pending()
    assert service.record(meter_id, day) == first  # nothing new to validate: nothing changed

    # a version of an interval outside the period does not touch the period's record
    add_version(collected.store, meter_id, day.start, Quality.VERIFIED)
    assert service.record(meter_id, day).version == first.version

    # confirmed by a person: the same value, a new version number
    inside = day.start + timedelta(hours=12)
    add_version(collected.store, meter_id, inside, Quality.VERIFIED)
    confirmed = service.record(meter_id, day)
    assert confirmed.version != first.version
    assert confirmed.import_energy == first.import_energy

    # an edit changes the interval: the record says so, the registers still bill
    old = current_version(collected.store, meter_id, inside).value
    assert old is not None
    add_version(collected.store, meter_id, inside, Quality.EDITED, old + Decimal("1.5"))
    edited = service.record(meter_id, day)
    assert edited.version not in (first.version, confirmed.version)
    assert edited.import_energy.intervals.edited == 1
    assert edited.import_energy.interval_kwh == first.import_energy.interval_kwh + Decimal("1.5")
    assert edited.import_energy.consumption_kwh == first.import_energy.consumption_kwh
    assert edited.quality is RecordQuality.ESTIMATED and edited.billable
    assert service.record(meter_id, day).version == edited.version


def test_a_suspect_interval_makes_the_record_not_billable(collected: Collected) -> None:
    meter_id, day = collected.for_suspect, collected.day
    add_version(collected.store, meter_id, day.start + timedelta(hours=3), Quality.SUSPECT)
    record = collected.service().record(meter_id, day)
    assert record.quality is RecordQuality.SUSPECT and not record.billable
    expected = record.import_energy.intervals.expected
    assert record.reason == f"1 of {expected} import intervals suspect"


def test_records_pages_through_every_meter_in_order_with_a_cursor(
    collected: Collected, engine: Engine
) -> None:
    ids = sorted(collected.specs)
    whole = list(collected.service().records(collected.day))
    assert [r.meter_id for r in whole] == ids
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append("")

    event.listen(engine, "before_cursor_execute", count)
    try:
        paged = list(collected.service(page_size=3).records(collected.day))
        paged_statements = len(statements)
        statements.clear()
        list(collected.service(page_size=100).records(collected.day))
        one_page_statements = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert paged == whole
    assert one_page_statements <= 6  # a few statements for the page, not a few per meter
    assert paged_statements <= 6 * 4
    service = collected.service(page_size=3)
    assert [r.meter_id for r in service.records(collected.day, after=ids[2], limit=4)] == ids[3:7]
    assert list(service.records(collected.day, after=ids[-1])) == []
    assert [r.meter_id for r in service.records(collected.day, limit=1)] == ids[:1]


def test_pages_built_by_worker_processes_are_the_records_built_in_this_one(
    collected: Collected, database_url: str, tmp_path: Path
) -> None:
    ids = sorted(collected.specs)
    here = collected.service(page_size=3)
    workers = PageWorkers(database_url, ICT, 2, page_size=3)
    there = BillingService(collected.store, ICT, page_size=3, workers=workers)
    month = parse_period(collected.day.start.astimezone(ICT).strftime("%Y-%m"), None, None, ICT)
    try:
        for period in (collected.day, month):
            for after, limit in ((None, None), (ids[2], 4), (ids[-1], None), (None, 1)):
                expected = list(here.records_json(period, after, limit))
                assert list(there.records_json(period, after, limit)) == expected
                rows = [r.csv_row() for r in here.records(period, after, limit)]
                assert list(there.csv_rows(period, after, limit)) == rows
    finally:
        workers.close()
    broken = PageWorkers(f"sqlite:///{tmp_path}/no/such/folder/headend.db", ICT, 1, page_size=3)
    failing = BillingService(collected.store, ICT, page_size=3, workers=broken)
    try:
        with pytest.raises(OperationalError):  # the worker's error, where its page would be
            list(failing.records_json(collected.day))
    finally:
        broken.close()


def test_an_unknown_meter_is_refused(collected: Collected) -> None:
    with pytest.raises(UnknownMeter, match="NOPE"):
        collected.service().record("NOPE", collected.day)


def test_a_record_is_json_ready_and_flattens_into_one_csv_row(collected: Collected) -> None:
    record = collected.service().record(collected.outage, collected.day)
    data = record.model_dump(mode="json")
    assert data["import_energy"]["consumption_kwh"] == str(record.import_energy.consumption_kwh)
    assert BillingRecord.model_validate_json(record.model_dump_json()) == record
    header, row = BillingRecord.csv_header(), record.csv_row()
    assert len(header) == len(row) == len(set(header))
    cells = dict(zip(header, row, strict=True))
    assert cells["import_kwh"] == str(record.import_energy.consumption_kwh)
    assert cells["quality"] == "estimated" and cells["billable"] == "true"
    assert cells["version"] == record.version


def test_the_nem12_export_of_a_healthy_day_carries_the_meters_intervals(
    collected: Collected,
) -> None:
    meter_id = collected.healthy[0]
    out = io.StringIO()
    written = collected.service().nem12(collected.day, out, [meter_id, collected.outage])
    lines = [line.split(",") for line in out.getvalue().splitlines()]
    assert written == 4  # two meters, import and export, one day
    days = {
        (header[1], header[4]): day
        for header, day in itertools.pairwise(lines)
        if header[0] == "200"
    }
    assert all(day[0] == "300" for day in days.values())
    slots = 86400 // collected.specs[meter_id].capture_period_s
    values = days[(meter_id, "E1")][2 : 2 + slots]
    truth = collected.truth(meter_id, collected.day)
    assert sum(Decimal(v) for v in values) == truth.consumption["A+"]
    outage_slots = 86400 // collected.specs[collected.outage].capture_period_s
    assert days[(collected.outage, "E1")][2 + outage_slots] == "V"  # actuals and estimates
    methods = {fields[3] for fields in lines if fields[0] == "400"}
    assert methods == {"A", "S24"}  # E2, scaled to the register


# -- billing periods ----------------------------------------------------------------------


def test_a_month_and_a_day_are_taken_in_the_utilitys_time_zone() -> None:
    month = parse_period("2026-11", None, None, ICT)
    assert (month.start, month.end, month.label) == (
        datetime(2026, 10, 31, 17, tzinfo=UTC),
        datetime(2026, 11, 30, 17, tzinfo=UTC),
        "2026-11",
    )
    december = parse_period(" 2026-12 ", None, None, ICT)
    assert december.end == datetime(2026, 12, 31, 17, tzinfo=UTC)
    day = parse_period("2026-11-05", None, None, ICT)
    assert (day.start, day.end, day.label) == (
        datetime(2026, 11, 4, 17, tzinfo=UTC),
        datetime(2026, 11, 5, 17, tzinfo=UTC),
        "2026-11-05",
    )


def test_start_and_end_with_an_offset_make_a_period_labelled_as_given() -> None:
    span = parse_period(None, "2026-11-03T00:00+07:00", "2026-11-10T00:00:00+07:00", ICT)
    assert span.start == datetime(2026, 11, 2, 17, tzinfo=UTC)
    assert span.end == datetime(2026, 11, 9, 17, tzinfo=UTC)
    assert span.start.tzinfo is UTC
    assert span.label == "2026-11-03T00:00+07:00/2026-11-10T00:00+07:00"
    assert parse_period(None, "2026-11-02T17:00Z", "2026-11-03T17:00Z", ICT).end == span.start + (
        timedelta(days=1)
    )


@pytest.mark.parametrize(
    ("period", "start", "end", "field", "words"),
    [
        ("2026-11", "2026-11-01T00:00+07:00", None, "period", "not both"),
        (None, None, None, "period", "give a period"),
        (None, "2026-11-01T00:00+07:00", None, "end", "end is missing"),
        (None, None, "2026-11-01T00:00+07:00", "start", "start is missing"),
        (None, "2026-11-01T00:00", "2026-11-02T00:00+07:00", "start", "+07:00"),
        (None, "2026-11-01T00:00+07:00", "2026-11-02", "end", "no UTC offset"),
        (None, "yesterday", "2026-11-02T00:00+07:00", "start", "not an ISO 8601"),
        (None, "2026-11-02T00:00+07:00", "2026-11-01T00:00+07:00", "end", "before start"),
        (None, "2026-11-01T00:00+07:00", "2026-10-31T17:00Z", "end", "same instant"),
        (None, "2026-11-01T00:00+07:00", "2027-01-03T00:00+07:00", "end", "at most 62 days"),
        ("2026-13", None, None, "period", "not a real month"),
        ("2026-02-30", None, None, "period", "not a real month or day"),
        ("2026-1", None, None, "period", "neither a month"),
        ("November", None, None, "period", "YYYY-MM"),
    ],
)
def test_a_period_that_cannot_be_read_is_refused_naming_the_field(
    period: str | None, start: str | None, end: str | None, field: str, words: str
) -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period(period, start, end, ICT)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_a_month_is_refused_when_the_limit_is_shorter() -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period("2026-11", None, None, ICT, max_days=7)
    assert refused.value.field == "period"
    assert "30 days long; at most 7 days" in str(refused.value)


def test_the_interval_split_follows_local_time_across_a_daylight_saving_change(
    fresh_database_url: str,
) -> None:
    # the utility's zone here changes its offset on Sunday 2026-03-29 at 01:00 UTC
    berlin = ZoneInfo("Europe/Berlin")
    calendar = TouCalendar((EVN_2014,), berlin)
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        store = make_session_factory(engine)
        import_registry(
            store,
            REPO / "fixtures" / "sample_fleet.csv",
            SecretBox(TEST_SECRET_KEY),
            frozenset({"single_phase_residential", "three_phase_tou"}),
        )
        period = parse_period(None, "2026-03-28T12:00+01:00", "2026-03-30T12:00+02:00", berlin)
        ends = [period.start + timedelta(minutes=15 * k) for k in range(1, 47 * 4 + 1)]
        expected = dict.fromkeys(TouPeriod, Decimal(0))
        with store() as session, session.begin():
            pk = session.scalar(select(Meter.id).where(Meter.meter_id == "2611000003"))
            rows = []
            for k, end in enumerate(ends, 1):
                value = Decimal(k) / 1000
                expected[calendar.period_at(end - timedelta(minutes=15))] += value
                for version, quality in ((0, Quality.RAW), (1, Quality.VALID)):
                    rows.append(
                        {"meter_id": pk, "channel": A_PLUS, "interval_end": end}
                        | {"version": version, "value": value, "quality": quality, "flags": 0}
                        | {"created_by": "test"}
                    )
            store_versions(session, rows)
        record = BillingService(store, berlin, calendar).record("2611000003", period)
    finally:
        engine.dispose()
    assert record.tou.source == "intervals"
    assert record.import_energy.intervals.actual == len(ends) == 47 * 4
    assert split(record) == {p.value: v for p, v in expected.items()}
    # a constant offset would have put 03:00-04:00 summer time in the night's off-peak
    assert expected[TouPeriod.NORMAL] > 0 and expected[TouPeriod.PEAK] > 0
