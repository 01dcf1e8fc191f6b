"""The store's upkeep: monthly partitions of the interval blocks made ahead of the data, rows
that landed in the default partition moved into their month's, and interval data older than
the retention setting dropped.

It runs when ``headend serve`` starts and every few hours while it runs, and on demand with
``headend db upkeep``. On SQLite there are no partitions; retention deletes the old rows.
Retention (``HEADEND_INTERVAL_RETENTION_MONTHS``, 0: keep everything) drops whole months of
interval versions (the blocks); the day rollups billing reads, raw reads and register reads are
kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import structlog
from sqlalchemy.orm import Session, sessionmaker

from headend.services.clock import Clock, utcnow
from headend.store import partitions

log = structlog.get_logger(__name__)
MONTHS_AHEAD = 2


@dataclass
class UpkeepSummary:
    created: list[date] = field(default_factory=list)  # months given a partition
    dropped: list[date] = field(default_factory=list)  # months whose partition was dropped
    deleted: int = 0  # blocks deleted (SQLite, or the default partition's)
    first_kept: date | None = None  # the first day kept under the retention setting

    def as_dict(self) -> dict[str, object]:
        return {
            "partitions_created": [m.strftime("%Y-%m") for m in self.created],
            "partitions_dropped": [m.strftime("%Y-%m") for m in self.dropped],
            "blocks_deleted": self.deleted,
            "first_day_kept": None if self.first_kept is None else self.first_kept.isoformat(),
        }


def first_kept(today: date, retention_months: int) -> date:
    """The first day of the month ``retention_months`` before today's."""
    months = today.year * 12 + today.month - 1 - retention_months
    return date(months // 12, months % 12 + 1, 1)


class StoreUpkeep:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        retention_months: int = 0,
        clock: Clock = utcnow,
    ) -> None:
        if retention_months < 0:
            raise ValueError("the retention is a number of months, 0 to keep everything")
        self.session_factory = session_factory
        self.retention_months = retention_months
        self.clock = clock

    def run(self) -> UpkeepSummary:
        summary = UpkeepSummary()
        today = self.clock().date()
        with self.session_factory() as session, session.begin():
            conn = session.connection()
            ahead = partitions.month_of(today)
            for _ in range(MONTHS_AHEAD):
                ahead = partitions.next_month(ahead)
            wanted = partitions.months_between(today, ahead)
            wanted += partitions.months_in_default(conn)  # rows waiting for their month
            if self.retention_months:
                summary.first_kept = first_kept(today, self.retention_months)
                wanted = [m for m in wanted if m >= summary.first_kept]
                summary.dropped, summary.deleted = partitions.drop_before(conn, summary.first_kept)
            summary.created = partitions.ensure_months(conn, wanted)
        if summary.created or summary.dropped or summary.deleted:
            log.info("store upkeep", **summary.as_dict())
        return summary
