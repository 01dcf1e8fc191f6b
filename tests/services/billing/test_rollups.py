"""Day rollups of interval data: billing from rollups gives the very records billing from the
intervals alone gives, however fresh the rollups are; every writer marks them stale; the pass
is idempotent and loses no write made while it runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.billing import BillingRecord
from headend.domain.enums import ReadKind
from headend.domain.tou import EVN_2014, DaySchedule, TouCalendar, TouPeriod, TouSchedule
from headend.services.access.audit import Actor
from headend.services.billing.service import BillingPeriod, BillingService, parse_period
from headend.services.validation.edits import EditService
from headend.services.validation.rollups import BEGINNING, RollupService
from headend.services.validation.vee import ValidationService
from headend.store.base import table_of
from headend.store.engine import make_session_factory
from headend.store.models import IntervalDay, IntervalDayEnd, Meter, RegisterReading
from headend.store.queries.intervals import captures_at
from headend.store.repositories.rollups import RollupRepository
from tests.intervals import stored_intervals
from tests.scheduling.simfleet_store import Clock, StoreFleet, make_fleet, serving_into_store
from tests.services.billing.fleet import A_PLUS, ICT, empty

pytestmark = pytest.mark.timeout(180)
TESTER = Actor("tester")


@dataclass
class Rolled:
    store: sessionmaker[Session]
    fleet: StoreFleet
    clock: Clock
    rollups: RollupService
    day: BillingPeriod  # yesterday, local
    today: datetime  # local midnight starting today

    def meters(self) -> list[str]:
        return sorted(self.fleet.specs)

    def periods(self) -> list[BillingPeriod]:
        """Whole days, several days, a month to date, and periods off midnight."""
        start, end = self.day.start, self.day.end

        def span(lo: datetime, hi: datetime) -> BillingPeriod:
            return parse_period(None, lo.astimezone(ICT).isoformat(), hi.isoformat(), ICT)

        month = start.astimezone(ICT).replace(day=1, hour=0, minute=0)
        return [
            self.day,
            span(start - timedelta(days=2), end),
            span(month, end),
            span(start - timedelta(hours=17, minutes=50), end - timedelta(hours=5, minutes=20)),
            span(start - timedelta(days=1, minutes=15), self.clock.now),
        ]

    def validate(self) -> None:
        ValidationService(self.store, clock=self.clock, rollups=self.rollups).run_pending()

    def mark(self, meter_id: str) -> datetime | None:
        with self.store() as session:
            return session.scalar(select(Meter.rollup_from).where(Meter.meter_id == meter_id))


def _collect(fleet: StoreFleet, meter_ids: list[str], kind: ReadKind, **params: Any) -> None:
    ids = fleet.jobs.queue_for_meters(meter_ids, kind, skip_if_active=False, **params)
    dispatcher = fleet.dispatcher()
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
    finally:
        dispatcher.close()
    assert fleet.jobs.summary(ids)["succeeded"] == len(meter_ids)


@pytest.fixture(scope="module")
def rolled(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rolled]:
    """Ten meters read with three days of history, validated and rolled up; one had an
    outage yesterday. The simulated meters keep serving for late re-reads."""
    store = make_session_factory(engine)
    empty(engine)
    specs = make_fleet(
        tmp_path_factory.mktemp("fleet"),
        10,
        faults="outage=1:days_ago=1:hour=10:hours=3",
        transport="wrapper",
        auth="none",
    )
    clock = Clock()
    try:
        with serving_into_store(specs, store, clock) as fleet:
            settings = replace(fleet.collection.settings, backfill=timedelta(days=3))
            fleet.collection.settings = settings
            _collect(fleet, sorted(fleet.specs), ReadKind.FULL)
            today = clock.now.astimezone(ICT).replace(hour=0, minute=0, second=0)
            day = parse_period((today - timedelta(days=1)).date().isoformat(), None, None, ICT)
            found = Rolled(store, fleet, clock, RollupService(store, ICT, clock=clock), day, today)
            found.validate()
            yield found
    finally:
        empty(engine)


def assert_same_records(rolled: Rolled) -> None:
    """Every meter's record of every period, from rollups and from the intervals alone."""
    with_rollups = BillingService(rolled.store, ICT, page_size=4)
    alone = BillingService(rolled.store, ICT, rollups=False)
    for period in rolled.periods():
        mine = [r.model_dump_json() for r in with_rollups.records(period)]
        assert mine == [r.model_dump_json() for r in alone.records(period)], period.label
        assert len(mine) == len(rolled.fleet.specs)
        meter_id = rolled.meters()[0]
        assert with_rollups.record(meter_id, period) == alone.record(meter_id, period)


