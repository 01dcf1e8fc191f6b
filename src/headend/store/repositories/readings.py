"""Landing of interval and register readings: a re-read is an upsert, never a duplicate.

Readings arrive by the hundred per meter and by the million per day, so they are inserted
with one driver-level ``executemany`` of plain tuples; each value still goes through its
column type's own bind processor, so what is stored is exactly what the ORM would store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    Dialect,
    Executable,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from headend.store.base import table_of
from headend.store.blocks import StoredInterval
from headend.store.models import Meter, MeterEvent, RawRead, RegisterReading
from headend.store.repositories.intervals import IntervalRepository
from headend.store.repositories.rollups import earlier

_REGISTER_KEY = ("meter_id", "obis", "read_at", "version")
Processor = Callable[[Any], Any]


@cache
def _insert_plan(
    table: Table, key: tuple[str, ...], columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[str, ...], tuple[Processor | None, ...], bool]:
    """The INSERT ... ON CONFLICT DO NOTHING of these columns compiled for the dialect's
    driver: its SQL, its parameter names in order, their bind processors, and whether the
    driver takes parameters by position."""
    module: Any = postgresql if dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=list(key))
    compiled = stmt.values({name: bindparam(name) for name in columns}).compile(dialect=dialect)
    names = (
        tuple(compiled.positiontup) if compiled.positional else tuple(compiled.bind_names.values())
    )
    if set(names) != set(columns):
        raise RuntimeError(f"the compiled insert binds {names}, not {columns}")
    processors = tuple(table.c[name].type._cached_bind_processor(dialect) for name in names)
    return compiled.string, names, processors, bool(compiled.positional)


def _insert_ignoring_existing(
    session: Session, table: Table, key: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> int:
    """Insert rows whose key is new; rows already stored stay as they are. Returns how many
    were new."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"landing readings on {dialect.name} is not supported")
    filled = _defaults(table, rows[0])
    columns = tuple(sorted([*rows[0], *filled]))
    sql, names, processors, positional = _insert_plan(table, key, columns, dialect)
    # a filled-in default is the same for every row: process it once
    constant = {
        name: proc(filled[name]) if proc is not None else filled[name]
        for name, proc in zip(names, processors, strict=True)
        if name in filled
    }
    plan = [
        (name, proc, name in constant, constant.get(name))
        for name, proc in zip(names, processors, strict=True)
    ]
    params: Any
    if positional:
        params = [
            tuple([c if fixed else (p(row[n]) if p else row[n]) for n, p, fixed, c in plan])
            for row in rows
        ]
    else:
        params = [
            {n: c if fixed else (p(row[n]) if p else row[n]) for n, p, fixed, c in plan}
            for row in rows
        ]
    result = connection.exec_driver_sql(sql, params)
    return int(result.rowcount)


