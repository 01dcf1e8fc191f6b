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

import numpy as np
from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.orm import Session

from headend.store.base import one_of, table_of
from headend.store.blocks import QUALITIES
from headend.store.models import Meter, RegisterReading, RollupBasis
from headend.store.queries.day_rollups import Ranges
from headend.store.queries.intervals import (
    Capture,
    EpochSeconds,
    captures_at,
    current,
    grouped,
    summed,
)

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
) -> Sequence[Capture]:
    """The load profile's register captures (version 0) at these instants: meter_id,
    channel, at (epoch seconds), cumulative, quality."""
    return captures_at(session, pks, channels, instants)


# -- the intervals of what the rollups do not hold ---------------------------------------------


def _spans_of(groups: dict[Ranges, list[int]]) -> dict[int, Ranges]:
    return {pk: spans for spans, pks in groups.items() for pk in pks}


def interval_sums(
    session: Session,
    groups: dict[Ranges, list[int]],
    channels: list[str],
    after: datetime,
    until: datetime,
) -> list[tuple[int, str, str, int, int, int, int]]:
    """The current intervals of the grouped meters in their group's spans, by meter, channel
    and quality: (meter, channel, quality, rows, rows with a value, sum, sum of versions)."""
    spans = _spans_of(groups)
    cur = current(session, list(spans), channels, after, until, spans=spans)
    if not len(cur):
        return []
    keys, inverse = grouped([cur.meter, cur.channel, cur.quality])
    n = len(keys)
    rows = np.bincount(inverse, minlength=n)
    valued = rows - np.bincount(inverse[cur.value_null], minlength=n)
    total = summed(inverse, n, cur.value)
    versions = summed(inverse, n, cur.version)
    return [
        (
            int(pk),
            cur.channels[int(ch)],
            QUALITIES[int(q)].value,
            int(rows[i]),
            int(valued[i]),
            int(total[i]),
            int(versions[i]),
        )
        for i, (pk, ch, q) in enumerate(keys.tolist())
    ]


def segment_sums(
    session: Session,
    ranged: dict[Ranges, list[int]],
    channel: str,
    after: datetime,
    until: datetime,
    shift: int,
    segments: Sequence[int],
) -> list[tuple[int, int, int, int]]:
    """The values of the current intervals of the grouped meters in their group's spans,
    summed by meter, local day and segment of the day: (meter, day, segment, sum). ``shift``
    takes an interval's end (epoch seconds) to its local start; ``segments`` are the minutes
    of the day where a segment begins."""
    spans = _spans_of(ranged)
    cur = current(session, list(spans), [channel], after, until, spans=spans)
    valued = ~cur.value_null
    if not valued.any():
        return []
    local = cur.end[valued] + shift
    day = local // 86400
    minute = local % 86400 // 60
    segment = np.searchsorted(np.asarray(segments, dtype=np.int64), minute, side="right") - 1
    keys, inverse = grouped([cur.meter[valued], day, segment])
    total = summed(inverse, len(keys), cur.value[valued])
    return [
        (int(pk), int(d), int(seg), int(total[i])) for i, (pk, d, seg) in enumerate(keys.tolist())
    ]
