"""What the report and edit services return: frozen values, never ORM rows.

Times are aware and in UTC; a report's *day* is a date in the utility's time zone. Energy is
an exact ``Decimal`` in kWh. The API serialises these models as they are.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from headend.domain.enums import FailureCategory, GatewayKind, JobState
from headend.domain.quality import Quality

Grouping = Literal["gateway", "device_profile", "all"]
FindingStatus = Literal["open", "resolved"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FailedRead(_Frozen):
    """A meter whose last read attempt of the day failed.

    ``category`` and ``detail`` are those of that last attempt. ``last_success_at`` and
    ``consecutive_failures`` are as of the end of the day: the latest successful attempt
    before it ended (on any earlier day too), and the failed attempts since. ``job_state``
    is the state of the job that made the last attempt: ``retry_wait`` means another try is
    coming, ``failed`` that collection gave up on it. ``internal`` marks a failure that is a
    bug of headend's (category ``internal``), neither the meter's nor the registry's.
    """

    meter_id: str
    gateway: str
    gateway_kind: GatewayKind
    device_profile: str
    category: FailureCategory | None
    detail: str | None
    last_attempt_at: datetime
    last_success_at: datetime | None
    consecutive_failures: int = Field(ge=1)
    attempts: int = Field(ge=1, description="attempts on this meter that day")
    job_state: JobState
    internal: bool = Field(False, description="a bug of headend's, not the meter's or ours to fix")


class SuccessRate(_Frozen):
    """How many meters of a group were attempted on a local day and how many were read.

    ``group`` is the gateway name, the device profile, or None when grouping by ``all``.
    ``rate`` is ``succeeded / attempted`` rounded half-up to 4 places.
    """

    day: date
    group: str | None
    attempted: int = Field(ge=1)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    rate: Decimal = Field(ge=0, le=1)


class Finding(_Frozen):
    """A VEE rule that fired on ``(start, end]`` of a meter's channel."""

    id: int
    meter_id: str
    channel: str | None
    rule: str
    start: datetime
    end: datetime
    detail: str
    params: dict[str, Any]
    status: FindingStatus
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None


class IntervalChange(_Frozen):
    """One interval as an edit or a revert left it, and what it was before."""

    interval_end: datetime
    version: int = Field(description="the version the change added")
    value: Decimal | None
    quality: Quality
    previous_version: int
    previous_value: Decimal | None
    previous_quality: Quality


class EditRecord(_Frozen):
    """An operator's edit: what range, what value, who, when and why; and its revert if any.

    ``value`` None means the edit kept each interval's value as it stood (an operator
    accepting the estimates); otherwise every interval in the range was set to ``value`` kWh.
    """

    id: int
    meter_id: str
    channel: str
    start: datetime
    end: datetime
    value: Decimal | None
    reason_code: str
    comment: str | None
    edited_by: str
    edited_at: datetime
    reverted_by: str | None = None
    reverted_at: datetime | None = None


class EditResult(EditRecord):
    """An edit or a revert as just made, with the new version of every interval it touched."""

    changes: tuple[IntervalChange, ...]
