"""Day rollups in detail: which days billing takes from them, the time-of-use period of a
local start, a zone with daylight saving, and the marks landing and VEE leave."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.local_days import LocalDays, seconds
from headend.domain.quality import Quality
from headend.domain.tou import (
    EVN_2014,
    DaySchedule,
    TouCalendar,
    TouError,
    TouPeriod,
    TouSchedule,
)
from headend.services.billing.service import BillingService, parse_period
from headend.services.collection.landing import land
from headend.services.registry.imports import import_registry
from headend.services.validation.rollups import BEGINNING, RollupService
from headend.services.validation.vee import ValidationService
from headend.store.models import IntervalDay, Meter
from headend.store.repositories.rollups import RollupRepository
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import store_versions
from tests.services.billing.fleet import A_PLUS
from tests.services.validation.test_edits import end_of, load_profile_read

BERLIN = ZoneInfo("Europe/Berlin")  # summer time from Sunday 2026-03-29 01:00 UTC
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
METER = "2611000003"
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
_N, _P, _O = TouPeriod.NORMAL, TouPeriod.PEAK, TouPeriod.OFF_PEAK
HOLIDAY = DaySchedule.of(("00:00", _O), ("08:00", _N), ("12:45", _O))
LATER = TouSchedule(
    name="a later table",
    effective_from=date(2026, 3, 30),
    week=(DaySchedule.of(("00:00", _O), ("06:15", _N), ("18:00", _P), ("21:30", _N)),) * 5
    + (DaySchedule.of(("00:00", _N)), DaySchedule.of(("00:00", _O), ("10:00", _N))),
    special_days=((date(2026, 3, 31), HOLIDAY), (date(2026, 12, 25), HOLIDAY)),
)


def _calendar(tz: ZoneInfo) -> TouCalendar:
    early = TouSchedule(
        EVN_2014.name, EVN_2014.effective_from, EVN_2014.week, ((date(2026, 3, 27), HOLIDAY),)
    )
    return TouCalendar((early, LATER), tz)


def _meter_pk(store: sessionmaker[Session]) -> int:
    import_registry(
        store, REPO / "fixtures" / "sample_fleet.csv", SecretBox(TEST_SECRET_KEY), PROFILES
    )
    with store() as session:
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == METER))
    assert pk is not None
    return pk


def _mark(store: sessionmaker[Session], pk: int) -> datetime | None:
    with store() as session:
        return session.scalar(select(Meter.rollup_from).where(Meter.id == pk))


def test_billing_takes_from_rollups_only_whole_days_away_from_a_change_of_offset() -> None:
    days = LocalDays(BERLIN)
    start = datetime(2026, 3, 25, 6, 0, tzinfo=BERLIN)
    end = datetime(2026, 4, 2, tzinfo=BERLIN)
    dates = [
        (days.date_of(a), days.date_of(b)) for a, b in days.whole_days(start, end)
    ]  # 03-26 .. 04-02, less the days whose midnights are within a day of 03-29 01:00 UTC
    assert dates == [(date(2026, 3, 26), date(2026, 3, 28)), (date(2026, 3, 31), date(2026, 4, 2))]
    hanoi = LocalDays(HANOI)
    month = hanoi.whole_days(
        datetime(2026, 11, 1, tzinfo=HANOI), datetime(2026, 12, 1, tzinfo=HANOI)
    )
    assert [(hanoi.date_of(a), hanoi.date_of(b)) for a, b in month] == [
        (date(2026, 11, 1), date(2026, 12, 1))
    ]
    # an interval ending at local midnight belongs to the day before
    assert hanoi.day_of_end(datetime(2026, 11, 2, tzinfo=HANOI)) == hanoi.number(date(2026, 11, 1))
    assert hanoi.whole_days(start, start + timedelta(hours=23)) == ()


def test_the_period_of_a_local_start_is_the_calendars_on_versions_and_special_days() -> None:
    calendar = _calendar(HANOI)
    offset = 7 * 3600  # Hanoi, all year
    for day, days in ((datetime(2026, 3, 25, tzinfo=UTC), 9), (datetime(2026, 12, 24), 3)):
        first = seconds(day.replace(tzinfo=UTC))
        starts = np.arange(first, first + days * 86400, 900, dtype=np.int64)
        expected = calendar.period_codes(starts).tolist()
        assert calendar.local_period_codes(starts + offset).tolist() == expected
        assert set(expected) == {0, 1, 2}


def test_a_start_before_the_first_version_takes_its_week_only_when_asked() -> None:
    calendar = TouCalendar((LATER,), HANOI)  # in force from 2026-03-30
    before = np.array([seconds(datetime(2026, 3, 2, 19, tzinfo=UTC))], dtype=np.int64)
    with pytest.raises(TouError, match="before the first version"):
        calendar.local_period_codes(before)
    week = LATER.week[0]  # 2026-03-02 was a Monday
    assert calendar.local_period_codes(before, before_first="first").tolist() == [
        week.period_at_minute(19 * 60).code
    ]


def _rows(pk: int, ends: list[datetime]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for k, end in enumerate(ends, 1):
        value = Decimal(k % 97) / 1000 if k % 211 else None  # now and then no value
        quality = Quality.EDITED if k % 173 == 0 else Quality.VALID
        for version, q in ((0, Quality.RAW), (1, quality)):
            rows.append(
                {"meter_id": pk, "channel": str(A_PLUS), "interval_end": end}
                | {"version": version, "value": value, "quality": q, "flags": 0}
                | {"created_by": "test"}
            )
    return rows


def test_rollups_in_a_zone_with_daylight_saving_give_the_records_of_the_intervals(
    store: sessionmaker[Session],
) -> None:
    calendar = _calendar(BERLIN)
    pk = _meter_pk(store)
    first = datetime(2026, 3, 24, 23, 0, tzinfo=UTC)
    ends = [first + timedelta(minutes=15 * k) for k in range(1, 861)]  # to 04-03 00:00
    with store() as session, session.begin():
        store_versions(session, _rows(pk, ends))
        RollupRepository(session).mark_stale({pk: ends[0]})
    rollups = RollupService(store, BERLIN, calendar, clock=lambda: ends[-1])
    assert rollups.run_pending().rebuilt
    assert _mark(store, pk) is None
    with store() as session:
        days = {
            d for d in session.scalars(select(IntervalDay.day).where(IntervalDay.meter_id == pk))
        }
    assert date(2026, 3, 29) in days and len(days) == 9  # the short day too
    with_rollups = BillingService(store, BERLIN, calendar)
    alone = BillingService(store, BERLIN, calendar, rollups=False)
    local = [
        datetime.combine(date(2026, 3, 25) + timedelta(days=k), time(), BERLIN) for k in range(9)
    ]
    periods = [
        (local[0], local[-1]),
        (local[1], local[5]),
        (local[4], local[5]),
        (local[6], local[8]),
        (local[0] + timedelta(hours=5, minutes=10), local[7] - timedelta(hours=2)),
    ]
    for lo, hi in periods:
        period = parse_period(None, lo.isoformat(), hi.isoformat(), BERLIN)
        record = with_rollups.record(METER, period)
        assert record == alone.record(METER, period), period.label
        assert record.tou.source == "intervals"
    # and another calendar or zone than the rollups' reads the intervals alone
    assert BillingService(store, HANOI).record(METER, period) == BillingService(
        store, HANOI, rollups=False
    ).record(METER, period)


def test_landing_and_the_vee_pass_mark_the_rollups_stale_from_their_earliest_change(
    store: sessionmaker[Session],
) -> None:
    pk = _meter_pk(store)
    at = end_of(100)
    rollups = RollupService(store, HANOI, clock=lambda: at)

    def land_read(indexes: list[int]) -> None:
        with store() as session, session.begin():
            land(session, pk, ReadKind.LOAD_PROFILE, load_profile_read(METER, indexes), at, None)

    land_read(list(range(48, 97)))
    assert _mark(store, pk) == end_of(49)  # index 48 is the base of the first interval
    land_read(list(range(60, 97)))  # nothing new: the mark stays
    assert _mark(store, pk) == end_of(49)
    rollups.run_pending()
    assert _mark(store, pk) is None
    ValidationService(store, clock=lambda: at).run_pending()  # VALID versions of them all
    assert _mark(store, pk) == end_of(49)
    rollups.run_pending()
    land_read(list(range(20, 49)))  # a late re-read of the morning
    assert _mark(store, pk) == end_of(21)
    ValidationService(store, clock=lambda: at, rollups=rollups).run_pending()
    assert _mark(store, pk) is None
    period = parse_period(None, end_of(0).isoformat(), end_of(96).isoformat(), HANOI)
    assert BillingService(store, HANOI).record(METER, period) == BillingService(
        store, HANOI, rollups=False
    ).record(METER, period)


def test_a_meter_given_another_device_profile_has_its_rollups_rebuilt(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    pk = _meter_pk(store)
    with store() as session:
        assert session.scalar(select(Meter.rollup_from).where(Meter.id == pk)) is None
    text = (REPO / "fixtures" / "sample_fleet.csv").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"{METER},"))
    changed = tmp_path / "registry.csv"
    other = row.replace("single_phase_residential", "three_phase_tou")
    changed.write_text(text.replace(row, other))
    import_registry(store, changed, SecretBox(TEST_SECRET_KEY), PROFILES)
    assert _mark(store, pk) == BEGINNING
    with store() as session:
        others = session.scalars(select(Meter.rollup_from).where(Meter.id != pk)).all()
    assert set(others) == {None}
