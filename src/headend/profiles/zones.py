"""Guessing how a meter writes its date-times, and the zone it keeps, from one clock read.

The deviation field of the clock's time says the meter's offset, but not with which sign
convention; its wall-clock time against ours says which reading is right, as long as the
clock is not hours off. A time zone (its daylight-saving rules) cannot be read from a meter at
all: the guess is the utility's zone when its offset now equals the meter's, else a zone of
that offset. Every guess says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from headend.domain.survey import FoundClock

_QUARTER_H = 15
# a clock further off than this cannot tell the two sign conventions apart reliably
_PLAUSIBLE_DRIFT = timedelta(minutes=20)


@dataclass(frozen=True)
class ClockGuess:
    deviation: str  # minutes_to_utc, minutes_from_utc or unspecified
    zone: str
    east_minutes: int
    notes: list[str] = field(default_factory=list)


def _offset_text(east: int) -> str:
    sign = "+" if east >= 0 else "-"
    return f"UTC{sign}{abs(east) // 60:02d}:{abs(east) % 60:02d}"


def zone_with_offset(east: int, preferred: str, at: datetime) -> str:
    """``preferred`` if its offset at ``at`` is ``east`` minutes, else a zone with that
    offset (an ``Etc/GMT`` zone for whole hours)."""
    offset = timedelta(minutes=east)
    if at.astimezone(ZoneInfo(preferred)).utcoffset() == offset:
        return preferred
    if east == 0:
        return "UTC"
    if east % 60 == 0 and abs(east) <= 12 * 60:
        return f"Etc/GMT{-east // 60:+d}"  # the Etc zones' signs are inverted: Etc/GMT-7 is UTC+7
    for name in sorted(available_timezones()):
        try:
            if at.astimezone(ZoneInfo(name)).utcoffset() == offset:
                return name
        except (ValueError, OSError):
            continue
    return preferred


def _unspecified_offset(clock: FoundClock) -> tuple[int, str]:
    """The offset of a clock that does not send it: its time against ours, to the quarter
    hour; or its time_zone attribute (either sign) when that agrees within a plausible drift,
    which a clock some minutes off cannot spoil."""
    measured = (clock.meter_local - clock.system_utc.replace(tzinfo=None)).total_seconds() / 60
    east = round(measured / _QUARTER_H) * _QUARTER_H
    how = f"its time against ours now says {_offset_text(east)}"
    attribute = clock.time_zone_attribute
    if attribute is None or abs(attribute) > 14 * 60:
        return east, how
    said = min((-attribute, attribute), key=lambda e: abs(e - measured))
    if abs(said - measured) > _PLAUSIBLE_DRIFT.total_seconds() / 60:
        return east, how
    return said, (
        f"its time_zone attribute (3), {attribute}, says {_offset_text(said)}, as its time "
        f"against ours does ({abs(measured - said):.0f} minutes off)"
    )


def guess_clock(clock: FoundClock, utility_zone: str) -> ClockGuess:
    system = clock.system_utc.replace(tzinfo=None)
    local = clock.meter_local
    notes: list[str] = []
    if clock.deviation is None:
        semantics = "unspecified"
        notes.append(
            "found: the clock's deviation is 0x8000 (unspecified): its times are local time"
        )
        east, how = _unspecified_offset(clock)
    else:
        d = clock.deviation
        to_utc = abs(local + timedelta(minutes=d) - system)  # UTC = local + deviation
        from_utc = abs(local - timedelta(minutes=d) - system)  # local = UTC + deviation
        if from_utc < to_utc:
            semantics, east, off = "minutes_from_utc", d, from_utc
        else:
            semantics, east, off = "minutes_to_utc", -d, to_utc
        if d == 0 or off > _PLAUSIBLE_DRIFT:
            semantics, east = "minutes_to_utc", -d
            notes.append(
                f"guessed: deviation {d} read the Blue Book way (UTC = local + deviation); "
                "the clock cannot tell the sign convention"
                + (f" (it is {off} off ours)" if off > _PLAUSIBLE_DRIFT else "")
            )
        else:
            notes.append(
                f"found: the clock sends deviation {d} for a local time {_offset_text(east)} "
                f"({semantics}), checked against our clock"
            )
        how = f"the deviation says {_offset_text(east)}"
    at = clock.system_utc.astimezone(UTC)
    zone = zone_with_offset(east, utility_zone, at)
    if at.astimezone(ZoneInfo(zone)).utcoffset() == timedelta(minutes=east):
        has = f"{zone} has that offset now" + (
            " (the utility's zone)" if zone == utility_zone else ""
        )
    else:
        has = f"no zone has that offset: {zone}, the utility's zone, is written; check the meter"
    notes.append(f"time_zone guessed: {how}; a zone's rules cannot be read from a meter; {has}")
    if clock.time_zone_attribute is not None:
        notes.append(f"the clock's time_zone attribute (3) is {clock.time_zone_attribute}")
    return ClockGuess(semantics, zone, east, notes)
