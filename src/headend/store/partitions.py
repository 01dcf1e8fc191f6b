"""Monthly partitions of ``interval_blocks`` on PostgreSQL, and the retention of interval data.

The table is partitioned by range of ``day``: one partition per calendar month
(``interval_blocks_y2026m11`` holds November 2026) and a default partition that takes any day
no monthly partition covers yet (history older than the store, a meter clock far ahead), so a
landing is never refused for want of a partition. ``ensure_months`` creates the months asked
for, moving their rows out of the default partition if it holds any; a month is then a table
of its own that can be moved to another tablespace (``ALTER TABLE ... SET TABLESPACE``) once
closed, or dropped whole by ``drop_before`` under a retention setting.

SQLite has no partitions: ``ensure_months`` does nothing there and ``drop_before`` deletes
the rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, text

TABLE = "interval_blocks"
DEFAULT = f"{TABLE}_default"
_NAME = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})$")


def is_partition(name: str | None) -> bool:
    """Whether a table is one of the partitions (the schema's models know only the parent)."""
    return name is not None and (name == DEFAULT or _NAME.match(name) is not None)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s, both included."""
    months, month = [], month_of(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def partition_name(first: date) -> str:
    return f"{TABLE}_y{first.year:04d}m{first.month:02d}"


def existing_months(conn: Connection) -> list[date]:
    """The months that have a partition of their own, in order (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return []
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table"
        ),
        {"table": TABLE},
    ).scalars()
    months = []
    for name in names:
        found = _NAME.match(name)
        if found:
            months.append(date(int(found[1]), int(found[2]), 1))
    return sorted(months)


def create_default(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF {TABLE} DEFAULT"))


def ensure_months(conn: Connection, months: Iterable[date]) -> list[date]:
    """Create the partitions of these months (first days) that do not exist, in the
    caller's transaction; rows of such a month in the default partition move into it.
    Returns the months created."""
    if conn.dialect.name != "postgresql":
        return []
    have = set(existing_months(conn))
    created = []
    for first in sorted({month_of(m) for m in months} - have):
        upper = next_month(first)
        name = partition_name(first)
        bounds = {"lo": first, "hi": upper}
        conn.execute(
            text(
                f"CREATE TEMPORARY TABLE moving ON COMMIT DROP AS "
                f"WITH gone AS (DELETE FROM {DEFAULT} WHERE day >= :lo AND day < :hi "
                f"RETURNING *) SELECT * FROM gone"
            ),
            bounds,
        )
        conn.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{first.isoformat()}') TO ('{upper.isoformat()}')"
            )
        )
        conn.execute(text(f"INSERT INTO {TABLE} SELECT * FROM moving"))
        conn.execute(text("DROP TABLE moving"))
        created.append(first)
    return created


def drop_before(conn: Connection, first_kept: date) -> tuple[list[date], int]:
    """Drop the interval data of the days before ``first_kept`` (a month's first day):
    PostgreSQL drops the months' partitions whole and deletes such rows from the default
    partition; SQLite deletes the rows. Returns (months dropped, rows deleted)."""
    if conn.dialect.name != "postgresql":
        deleted = conn.execute(text(f"DELETE FROM {TABLE} WHERE day < :cut"), {"cut": first_kept})
        return [], int(deleted.rowcount or 0)
    dropped = []
    for first in existing_months(conn):
        if next_month(first) <= first_kept:
            conn.execute(text(f"DROP TABLE {partition_name(first)}"))
            dropped.append(first)
    deleted = conn.execute(text(f"DELETE FROM {DEFAULT} WHERE day < :cut"), {"cut": first_kept})
    return dropped, int(deleted.rowcount or 0)


def months_in_default(conn: Connection) -> list[date]:
    """The months of the rows the default partition holds (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return []
    firsts = conn.execute(
        text(f"SELECT DISTINCT date_trunc('month', day)::date FROM {DEFAULT}")
    ).scalars()
    return sorted(firsts)