def test_records_from_fresh_rollups_equal_the_records_from_intervals_for_every_meter(
    rolled: Rolled, engine: Engine
) -> None:
    assert all(rolled.mark(m) is None for m in rolled.meters())
    with rolled.store() as session:
        assert session.scalar(select(IntervalDay.meter_id).limit(1)) is not None
    assert_same_records(rolled)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        list(BillingService(rolled.store, ICT).records(rolled.day))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # whole days from the rollups, and every boundary has its register reads: not even the
    # load profile's captures are read from the intervals
    assert len([s for s in statements if "interval_blocks" in s]) == 0
    assert len([s for s in statements if "interval_days" in s]) == 1


def test_the_pass_keeps_the_capture_as_read_at_the_end_of_every_local_day(rolled: Rolled) -> None:
    with rolled.store() as session:
        kept = {
            (e.meter_id, e.channel, e.day): (e.capture, e.quality)
            for e in session.scalars(select(IntervalDayEnd))
        }
        pks = sorted(session.scalars(select(Meter.id)))
        channels = sorted({channel for _, channel, _ in kept})
        midnights = [rolled.today - timedelta(days=n) for n in range(12)]
        read = captures_at(session, pks, channels, midnights)
    assert len(channels) == 2 and len(read) >= 10 * 2 * 3
    expected = {
        (c.meter_id, c.channel, datetime.fromtimestamp(c.at, ICT).date() - timedelta(days=1)): (
            c.cumulative,
            c.quality,
        )
        for c in read
    }
    assert kept == expected


def test_without_register_reads_at_midnight_the_capture_comes_from_the_day_ends_not_the_blocks(
    rolled: Rolled, engine: Engine
) -> None:
    registers = table_of(RegisterReading)
    at_start = registers.c.read_at == rolled.day.start
    with rolled.store() as session, session.begin():
        taken = [dict(row._mapping) for row in session.execute(select(registers).where(at_start))]
        session.execute(registers.delete().where(at_start))
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    try:
        event.listen(engine, "before_cursor_execute", seen)
        try:
            records = list(BillingService(rolled.store, ICT).records(rolled.day))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        alone = list(BillingService(rolled.store, ICT, rollups=False).records(rolled.day))
    finally:
        with rolled.store() as session, session.begin():
            session.execute(registers.insert(), taken)
    assert len(taken) >= 10 * 2  # both channels' registers of every meter were read then
    assert [r.model_dump_json() for r in records] == [r.model_dump_json() for r in alone]
    openings = [e.opening for r in records for e in (r.import_energy, r.export_energy) if e]
    assert len(openings) == 20 and {o.source for o in openings if o} == {"load_profile"}
    assert len([s for s in statements if "interval_day_ends" in s]) == 1
    assert len([s for s in statements if "interval_blocks" in s]) == 0


