"""Statements behind the day rollups' freshness: marking meters stale, taking a batch of them
for the rollup pass, clearing a mark only if it is still the one read, and the basis row.

Every writer of interval versions (``interval_blocks``) marks the meter in the same
transaction with the earliest interval end it changed: ``meters.rollup_from`` becomes the
earlier of what it held and that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, case, insert, or_, select, text, update
from sqlalchemy.orm import Session

from headend.store.base import table_of, utcnow
from headend.store.models import IntervalDay, IntervalDayEnd, Meter, RollupBasis

BASIS_ROW = 1


def earlier(column: Any, since: Any) -> Any:
    """``since`` where the column is empty or later, else the column: min(column, since)."""
    return case((or_(column.is_(None), column > since), since), else_=column)


@cache
def _mark_statement() -> Update:
    meters = table_of(Meter)
    since = bindparam("since", type_=meters.c.rollup_from.type)
    return (
        update(meters)
        .where(
            meters.c.id == bindparam("meter_pk"),
            or_(meters.c.rollup_from.is_(None), meters.c.rollup_from > since),
        )
        .values(rollup_from=since)
    )


@cache
def _clear_statement() -> Update:
    meters = table_of(Meter)
    kind = meters.c.rollup_from.type
    return (
        update(meters)
        .where(
            meters.c.id == bindparam("meter_pk"),
            meters.c.rollup_from == bindparam("seen", type_=kind),
        )
        .values(rollup_from=bindparam("after", type_=kind))
    )


class RollupRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def without_jit(self) -> None:
        """On PostgreSQL, no JIT compilation in this transaction: compiling a rollup batch's
        statement costs more than it saves on a batch of the pass's size."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET LOCAL jit = off"))

    def add_days(self, rows: Sequence[dict[str, Any]], ends: Sequence[dict[str, Any]] = ()) -> None:
        """Store day rows (``interval_days``) and day ends (``interval_day_ends``) computed by
        the rollup pass."""
        for table, found in ((IntervalDay, rows), (IntervalDayEnd, ends)):
            if found:
                self.session.execute(insert(table_of(table)), list(found))

    def mark_stale(self, since: Mapping[int, datetime]) -> None:
        """The rollups of each meter from its instant's local day on are stale."""
        if since:
            rows = [{"meter_pk": pk, "since": at} for pk, at in sorted(since.items())]
            self.session.execute(_mark_statement(), rows)

    def mark_all_stale(self, since: datetime) -> None:
        self.session.execute(update(Meter).values(rollup_from=since))

    def stale_meters(self, after_pk: int, limit: int) -> list[tuple[int, datetime, str]]:
        """The next marked meters after ``after_pk``: (pk, rollup_from, device profile).

        On PostgreSQL their rows stay locked until the transaction ends, so a writer's mark
        made meanwhile waits and lands after the pass's clear; meters another transaction
        holds are skipped, to be taken by the next pass.
        """
        rows = self.session.execute(
            select(Meter.id, Meter.rollup_from, Meter.device_profile)
            .where(Meter.rollup_from.is_not(None), Meter.id > after_pk)
            .order_by(Meter.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(pk, since, profile) for pk, since, profile in rows if since is not None]

    def clear(self, seen: Sequence[tuple[int, datetime, datetime | None]]) -> int:
        """Set each meter's mark to its ``after`` value (None: fresh) where it still holds
        the value ``seen``; a mark moved meanwhile stays. Returns how many were cleared."""
        if not seen:
            return 0
        rows = [{"meter_pk": pk, "seen": was, "after": after} for pk, was, after in seen]
        result = self.session.execute(_clear_statement(), rows)
        return int(result.rowcount)  # type: ignore[attr-defined]

    def basis(self) -> str | None:
        return self.session.scalar(select(RollupBasis.basis).where(RollupBasis.id == BASIS_ROW))

    def set_basis(self, basis: str) -> None:
        table = table_of(RollupBasis)
        found = self.session.execute(
            update(table).where(table.c.id == BASIS_ROW).values(basis=basis, updated_at=utcnow())
        )
        if not found.rowcount:  # type: ignore[attr-defined]
            self.session.execute(
                table.insert().values(id=BASIS_ROW, basis=basis, updated_at=utcnow())
            )
