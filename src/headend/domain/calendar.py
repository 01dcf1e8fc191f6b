"""Public holidays of Vietnam, as data.

Fixed-date holidays come from the Labour Code 2019 (article 112). The lunar holidays (Tết
Nguyên Đán and the Hùng Kings' commemoration, 10th day of the 3rd lunar month) move every
year, so they are a table of Gregorian dates for the years listed in ``LUNAR_NEW_YEAR``.

Tết is taken as five days: the eve of the lunar new year and its first four days. The
government fixes the exact days off (and swaps with weekends) every year; for like-day
selection the five-day window is close enough, and a utility that wants the decreed days can
pass its own ``extra`` dates.

For the VEE like-day tables every public holiday counts as a Sunday.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

# (month, day) of the Gregorian fixed-date holidays.
FIXED_HOLIDAYS: tuple[tuple[int, int], ...] = (
    (1, 1),  # New Year's Day
    (4, 30),  # Reunification Day
    (5, 1),  # International Labour Day
    (9, 2),  # National Day
)

# First day of the lunar year (Tết Nguyên Đán) by Gregorian year.
LUNAR_NEW_YEAR: dict[int, date] = {
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
}

# Hùng Kings' commemoration (10th day of the 3rd lunar month) by Gregorian year.
HUNG_KINGS: dict[int, date] = {
    2020: date(2020, 4, 2),
    2021: date(2021, 4, 21),
    2022: date(2022, 4, 10),
    2023: date(2023, 4, 29),
    2024: date(2024, 4, 18),
    2025: date(2025, 4, 7),
    2026: date(2026, 4, 26),
    2027: date(2027, 4, 16),
}

# The second National Day holiday (1 or 3 September), as decreed for each year; add a year
# here once its decree is out.
NATIONAL_DAY_SECOND: dict[int, date] = {
    2021: date(2021, 9, 3),
    2022: date(2022, 9, 1),
    2023: date(2023, 9, 1),
    2024: date(2024, 9, 3),
    2025: date(2025, 9, 1),
}

TET_DAYS_BEFORE = 1
TET_DAYS_AFTER = 3

COVERED_YEARS: frozenset[int] = frozenset(LUNAR_NEW_YEAR) & frozenset(HUNG_KINGS)


def holidays_in_year(year: int) -> frozenset[date]:
    """Every public holiday of ``year``; only the fixed-date ones outside ``COVERED_YEARS``."""
    days = {date(year, month, day) for month, day in FIXED_HOLIDAYS}
    tet = LUNAR_NEW_YEAR.get(year)
    if tet is not None:
        days.update(tet + timedelta(days=k) for k in range(-TET_DAYS_BEFORE, TET_DAYS_AFTER + 1))
    hung = HUNG_KINGS.get(year)
    if hung is not None:
        days.add(hung)
    second = NATIONAL_DAY_SECOND.get(year)
    if second is not None:
        days.add(second)
    return frozenset(days)


class HolidayCalendar:
    """Answers "is this day a public holiday?" with a per-year cache and optional extra days."""

    def __init__(self, extra: Iterable[date] = ()) -> None:
        self._extra = frozenset(extra)
        self._years: dict[int, frozenset[date]] = {}

    def is_holiday(self, day: date) -> bool:
        if day in self._extra:
            return True
        year = self._years.get(day.year)
        if year is None:
            year = self._years[day.year] = holidays_in_year(day.year)
        return day in year

    def is_sunday_like(self, day: date) -> bool:
        """Sundays and public holidays share one like-day class."""
        return day.weekday() == 6 or self.is_holiday(day)


VIETNAM = HolidayCalendar()
