"""The like-day table, with Vietnamese public holidays counted as Sundays."""

from __future__ import annotations

from datetime import date

import pytest

from headend.domain.calendar import VIETNAM, HolidayCalendar, holidays_in_year
from headend.vee.likeday import like_day_offsets, sample_offsets


@pytest.mark.parametrize(
    ("day", "offsets"),
    [
        (date(2026, 11, 16), (7, 14)),  # Monday: prior Monday, then two weeks back
        (date(2026, 11, 17), (7, 6, 5)),  # Tuesday
        (date(2026, 11, 18), (7, 1, 8, 6)),  # Wednesday
        (date(2026, 11, 19), (7, 1, 8, 2, 9)),  # Thursday
        (date(2026, 11, 20), (7,)),  # Friday
        (date(2026, 11, 22), (7,)),  # Sunday
    ],
)
def test_ordinary_days_follow_the_two_week_table(day: date, offsets: tuple[int, ...]) -> None:
    assert like_day_offsets(day, VIETNAM) == offsets


def test_a_public_holiday_takes_the_last_sunday_then_the_one_before() -> None:
    national_day = date(2025, 9, 2)  # a Tuesday
    assert like_day_offsets(national_day, VIETNAM) == (2, 9)


def test_a_weekday_never_takes_a_holiday_as_its_like_day() -> None:
    after_reunification = date(2026, 5, 7)  # Thursday; 30 April was a Thursday holiday
    assert 7 not in like_day_offsets(after_reunification, VIETNAM)


def test_tet_is_five_days_around_the_lunar_new_year() -> None:
    days = holidays_in_year(2026)
    assert {date(2026, 2, d) for d in range(16, 21)} <= days
    assert date(2026, 2, 21) not in days


def test_hung_kings_day_and_the_fixed_holidays_are_holidays() -> None:
    for day in (
        date(2025, 4, 7),
        date(2025, 1, 1),
        date(2025, 4, 30),
        date(2025, 5, 1),
        date(2025, 9, 2),
        date(2025, 9, 1),
    ):
        assert VIETNAM.is_holiday(day)


def test_a_utility_can_add_its_own_days_off() -> None:
    calendar = HolidayCalendar(extra=[date(2026, 11, 20)])
    assert calendar.is_sunday_like(date(2026, 11, 20))
    assert not VIETNAM.is_sunday_like(date(2026, 11, 20))


def test_average_of_like_days_samples_the_same_weekday_back_in_weeks() -> None:
    assert sample_offsets(date(2026, 11, 20), VIETNAM, 3) == (7, 14, 21)