def test_records_with_rollups_stale_after_an_edit_and_its_revert_equal_the_records_from_intervals(
    rolled: Rolled,
) -> None:
    meter_id = rolled.meters()[1]
    before = BillingService(rolled.store, ICT).record(meter_id, rolled.periods()[1])
    start = rolled.day.start + timedelta(hours=12)
    edits = EditService(rolled.store)
    edit = edits.edit_intervals(
        meter_id, str(A_PLUS), start, start + timedelta(minutes=30), Decimal("0.75"), "TEST",
        None, actor=TESTER,
    )  # fmt: skip
    assert rolled.mark(meter_id) == start + timedelta(minutes=15)  # the first edited interval
    after = BillingService(rolled.store, ICT).record(meter_id, rolled.periods()[1])
    assert after.version != before.version
    assert_same_records(rolled)  # stale from yesterday: the day before from rollups
    rolled.validate()
    assert rolled.mark(meter_id) is None
    assert_same_records(rolled)
    edits.revert_edit(edit.id, actor=TESTER)
    assert rolled.mark(meter_id) == start + timedelta(minutes=15)
    assert_same_records(rolled)
    rolled.validate()
    reverted = BillingService(rolled.store, ICT).record(meter_id, rolled.periods()[1])
    assert reverted.import_energy.interval_kwh == before.import_energy.interval_kwh
    assert reverted.version not in (before.version, after.version)  # new version numbers


def test_records_after_a_late_reread_of_older_history_equal_the_records_from_intervals(
    rolled: Rolled,
) -> None:
    meter_id = rolled.meters()[2]
    first = min((r.interval_end for r in stored_intervals(rolled.store, meter_id)), default=None)
    assert first is not None
    start = first - timedelta(days=2)
    _collect(
        rolled.fleet,
        [meter_id],
        ReadKind.LOAD_PROFILE,
        params={"start": start.isoformat(), "end": (first + timedelta(hours=1)).isoformat()},
    )
    mark = rolled.mark(meter_id)
    assert mark is not None and mark < first  # landing marked the history it brought
    week = parse_period(
        None, (rolled.today - timedelta(days=6)).isoformat(), rolled.today.isoformat(), ICT
    )
    alone = BillingService(rolled.store, ICT, rollups=False)
    with_rollups = BillingService(rolled.store, ICT)
    assert with_rollups.record(meter_id, week) == alone.record(meter_id, week)
    rolled.validate()
    assert rolled.mark(meter_id) is None
    assert with_rollups.record(meter_id, week) == alone.record(meter_id, week)
    assert with_rollups.record(meter_id, week).import_energy.intervals.actual > 96 * 4
    assert_same_records(rolled)