def _defaults(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Values for the columns a row leaves out: the column's default (evaluated once for the
    whole batch), else NULL. The primary key is left to the database."""
    filled: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key or column.name in row:
            continue
        default: Any = column.default
        if default is None:
            filled[column.name] = None
        elif default.is_callable:
            filled[column.name] = default.arg(None)
        else:
            filled[column.name] = default.arg
    return filled


@cache
def _mark_statement() -> Update:
    since = bindparam("since", type_=Meter.__table__.c.vee_from.type)
    return (
        update(Meter)
        .where(
            Meter.id == bindparam("meter_pk"),
            or_(
                Meter.vee_from.is_(None),
                Meter.vee_from > since,
                Meter.rollup_from.is_(None),
                Meter.rollup_from > since,
            ),
        )
        .values(
            vee_from=earlier(Meter.vee_from, since),
            rollup_from=earlier(Meter.rollup_from, since),
        )
    )


@cache
def _raw_insert_statement(dialect_name: str) -> Executable:
    """INSERT a raw read unless its content is stored already, returning its id."""
    dialect: Any = postgresql if dialect_name == "postgresql" else sqlite
    table = table_of(RawRead)
    statement: Executable = (
        dialect.insert(table)
        .values({c: bindparam(c, type_=table.c[c].type) for c in _RAW_COLUMNS})
        .on_conflict_do_nothing(index_elements=["meter_id", "kind", "content_hash"])
        .returning(table.c.id)
    )
    return statement


_RAW_COLUMNS = (
    "meter_id",
    "job_id",
    "kind",
    "read_at",
    "meter_time",
    "clock_status",
    "payload",
    "content_hash",
)


def _in_range(
    model: type[RegisterReading],
    keys: tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]],
    where: Sequence[Any],
    raw: bool,
) -> Select[Any]:
    """The readings matching ``where``, version 0 (``raw``) or the highest version of each
    ``keys`` (series, instant), ordered by them."""
    stmt = select(model).where(*where)
    if raw:
        stmt = stmt.where(model.version == 0)
    else:
        series, instant = keys
        latest = (
            select(series, instant, func.max(model.version).label("v"))
            .where(*where)
            .group_by(series, instant)
            .subquery()
        )
        stmt = stmt.join(
            latest,
            and_(
                series == latest.c[series.key],
                instant == latest.c[instant.key],
                model.version == latest.c.v,
            ),
        )
    return stmt.order_by(*keys)


class ReadingsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def land_intervals(self, rows: Sequence[dict[str, Any]]) -> int:
        """Land intervals as read (version 0); an interval already landed stays as it was.
        Returns how many were new."""
        return IntervalRepository(self.session).land(rows)

    def land_registers(self, rows: Sequence[dict[str, Any]]) -> int:
        return _insert_ignoring_existing(
            self.session, table_of(RegisterReading), _REGISTER_KEY, rows
        )

    def land_raw(self, values: dict[str, Any]) -> tuple[int, bool]:
        """Land a raw read unless its content is stored already: its id, and whether it is
        new."""
        dialect_name = self.session.get_bind().dialect.name
        inserted = self.session.execute(_raw_insert_statement(dialect_name), values).scalar()
        new_raw = inserted is not None
        if inserted is None:
            inserted = self.session.scalar(
                select(RawRead.id).where(
                    RawRead.meter_id == values["meter_id"],
                    RawRead.kind == values["kind"],
                    RawRead.content_hash == values["content_hash"],
                )
            )
        assert inserted is not None
        return inserted, new_raw

    def land_events(self, rows: Sequence[dict[str, Any]]) -> int:
        """Land meter events; those stored already are kept. Returns how many were new."""
        dialect_name = self.session.get_bind().dialect.name
        dialect: Any = postgresql if dialect_name == "postgresql" else sqlite
        event_table = table_of(MeterEvent)
        return len(
            self.session.execute(
                dialect.insert(event_table)
                .on_conflict_do_nothing(index_elements=["meter_id", "log", "occurred_at", "code"])
                .returning(event_table.c.id),
                rows,
            ).all()
        )

    def capture_before(
        self, meter_pk: int, channels: list[str], end: datetime
    ) -> dict[str, tuple[datetime, Decimal]]:
        """Per channel, the stored capture (end, register value) closest before ``end``."""
        return IntervalRepository(self.session).capture_before(meter_pk, channels, end)

    def mark_for_validation(self, meter_pk: int, since: datetime) -> None:
        """Interval data of the meter from ``since`` on waits for the VEE pass, and its day
        rollups from that day on are stale."""
        self.session.execute(_mark_statement(), {"meter_pk": meter_pk, "since": since})

    def last_interval_ends(self, meter_pks: Sequence[int]) -> dict[int, datetime]:
        """Per meter, the end of its last stored interval (meters with none are left out)."""
        return IntervalRepository(self.session).last_interval_ends(meter_pks)

    def meter_pk(self, meter_id: str) -> int | None:
        return self.session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))

    def intervals(
        self, meter_pk: int, start: datetime, end: datetime, channel: str | None, raw: bool
    ) -> list[StoredInterval]:
        """Intervals ending in (start, end], by channel and time: version 0 (``raw``) or the
        current version."""
        return IntervalRepository(self.session).versions(
            [meter_pk],
            start,
            end,
            None if channel is None else [channel],
            "raw" if raw else "current",
        )

    def registers(
        self, meter_pk: int, start: datetime, end: datetime, obis: str | None, raw: bool
    ) -> list[RegisterReading]:
        """Register reads taken in (start, end], by OBIS code and time: version 0 (``raw``)
        or the current version."""
        r = RegisterReading
        where = [r.meter_id == meter_pk, r.read_at > start, r.read_at <= end]
        if obis is not None:
            where.append(r.obis == obis)
        stmt = _in_range(r, (r.obis, r.read_at), where, raw)
        return list(self.session.scalars(stmt))
