"""Landing of interval and register readings: a re-read is an upsert, never a duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from headend.store.base import table_of
from headend.store.models import IntervalReading, RegisterReading

_INTERVAL_KEY = ("meter_id", "channel", "interval_end", "version")
_REGISTER_KEY = ("meter_id", "obis", "read_at", "version")


def _insert_ignoring_existing(
    session: Session, table: Table, key: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> int:
    """Insert rows whose key is new; rows already stored stay as they are. Returns how many
    were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"landing readings on {dialect} is not supported")
    stmt = (
        module.insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id)
    )
    return len(session.execute(stmt, list(rows)).all())


class ReadingsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def land_intervals(self, rows: Sequence[dict[str, Any]]) -> int:
        """Land interval readings (normally version 0, as read); existing keys are kept."""
        return _insert_ignoring_existing(
            self.session, table_of(IntervalReading), _INTERVAL_KEY, rows
        )

    def land_registers(self, rows: Sequence[dict[str, Any]]) -> int:
        return _insert_ignoring_existing(
            self.session, table_of(RegisterReading), _REGISTER_KEY, rows
        )
