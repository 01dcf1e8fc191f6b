"""The quality vocabulary of interval and register values.

One primary state per value (``Quality``) and any number of informational flags (``Flag``),
after section (c) of the VEE and billing reference.
"""

from __future__ import annotations

from enum import IntFlag, StrEnum
from functools import cache


class Quality(StrEnum):
    RAW = "RAW"
    VALID = "VALID"
    VERIFIED = "VERIFIED"
    SUSPECT = "SUSPECT"
    MISSING = "MISSING"
    EST_LINEAR = "EST_LINEAR"
    EST_LIKEDAY = "EST_LIKEDAY"
    EST_AVG_LIKEDAY = "EST_AVG_LIKEDAY"
    EST_SCALED_TO_REGISTER = "EST_SCALED_TO_REGISTER"
    EST_PREV_YEAR = "EST_PREV_YEAR"
    EST_PROFILE = "EST_PROFILE"
    EST_ZERO = "EST_ZERO"
    EDITED = "EDITED"
    FORWARD_EST = "FORWARD_EST"

    @property
    def is_estimate(self) -> bool:
        return self.value.startswith("EST_") or self is Quality.FORWARD_EST


class Flag(IntFlag):
    """Informational flags; several may be set on one value. Stored as an integer bit set."""

    NONE = 0
    POWER_FAIL = 1 << 0
    CLOCK_ADJUSTED = 1 << 1
    CLOCK_INVALID = 1 << 2
    DATA_NOT_VALID = 1 << 3
    CRITICAL_ERROR = 1 << 4
    DST_ACTIVE = 1 << 5
    PARTIAL = 1 << 6
    LONG = 1 << 7
    SKIPPED = 1 << 8
    OVERFLOW = 1 << 9
    COVER_OPEN = 1 << 10
    REVERSE_ENERGY = 1 << 11
    DISCONNECT_SWITCHED = 1 << 12
    MANUAL_READ = 1 << 13
    DERIVED = 1 << 14


# AMR profile status byte (0.0.96.10.x.255), bit number -> flag.
AMR_STATUS_BITS: dict[int, Flag] = {
    0: Flag.CRITICAL_ERROR,
    1: Flag.CLOCK_INVALID,
    2: Flag.DATA_NOT_VALID,
    3: Flag.DST_ACTIVE,
    5: Flag.CLOCK_ADJUSTED,
    7: Flag.POWER_FAIL,
}


@cache
def flags_from_amr_status(status: int) -> Flag:
    """Translate an AMR profile status byte into informational flags."""
    flags = Flag.NONE
    for bit, flag in AMR_STATUS_BITS.items():
        if status & (1 << bit):
            flags |= flag
    return flags
