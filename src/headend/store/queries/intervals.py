"""Statements over ``interval_readings`` shared by billing, the NEM12 export and the rollup
pass: the current version of every interval in a span, epoch seconds of a timestamp, and the
UTC offset of an instant as a SQL expression.

The current version of an interval is its highest. PostgreSQL picks it with ``DISTINCT ON``
walking the unique index backwards; SQLite with ``max(version)``, whose group takes its other
columns from the newest row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Subquery,
    case,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from headend.store.base import table_of
from headend.store.models import IntervalReading


class EpochSeconds(FunctionElement[int]):
    """Seconds since 1970 of a UTC timestamp column, as an integer."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part gives a double: cheaper than EXTRACT's numeric, exact for whole seconds
    return f"CAST(date_part('epoch', {compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text (headend.store.types.UtcDateTime)
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def offset_at(second: ColumnElement[int], spans: Sequence[tuple[int, int, int]]) -> Any:
    """The UTC offset (seconds) at an instant given as seconds since 1970, from ``[a, b)``
    spans of one offset each (``headend.domain.local_days.offset_spans``); instants before
    the first span take its offset, after the last the last one's."""
    if len(spans) == 1:
        return literal(spans[0][2], BigInteger)
    return case(
        *((second < b, literal(o, BigInteger)) for _, b, o in spans[:-1]),
        else_=literal(spans[-1][2], BigInteger),
    )


def current_intervals(
    session: Session,
    pks: Sequence[int],
    channels: Sequence[str],
    after: datetime,
    until: datetime,
    *extra: str,
    where: Sequence[ColumnElement[bool]] = (),
    computed: Sequence[ColumnElement[Any]] = (),
) -> Subquery:
    """The current (highest) version of each interval ending in ``(after, until]``: columns
    meter_id, channel, interval_end, version, value (integer micro-kWh), quality, ``extra``.
    ``where`` narrows it further (conditions on ``table_of(IntervalReading)``), never
    dropping a version of an interval it keeps; ``computed`` adds labelled expressions of
    ``interval_end`` (and the interval's key), evaluated once per row."""
    t = table_of(IntervalReading)
    columns = [
        t.c.meter_id,
        t.c.channel,
        t.c.interval_end,
        t.c.version,
        type_coerce(t.c.value, BigInteger).label("value"),
        t.c.quality,
        *(t.c[name] for name in extra),
        *computed,
    ]
    conditions = (
        t.c.meter_id.in_(list(pks)),
        t.c.channel.in_(list(channels)),
        t.c.interval_end > after,
        t.c.interval_end <= until,
        *where,
    )
    key = (t.c.meter_id, t.c.channel, t.c.interval_end)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # the unique index (meter_id, channel, interval_end, version) walked backwards
        newest = [c.desc() for c in (*key, t.c.version)]
        query = select(*columns).where(*conditions)
        return _distinct_on(query, key).order_by(*newest).subquery()
    if dialect == "sqlite":
        # SQLite takes the other columns of a max() group from the row holding the maximum
        columns[3] = func.max(t.c.version).label("version")
        return select(*columns).where(*conditions).group_by(*key).subquery()
    latest = func.max(t.c.version).over(partition_by=key).label("latest")
    ranked = select(*columns, latest).where(*conditions).subquery()
    names = [c.name for c in columns]
    return (
        select(*(ranked.c[n] for n in names)).where(ranked.c.version == ranked.c.latest).subquery()
    )


def current_rows(
    session: Session,
    pks: Sequence[int],
    channels: Sequence[str],
    after: datetime,
    until: datetime,
    *extra: str,
) -> Sequence[Row[Any]]:
    """The rows of ``current_intervals``."""
    cur = current_intervals(session, pks, channels, after, until, *extra)
    return session.execute(select(cur)).all()


def _distinct_on(query: Select[Any], key: Sequence[ColumnElement[Any]]) -> Select[Any]:
    extension = getattr(postgresql, "distinct_on", None)  # SQLAlchemy 2.1; 2.0 had distinct()
    return query.ext(extension(*key)) if extension is not None else query.distinct(*key)
