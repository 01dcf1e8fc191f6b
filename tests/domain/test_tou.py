"""The time-of-use calendar: EVN periods, effective dates, and the vectorised assignment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headend.domain.tou import (
    DEFAULT_CALENDAR,
    EVN_2014,
    PERIODS,
    DaySchedule,
    TouCalendar,
    TouError,
    TouPeriod,
    TouSchedule,
    evn_calendar,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
N, P, OP = TouPeriod.NORMAL, TouPeriod.PEAK, TouPeriod.OFF_PEAK
FRIDAY = date(2026, 11, 27)
SATURDAY = date(2026, 11, 28)
SUNDAY = date(2026, 11, 29)

WORKDAY_GOLDEN = [
    ("00:00", OP), ("03:59", OP), ("04:00", N), ("09:29", N), ("09:30", P), ("11:29", P),
    ("11:30", N), ("16:59", N), ("17:00", P), ("19:59", P), ("20:00", N), ("21:59", N),
    ("22:00", OP), ("23:59", OP),
]  # fmt: skip
SUNDAY_GOLDEN = [
    ("00:00", OP), ("03:59", OP), ("04:00", N), ("09:30", N), ("11:30", N), ("17:00", N),
    ("20:00", N), ("21:59", N), ("22:00", OP), ("23:59", OP),
]  # fmt: skip


def local(day: date, hhmm: str) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HCM)


@pytest.mark.parametrize(("hhmm", "period"), WORKDAY_GOLDEN)
@pytest.mark.parametrize("day", [FRIDAY, SATURDAY])
def test_a_workday_interval_takes_the_evn_period_of_its_start(
    day: date, hhmm: str, period: TouPeriod
) -> None:
    assert DEFAULT_CALENDAR.period_at(local(day, hhmm)) is period


@pytest.mark.parametrize(("hhmm", "period"), SUNDAY_GOLDEN)
def test_sunday_has_no_peak(hhmm: str, period: TouPeriod) -> None:
    assert DEFAULT_CALENDAR.period_at(local(SUNDAY, hhmm)) is period


def test_an_interval_is_assigned_by_its_start_in_local_time_whatever_zone_it_is_given_in() -> None:
    start_utc = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)  # 09:30 in Ho Chi Minh City
    assert DEFAULT_CALENDAR.period_at(start_utc) is P
    assert DEFAULT_CALENDAR.period_at(start_utc - timedelta(minutes=15)) is N


def test_the_vectorised_form_gives_the_golden_periods() -> None:
    starts = [local(FRIDAY, t) for t, _ in WORKDAY_GOLDEN] + [
        local(SUNDAY, t) for t, _ in SUNDAY_GOLDEN
    ]
    seconds = np.array([int(s.timestamp()) for s in starts], dtype=np.int64)
    expected = [p.code for _, p in WORKDAY_GOLDEN + SUNDAY_GOLDEN]
    assert DEFAULT_CALENDAR.period_codes(seconds).tolist() == expected
    as_datetime64 = seconds.astype("datetime64[s]")
    assert DEFAULT_CALENDAR.period_codes(as_datetime64).tolist() == expected
    in_rows = DEFAULT_CALENDAR.period_codes(seconds[:24].reshape(4, 6))
    assert in_rows.shape == (4, 6) and in_rows.ravel().tolist() == expected[:24]


def test_a_week_of_quarter_hours_has_the_evn_hours_per_period() -> None:
    monday = int(local(date(2026, 11, 23), "00:00").timestamp())
    starts = monday + 900 * np.arange(7 * 96, dtype=np.int64)
    hours = np.bincount(DEFAULT_CALENDAR.period_codes(starts), minlength=3) / 4
    # normal 6 x 13 h + 18 h, peak 6 x 5 h, off-peak 7 x 6 h
    assert dict(zip(PERIODS, hours.tolist(), strict=True)) == {N: 96.0, P: 30.0, OP: 42.0}


def test_periods_map_to_tariff_registers_t1_normal_t2_peak_t3_off_peak() -> None:
    assert (N.tariff, P.tariff, OP.tariff) == (1, 2, 3)
    assert [p.code for p in PERIODS] == [0, 1, 2]


def test_a_new_version_takes_over_from_its_effective_date() -> None:
    evening_peak = DaySchedule.of(("00:00", OP), ("04:00", N), ("18:00", P), ("22:00", OP))
    later = TouSchedule("evening peak", date(2026, 12, 1), (evening_peak,) * 7)
    calendar = TouCalendar((EVN_2014, later), HCM)
    before = local(date(2026, 11, 30), "10:00")  # a Monday under EVN 2014
    after = local(date(2026, 12, 1), "10:00")
    assert calendar.period_at(before) is P
    assert calendar.period_at(after) is N
    assert calendar.period_at(local(date(2026, 12, 6), "19:00")) is P  # a Sunday, new table
    seconds = np.array([int(before.timestamp()), int(after.timestamp())])
    assert calendar.period_codes(seconds).tolist() == [P.code, N.code]


def test_a_special_day_overrides_its_weekday() -> None:
    holiday = date(2026, 9, 2)  # a Wednesday
    sunday_like = EVN_2014.week[6]
    version = TouSchedule(
        "with holiday", date(2000, 1, 1), EVN_2014.week, ((holiday, sunday_like),)
    )
    calendar = TouCalendar((version,), HCM)
    at = local(holiday, "10:00")
    assert calendar.period_at(at) is N
    assert calendar.period_at(at + timedelta(days=1)) is P
    seconds = np.array([int(at.timestamp()), int((at + timedelta(days=1)).timestamp())])
    assert calendar.period_codes(seconds).tolist() == [N.code, P.code]


def test_an_instant_before_every_version_is_refused() -> None:
    version = TouSchedule("late", date(2030, 1, 1), EVN_2014.week)
    calendar = TouCalendar((version,), HCM)
    with pytest.raises(TouError):
        calendar.period_at(local(FRIDAY, "10:00"))
    with pytest.raises(TouError):
        calendar.period_codes(np.array([int(local(FRIDAY, "10:00").timestamp())]))


def test_malformed_schedules_are_refused() -> None:
    with pytest.raises(TouError):
        DaySchedule.of(("04:00", N))  # does not start at midnight
    with pytest.raises(TouError):
        DaySchedule.of(("00:00", OP), ("09:30", P), ("09:30", N))
    with pytest.raises(TouError):
        TouSchedule("short week", date(2020, 1, 1), EVN_2014.week[:6])
    with pytest.raises(TouError):
        DEFAULT_CALENDAR.period_at(datetime(2026, 11, 27, 10, 0))  # naive


def test_a_zone_with_daylight_saving_is_followed_to_the_second() -> None:
    paris = ZoneInfo("Europe/Paris")
    calendar = evn_calendar(paris)
    # 2026-03-29 02:00 CET -> 03:00 CEST; the clock jumps over 02:00-03:00 local
    first = int(datetime(2026, 3, 28, 0, 0, tzinfo=UTC).timestamp())
    seconds = first + 900 * np.arange(3 * 96, dtype=np.int64)
    vectorised = calendar.period_codes(seconds).tolist()
    scalar = [calendar.period_at(datetime.fromtimestamp(s, UTC)).code for s in seconds.tolist()]
    assert vectorised == scalar


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.integers(min_value=946_684_800, max_value=4_102_444_800),  # 2000 .. 2100
        min_size=1,
        max_size=50,
    ),
    st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Paris", "America/New_York", "Asia/Kathmandu"]),
)
def test_the_vectorised_assignment_equals_the_scalar_one(seconds: list[int], zone: str) -> None:
    calendar = evn_calendar(ZoneInfo(zone))
    vectorised = calendar.period_codes(np.array(seconds, dtype=np.int64)).tolist()
    scalar = [calendar.period_at(datetime.fromtimestamp(s, UTC)).code for s in seconds]
    assert vectorised == scalar


def test_a_million_intervals_are_assigned_in_one_call_each_as_the_scalar_assignment() -> None:
    starts = 1_767_225_600 + 900 * np.arange(1_000_000, dtype=np.int64)
    codes = DEFAULT_CALENDAR.period_codes(starts)
    assert codes.shape == starts.shape
    for i in (0, 1, 95, 96, 123_457, 999_999):
        at = datetime.fromtimestamp(int(starts[i]), UTC)
        assert codes[i] == DEFAULT_CALENDAR.period_at(at).code
