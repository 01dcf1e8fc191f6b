"""Operator edits (E10) and their reverts, as new versions.

An edit never changes a version: it makes a new one with quality EDITED, method E10, who,
when and why, pointing at the version it replaces. A revert makes another new version that
restores the content of the version the edit replaced. The store keeps every version; the
history of one interval is what these functions read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from headend.domain.quality import Quality
from headend.vee.codes import EDIT_METHOD
from headend.vee.model import IntervalVersion


class EditError(ValueError):
    """An edit or revert that cannot be made as asked."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Set every interval ending in ``(start, end]`` of one series to ``value``."""

    meter_id: str
    channel: str
    start: datetime
    end: datetime
    value: Decimal
    reason: str
    user: str
    at: datetime


def apply_edit(current: Iterable[IntervalVersion], edit: Edit) -> list[IntervalVersion]:
    """The new versions an edit makes over the ``current`` versions it covers."""
    if not edit.reason.strip():
        raise EditError("an edit needs a reason code")
    if not edit.user.strip():
        raise EditError("an edit needs the user who makes it")
    if edit.value < 0:
        raise EditError(f"an interval cannot hold negative energy ({edit.value} kWh)")
    covered = [
        v
        for v in current
        if v.meter_id == edit.meter_id
        and v.channel == edit.channel
        and edit.start < v.interval_end <= edit.end
    ]
    if not covered:
        raise EditError(
            f"no interval of {edit.meter_id} {edit.channel} ends in "
            f"({edit.start.isoformat()}, {edit.end.isoformat()}]"
        )
    return [
        replace(
            v,
            value=edit.value,
            quality=Quality.EDITED,
            method=EDIT_METHOD,
            inputs=f"edited from {v.value if v.value is not None else 'nothing'} "
            f"({v.quality.value})",
            created_at=edit.at,
            created_by=edit.user,
            reason=edit.reason,
            supersedes=v.created_at,
        )
        for v in covered
    ]


def revert(
    history: Sequence[IntervalVersion], user: str, at: datetime, reason: str
) -> IntervalVersion:
    """Undo the latest edit in one interval's ``history`` (oldest first)."""
    if not history:
        raise EditError("there is no version to revert")
    latest = history[-1]
    if latest.quality is not Quality.EDITED:
        raise EditError(
            f"the current version of {latest.meter_id} {latest.channel} "
            f"{latest.interval_end.isoformat()} is {latest.quality.value}, not an edit"
        )
    before = [v for v in history[:-1] if v.created_at == latest.supersedes]
    if not before:
        raise EditError("the version the edit replaced is not in the history given")
    return replace(
        before[-1], created_at=at, created_by=user, reason=reason, supersedes=latest.created_at
    )
