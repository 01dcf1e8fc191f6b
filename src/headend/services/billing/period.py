"""Billing periods: a month, a day, or two instants, read from a request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from headend.services.errors import Invalid


class PeriodError(Invalid):
    """A billing period that cannot be read; ``field`` names the request field at fault."""

    field: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class BillingPeriod:
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, exclusive
    label: str  # "2026-11", "2026-11-05", or "2026-11-03T00:00+07:00/2026-11-10T00:00+07:00"


_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_EXAMPLE = "2026-11-01T00:00+07:00"


def parse_period(
    period: str | None,
    start: str | None,
    end: str | None,
    tz: ZoneInfo,
    max_days: int = 62,
) -> BillingPeriod:
    """A month ("2026-11") or a day ("2026-11-05") in ``tz``, or ``start`` and ``end`` as ISO
    8601 date-times with a UTC offset; never both forms, never longer than ``max_days``."""
    if period is not None and (start is not None or end is not None):
        raise PeriodError("period", "give either period or start and end, not both")
    if period is not None:
        lo, hi, label = _calendar_period(period.strip(), tz)
        at_fault = "period"
    else:
        if start is None and end is None:
            raise PeriodError(
                "period",
                "give a period (a month such as 2026-11 or a day such as 2026-11-05) "
                f"or start and end (such as {_EXAMPLE})",
            )
        if start is None or end is None:
            missing = "start" if start is None else "end"
            raise PeriodError(
                missing,
                f"{missing} is missing: give both start and end, as date-times with an "
                f"offset such as {_EXAMPLE}",
            )
        lo, hi = _instant("start", start), _instant("end", end)
        if hi <= lo:
            relation = "the same instant as" if hi == lo else "before"
            raise PeriodError(
                "end", f"end {_text(hi)} is {relation} start {_text(lo)}; it must come after it"
            )
        label = f"{_text(lo)}/{_text(hi)}"
        at_fault = "end"
    length = hi - lo
    if length > timedelta(days=max_days):
        days = length / timedelta(days=1)
        raise PeriodError(
            at_fault, f"the period {label} is {days:g} days long; at most {max_days} days"
        )
    return BillingPeriod(lo.astimezone(UTC), hi.astimezone(UTC), label)


def _calendar_period(text: str, tz: ZoneInfo) -> tuple[datetime, datetime, str]:
    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tz)

    month, day = _MONTH.fullmatch(text), _DAY.fullmatch(text)
    try:
        if month is not None:
            first = date(int(month[1]), int(month[2]), 1)
            following = (first + timedelta(days=31)).replace(day=1)
            return midnight(first), midnight(following), text
        if day is not None:
            one = date(int(day[1]), int(day[2]), int(day[3]))
            return midnight(one), midnight(one + timedelta(days=1)), text
    except (ValueError, OverflowError) as exc:
        raise PeriodError("period", f"period {text!r} is not a real month or day ({exc})") from exc
    raise PeriodError(
        "period",
        f"period {text!r} is neither a month (YYYY-MM, such as 2026-11) nor a day "
        "(YYYY-MM-DD, such as 2026-11-05)",
    )


def _instant(field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(
            field, f"{field} {text!r} is not an ISO 8601 date-time such as {_EXAMPLE}"
        ) from None
    if value.utcoffset() is None:
        raise PeriodError(
            field,
            f"{field} {text!r} has no UTC offset, so the instant is ambiguous; add one such "
            f"as +07:00 ({_EXAMPLE})",
        )
    return value


def _text(moment: datetime) -> str:
    whole_minute = moment.second == 0 and moment.microsecond == 0
    return moment.isoformat(timespec="minutes" if whole_minute else "auto")