def _day_rows(store: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with store() as session:
        rows = session.execute(select(IntervalDay).order_by(*IntervalDay.__table__.primary_key))
        return [
            tuple(getattr(row, c.key) for c in IntervalDay.__table__.columns)
            for row in rows.scalars()
        ]


def test_the_rollup_pass_is_idempotent(rolled: Rolled) -> None:
    before = _day_rows(rolled.store)
    assert before
    with rolled.store() as session, session.begin():
        RollupRepository(session).mark_all_stale(BEGINNING)
    assert rolled.rollups.run_pending().meters == len(rolled.fleet.specs)
    assert _day_rows(rolled.store) == before
    assert rolled.rollups.run_pending().meters == 0  # nothing marked: nothing to do
    assert _day_rows(rolled.store) == before
    assert all(rolled.mark(m) is None for m in rolled.meters())


def test_an_edit_made_while_the_pass_runs_is_not_lost(rolled: Rolled, engine: Engine) -> None:
    meter_id = rolled.meters()[3]
    with rolled.store() as session, session.begin():
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))
        assert pk is not None
        RollupRepository(session).mark_stale({pk: rolled.day.start - timedelta(days=1)})
    start = rolled.day.start + timedelta(hours=20)  # later than the mark: it stays as it is
    done: list[Exception | None] = []

    def edit() -> None:
        try:
            EditService(rolled.store).edit_intervals(
                meter_id, str(A_PLUS), start, start + timedelta(minutes=15), Decimal("2.5"),
                "TEST", None, actor=TESTER,
            )  # fmt: skip
            done.append(None)
        except Exception as exc:  # pragma: no cover - reported below
            done.append(exc)

    writer = threading.Thread(target=edit)

    def during_the_pass(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO interval_days") and writer.ident is None:
            writer.start()
            time.sleep(0.5)  # the edit is stored and waits to mark the meter

    event.listen(engine, "after_cursor_execute", during_the_pass)
    try:
        rolled.rollups.run_pending()
    finally:
        event.remove(engine, "after_cursor_execute", during_the_pass)
    writer.join(30)
    assert done == [None]
    assert rolled.mark(meter_id) == start + timedelta(minutes=15)  # the pass left it marked
    assert_same_records(rolled)
    rolled.rollups.run_pending()
    assert rolled.mark(meter_id) is None
    assert_same_records(rolled)


def test_a_mark_moved_back_while_the_pass_runs_is_kept(rolled: Rolled, engine: Engine) -> None:
    meter_id = rolled.meters()[4]
    with rolled.store() as session, session.begin():
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))
        assert pk is not None
        RollupRepository(session).mark_stale({pk: rolled.day.start})
    earlier = rolled.day.start - timedelta(days=1)
    moved: list[str] = []

    def move_back(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO interval_days") and not moved:
            moved.append(statement)
            # the same row changed by the pass's own transaction stands in for a writer
            # that got there between reading the mark and clearing it
            conn.execute(
                Meter.__table__.update()
                .where(Meter.__table__.c.id == pk)
                .values(rollup_from=earlier)
            )

    event.listen(engine, "after_cursor_execute", move_back)
    try:
        rolled.rollups.run_pending()
    finally:
        event.remove(engine, "after_cursor_execute", move_back)
    assert rolled.mark(meter_id) == earlier  # compare-and-set: not the value read, kept
    rolled.rollups.run_pending()
    assert rolled.mark(meter_id) is None
    assert_same_records(rolled)


def test_billing_on_another_calendar_reads_intervals_until_the_pass_rebuilds_on_it(
    rolled: Rolled,
) -> None:
    _n, _p = TouPeriod.NORMAL, TouPeriod.PEAK
    table = TouSchedule(
        "a table from yesterday on",
        rolled.day.start.astimezone(ICT).date(),
        (DaySchedule.of(("00:00", _n), ("07:00", _p), ("19:00", _n)),) * 7,
    )
    calendar = TouCalendar((EVN_2014, table), ICT)
    other = BillingService(rolled.store, ICT, calendar, page_size=3)
    alone = BillingService(rolled.store, ICT, calendar, rollups=False)

    def same() -> None:
        for period in rolled.periods():
            mine = [r.model_dump_json() for r in other.records(period)]
            assert mine == [r.model_dump_json() for r in alone.records(period)], period.label

    same()  # the rollups are the default calendar's: intervals alone
    summary = RollupService(rolled.store, ICT, calendar, clock=rolled.clock).run_pending()
    assert summary.rebuilt and summary.meters == len(rolled.fleet.specs)
    same()
    off_midnight = rolled.periods()[3]
    usual = BillingService(rolled.store, ICT)
    assert any(
        other.record(m, off_midnight).tou != usual.record(m, off_midnight).tou
        for m in rolled.meters()
    )
    assert_same_records(rolled)  # now the default calendar's billing reads intervals alone
    assert rolled.rollups.run_pending().rebuilt
    assert_same_records(rolled)


def test_the_json_of_a_record_is_exactly_its_model_dump_json(rolled: Rolled) -> None:
    service = BillingService(rolled.store, ICT, page_size=3)
    for period in rolled.periods()[:2]:
        records = list(service.records(period))
        assert list(service.records_json(period)) == [r.model_dump_json() for r in records]
        for record in records[:3]:
            text = service.record_json(record.meter_id, period)
            assert text == record.model_dump_json()
            assert BillingRecord.model_validate_json(text) == record


def test_a_pass_told_to_stop_leaves_the_meters_marked_for_the_next_one(rolled: Rolled) -> None:
    with rolled.store() as session, session.begin():
        RollupRepository(session).mark_all_stale(BEGINNING)
    assert rolled.rollups.run_pending(stop=lambda: True).meters == 0
    assert all(rolled.mark(m) is not None for m in rolled.meters())
    assert rolled.rollups.run_pending().meters == len(rolled.fleet.specs)
    assert all(rolled.mark(m) is None for m in rolled.meters())
    assert_same_records(rolled)
