"""Value types going into and coming out of VEE.

Inputs are raw reads (``IntervalRead``, ``RegisterRead``) plus what the head-end knows about
the meter (``MeterContext``, ``ClockCheck``, ``Outage``). The output is a ``VeeResult``: one
``IntervalVersion`` per expected interval, the ``Finding``s that explain them, and the
``ReReadRequest``s the collection layer turns into read jobs. The store persists these as they
are; nothing here knows about SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.quality import Flag, Quality

ParamValue = bool | int | float | str


@dataclass(frozen=True, slots=True)
class IntervalRead:
    """One load-profile entry: energy in kWh over the interval ending at ``interval_end``."""

    meter_id: str
    channel: str
    interval_end: datetime
    value: Decimal
    status: int = 0


@dataclass(frozen=True, slots=True)
class RegisterRead:
    """A cumulative register index in kWh, read at ``read_at``."""

    meter_id: str
    obis: Obis
    read_at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """Meter clock minus reference time, in seconds, observed at ``checked_at``."""

    meter_id: str
    checked_at: datetime
    deviation_s: float


@dataclass(frozen=True, slots=True)
class Outage:
    """A confirmed outage or an open disconnector over ``(start, end]``."""

    meter_id: str
    start: datetime
    end: datetime
    kind: str = "outage"  # "outage" or "disconnected"


@dataclass(frozen=True, slots=True)
class MeterContext:
    """What the registry knows about a meter that changes how it is validated."""

    profile: str | None = None
    meter_class: str | None = None
    interval_multiplier: Decimal = Decimal(1)
    register_multiplier: Decimal = Decimal(1)
    active: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired over ``(start, end]``, with the parameters it ran with."""

    rule: str
    meter_id: str
    channel: str
    start: datetime
    end: datetime
    detail: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    # what of the rule fired ("missing", "billing_gate"...): a finding's period may move from
    # one pass to the next (the billing gate's is the validated window), its kind does not
    kind: str = ""


@dataclass(frozen=True, slots=True)
class IntervalVersion:
    """One version of one interval value, as VEE or an operator produced it.

    ``inputs`` says what an estimate was built from (anchors, like day, register window).
    ``created_by`` is ``"vee"`` for the pipeline, the user id for an edit; ``reason`` is the
    edit's reason code. ``supersedes`` is the ``created_at`` of the version it replaced, if any.
    """

    meter_id: str
    channel: str
    interval_end: datetime
    value: Decimal | None
    quality: Quality
    method: str | None = None
    rules: tuple[str, ...] = ()
    flags: Flag = Flag.NONE
    inputs: str = ""
    created_at: datetime | None = None
    created_by: str = "vee"
    reason: str | None = None
    supersedes: datetime | None = None

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.meter_id, self.channel, self.interval_end)

    def same_content(self, other: IntervalVersion) -> bool:
        """Equal in everything but who made it and when."""
        return (
            self.key == other.key
            and self.value == other.value
            and self.quality is other.quality
            and self.method == other.method
            and self.rules == other.rules
            and self.flags == other.flags
            and self.inputs == other.inputs
        )


@dataclass(frozen=True, slots=True)
class ReReadRequest:
    """Ask collection to read ``(start, end]`` of the load profile again (method E0)."""

    meter_id: str
    channel: str
    start: datetime
    end: datetime
    requested_at: datetime
    not_after: datetime  # the meter's buffer no longer holds the data after this
    attempts: int
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VeeResult:
    """Everything one VEE run produced.

    ``versions`` is the current version of every expected interval; ``new_versions`` the subset
    that differs from the previous versions passed in (what the store must insert).
    """

    versions: tuple[IntervalVersion, ...]
    findings: tuple[Finding, ...]
    reread_requests: tuple[ReReadRequest, ...]
    new_versions: tuple[IntervalVersion, ...]
