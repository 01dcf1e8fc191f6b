from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from headend.vee.model import IntervalRead

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
MIDNIGHT = datetime(2026, 11, 19, tzinfo=ICT)  # a Thursday
LATER = datetime(2027, 6, 1, tzinfo=ICT)  # past the meters' retention: no re-read requests
CHANNEL = "1.0.1.29.0.255"


def series(
    values: Sequence[str | None],
    status: dict[int, int] | None = None,
    meter: str = "M1",
    step_minutes: int = 15,
    start: datetime = MIDNIGHT,
) -> list[IntervalRead]:
    """Reads of one channel from ``start``; ``None`` leaves the interval out."""
    status = status or {}
    return [
        IntervalRead(
            meter,
            CHANNEL,
            start + timedelta(minutes=step_minutes * (i + 1)),
            Decimal(v),
            status.get(i, 0),
        )
        for i, v in enumerate(values)
        if v is not None
    ]
