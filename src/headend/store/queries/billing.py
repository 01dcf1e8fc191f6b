"""The statements of a billing page (``headend.services.billing.reads``): the page of meters,
register reads and load-profile captures at the boundary instants, the intervals' sums by
meter, channel and quality, and import by local day and time-of-use segment.

Statements that do not depend on the page are built once (per dialect where they differ): a
statement object used again skips most of SQLAlchemy's work per execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from headend.store.base import one_of, table_of
from headend.store.models import IntervalReading, Meter, RegisterReading, RollupBasis
from headend.store.queries.day_rollups import Ranges, ranges_clause
from headend.store.queries.intervals import EpochSeconds, current_intervals

# -- the page of meters ---------------------------------------------------------------------

_METER_COLUMNS = (
    Meter.id,
    Meter.meter_id,
    Meter.service_point,
    Meter.customer_ref,
    Meter.device_profile,
    Meter.ct_ratio,
    Meter.vt_ratio,
    Meter.rollup_from,
    select(RollupBasis.basis).order_by(RollupBasis.id).limit(1).scalar_subquery(),
)


@cache
def _page_statement(first: bool) -> Select[Any]:
    query = select(*_METER_COLUMNS).order_by(Meter.meter_id).limit(bindparam("size"))
    return query if first else query.where(Meter.meter_id > bindparam("after"))


@cache
def _named_statement(dialect: str) -> Select[Any]:
    named = one_of(table_of(Meter).c.meter_id, "meter_ids", dialect)
    return select(*_METER_COLUMNS).where(named).order_by(Meter.meter_id)


@cache
def _ids_statement(first: bool) -> Select[Any]:
    query = select(Meter.meter_id).order_by(Meter.meter_id).limit(bindparam("size"))
    return query if first else query.where(Meter.meter_id > bindparam("after"))


def meter_page_rows(session: Session, after: str | None, size: int) -> Sequence[Any]:
    """The next ``size`` meters in meter-id order after ``after``: pk, meter id, service
    point, customer, device profile, CT and VT ratios, rollup mark, rollup basis."""
    return session.execute(_page_statement(after is None), {"after": after, "size": size}).all()


def meter_ids_page(session: Session, after: str | None, size: int) -> list[str]:
    """The ids of the next ``size`` meters in meter-id order after ``after``."""
    rows = session.execute(_ids_statement(after is None), {"after": after, "size": size}).all()
    return [meter_id for (meter_id,) in rows]


def named_meter_rows(session: Session, meter_ids: Sequence[str]) -> Sequence[Any]:
    """``meter_page_rows`` of the named meters that exist, in meter-id order."""
    dialect = session.get_bind().dialect.name
    return session.execute(_named_statement(dialect), {"meter_ids": list(meter_ids)}).all()


# -- reads at the boundary instants -----------------------------------------------------------


@cache
def _registers_statement(dialect: str) -> Select[Any]:
    t = table_of(RegisterReading)
    return select(
        t.c.meter_id,
        t.c.obis,
        EpochSeconds(t.c.read_at).label("at"),
        t.c.version,
        t.c.value,
        t.c.unit,
        t.c.capture_time,
        t.c.quality,
    ).where(
        one_of(t.c.meter_id, "pks", dialect),
        one_of(t.c.obis, "codes", dialect),
        one_of(t.c.read_at, "instants", dialect),
    )


@cache
def _captures_statement(dialect: str) -> Select[Any]:
    t = table_of(IntervalReading)
    at = EpochSeconds(t.c.interval_end).label("at")
    return select(t.c.meter_id, t.c.channel, at, t.c.cumulative, t.c.quality).where(
        one_of(t.c.meter_id, "pks", dialect),
        one_of(t.c.channel, "channels", dialect),
        one_of(t.c.interval_end, "instants", dialect),
        t.c.version == 0,
        t.c.cumulative.is_not(None),
    )


def boundary_registers(
    session: Session, pks: list[int], codes: list[str], instants: list[datetime]
) -> Sequence[Row[Any]]:
    """Every version of these registers read at these instants: meter_id, obis, at (epoch
    seconds), version, value, unit, capture_time, quality."""
    return session.execute(
        _registers_statement(session.get_bind().dialect.name),
        {"pks": pks, "codes": codes, "instants": instants},
    ).all()


def boundary_captures(
    session: Session, pks: list[int], channels: list[str], instants: list[datetime]
) -> Sequence[Row[Any]]:
    """The load profile's register captures (version 0) at these instants: meter_id,
    channel, at (epoch seconds), cumulative, quality."""
    return session.execute(
        _captures_statement(session.get_bind().dialect.name),
        {"pks": pks, "channels": channels, "instants": instants},
    ).all()


# -- the intervals of what the rollups do not hold ---------------------------------------------


def interval_sums(
    session: Session,
    groups: dict[Ranges, list[int]],
    channels: list[str],
    after: datetime,
    until: datetime,
) -> Any:
    """The current intervals of the grouped meters in their group's spans, by meter, channel
    and quality: (meter, channel, quality, rows, rows with a value, sum, sum of versions)."""
    t = table_of(IntervalReading)
    where = [ranges_clause(t.c.meter_id, t.c.interval_end, groups)]
    picked = [pk for group in groups.values() for pk in group]
    cur = current_intervals(session, picked, channels, after, until, where=where)
    return session.execute(
        select(
            cur.c.meter_id,
            cur.c.channel,
            cur.c.quality,
            func.count(),
            func.count(cur.c.value),
            func.sum(cur.c.value),
            func.sum(cur.c.version),
        ).group_by(cur.c.meter_id, cur.c.channel, cur.c.quality)
    )


def segment_sums(
    session: Session,
    ranged: dict[Ranges, list[int]],
    channel: str,
    after: datetime,
    until: datetime,
    shift: int,
    segments: Sequence[int],
) -> Any:
    """The values of the current intervals of the grouped meters in their group's spans,
    summed by meter, local day and segment of the day: (meter, day, segment, sum). ``shift``
    takes an interval's end (epoch seconds) to its local start; ``segments`` are the minutes
    of the day where a segment begins."""
    t = table_of(IntervalReading)
    where = [ranges_clause(t.c.meter_id, t.c.interval_end, ranged)]
    picked = [pk for group in ranged.values() for pk in group]
    cur = current_intervals(session, picked, [channel], after, until, where=where)
    local = EpochSeconds(cur.c.interval_end) + shift
    minute = local % 86400 // 60
    segment = case(
        *((minute < m, k) for k, m in enumerate(segments[1:])),
        else_=len(segments) - 1,
    )
    parts = (
        select(
            cur.c.meter_id,
            (local // 86400).label("day"),
            segment.label("seg"),
            cur.c.value,
        )
        .where(cur.c.value.is_not(None))
        .subquery()
    )
    return session.execute(
        select(parts.c.meter_id, parts.c.day, parts.c.seg, func.sum(parts.c.value)).group_by(
            parts.c.meter_id, parts.c.day, parts.c.seg
        )
    )
