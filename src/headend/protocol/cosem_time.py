"""COSEM date-time (12 octets) to and from aware ``datetime``.

What a date-time means is decided here, once:

* The deviation field is the meter's UTC offset. The Blue Book defines it as minutes *from
  local time to UTC* (UTC = local + deviation), so Hanoi (UTC+07:00) sends -420. Some
  companion specifications send the opposite sign; a device profile says which with
  ``deviation_convention``.
* A deviation of **0 is UTC**, exactly; it is not "unknown" (dlms-cosem 25.1.0 returns a naive
  datetime for it, as for the unspecified value).
* A deviation left **unspecified** (0x8000) means the meter keeps local time without saying
  its offset. The device profile names the zone it keeps (``unspecified_deviation_zone``,
  by default the utility's zone); the returned time carries that zone's offset and is marked
  ``offset_assumed`` so that the read keeps the fact.
* A clock status byte of 0xFF is "not specified" and read as no status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from headend.domain.readings import ClockStatus, MeterTime
from headend.protocol.errors import DecodeError

UNSPECIFIED_DEVIATION = -0x8000
# The years a meter's date-time may plausibly name. A clock reset by a flat battery usually
# shows 2000-01-01 (kept, so that the drift is reported); 9999-12-31 or 1900 is a fault of
# the meter, and times far from now would overflow the arithmetic done on them (the next row
# of a compressed profile buffer is the previous time plus the capture period).
PLAUSIBLE_YEARS = range(2000, 2101)
BLUE_BOOK = "utc_minus_local"
INVERTED = "local_minus_utc"


@dataclass(frozen=True, slots=True)
class TimePolicy:
    """How to read a meter's date-times; built from the device profile."""

    unspecified_zone: str = "Asia/Ho_Chi_Minh"
    deviation_convention: str = BLUE_BOOK

    def __post_init__(self) -> None:
        if self.deviation_convention not in (BLUE_BOOK, INVERTED):
            raise ValueError(
                f"deviation_convention must be {BLUE_BOOK!r} or {INVERTED!r}, "
                f"not {self.deviation_convention!r}"
            )

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.unspecified_zone)

    def east_minutes(self, deviation: int) -> int:
        """The declared offset in minutes east of UTC."""
        return -deviation if self.deviation_convention == BLUE_BOOK else deviation

    def deviation_for(self, east_minutes: int) -> int:
        return -east_minutes if self.deviation_convention == BLUE_BOOK else east_minutes


_OFFSETS: dict[int, timezone] = {}
_STATUSES = {bits: ClockStatus(bits) for bits in range(255)}


def _offset(east: int) -> timezone:
    zone = _OFFSETS.get(east)
    if zone is None:
        zone = _OFFSETS[east] = timezone(timedelta(minutes=east))
    return zone


def decode_datetime(raw: bytes, policy: TimePolicy) -> MeterTime:
    """Decode a 12-octet COSEM date-time into an aware time, after ``policy``."""
    if len(raw) != 12:
        raise DecodeError(f"a COSEM date-time is 12 octets, got {len(raw)}")
    year = (raw[0] << 8) | raw[1]
    month, day = raw[2], raw[3]
    hour, minute, second, hundredths = raw[5], raw[6], raw[7], raw[8]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    status_byte = raw[11]
    if year == 0xFFFF or month > 12 or day > 31 or hour > 23 or minute > 59:
        raise DecodeError(f"date-time {raw.hex()} does not name one instant")
    if year not in PLAUSIBLE_YEARS:
        raise DecodeError(
            f"date-time {raw.hex()}: year {year} is outside "
            f"{PLAUSIBLE_YEARS.start}..{PLAUSIBLE_YEARS.stop - 1}"
        )
    second = 0 if second == 0xFF else second
    hundredths = 0 if hundredths == 0xFF else hundredths
    status = _STATUSES.get(status_byte)
    if deviation != UNSPECIFIED_DEVIATION:
        east = policy.east_minutes(deviation)
        if not -840 <= east <= 840:
            raise DecodeError(f"date-time deviation {deviation} minutes is out of range")
        try:
            aware = datetime(
                year, month, day, hour, minute, second, hundredths * 10_000, _offset(east)
            )
        except ValueError as exc:
            raise DecodeError(f"date-time {raw.hex()} is not a valid date: {exc}") from exc
        return MeterTime(aware, east, status, offset_assumed=False)
    try:
        naive = datetime(year, month, day, hour, minute, second, hundredths * 10_000)
    except ValueError as exc:
        raise DecodeError(f"date-time {raw.hex()} is not a valid date: {exc}") from exc
    # local time of the profile's zone; in the repeated hour of a DST change the clock
    # status says which of the two it is
    fold = 1 if status is not None and not status.daylight_saving_active else 0
    return MeterTime(naive.replace(tzinfo=policy.zone, fold=fold), None, status, True)


def encode_datetime(
    at: datetime,
    policy: TimePolicy,
    *,
    east_minutes: int | None = None,
    status: int = 0,
) -> bytes:
    """Encode ``at`` as the meter should hold it.

    With ``east_minutes`` the time is written in that offset and the deviation is stated;
    without it, the time is written in the policy's zone with the deviation unspecified.
    """
    if at.tzinfo is None:
        raise ValueError("refusing to encode a naive datetime")
    if east_minutes is None:
        local = at.astimezone(policy.zone)
        deviation = UNSPECIFIED_DEVIATION
    else:
        local = at.astimezone(timezone(timedelta(minutes=east_minutes)))
        deviation = policy.deviation_for(east_minutes)
    return (
        local.year.to_bytes(2, "big")
        + bytes((local.month, local.day, local.isoweekday()))
        + bytes((local.hour, local.minute, local.second, local.microsecond // 10_000))
        + deviation.to_bytes(2, "big", signed=True)
        + bytes((status,))
    )


def to_utc(at: datetime) -> datetime:
    return at.astimezone(UTC)
