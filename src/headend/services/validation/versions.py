"""A stored interval version as the VEE code sees it."""

from __future__ import annotations

from headend.domain.quality import Flag
from headend.store.blocks import StoredInterval
from headend.vee.model import IntervalVersion


def as_version(row: StoredInterval, meter_id: str) -> IntervalVersion:
    return IntervalVersion(
        meter_id=meter_id,
        channel=row.channel,
        interval_end=row.interval_end,
        value=row.value,
        quality=row.quality,
        method=row.method,
        rules=tuple(row.rules.split(",")) if row.rules else (),
        flags=Flag(row.flags),
        inputs=row.inputs or "",
        created_at=row.created_at,
        created_by=row.created_by,
    )
