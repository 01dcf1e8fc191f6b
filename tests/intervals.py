"""Interval versions as the tests read and write them: through ``IntervalRepository``, the
only way into the packed ``interval_blocks``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.store.base import utcnow
from headend.store.blocks import StoredInterval
from headend.store.models import Meter
from headend.store.repositories.intervals import IntervalRepository

EARLY = datetime(1970, 1, 1, tzinfo=UTC)  # before any interval: ``after`` this is everything


def meter_pk(session: Session, meter_id: str) -> int:
    pk = session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))
    assert pk is not None, f"no meter {meter_id}"
    return pk


def meter_ids(session: Session) -> dict[int, str]:
    """Every meter's id by its primary key."""
    return {pk: meter_id for pk, meter_id in session.execute(select(Meter.id, Meter.meter_id))}


def intervals_of(
    session: Session,
    pk: int,
    channel: str | None = None,
    which: str = "all",
    after: datetime = EARLY,
    until: datetime | None = None,
) -> list[StoredInterval]:
    """The meter's interval versions ending in (after, until], of one channel or all, by
    channel, interval end and version: ``all``, the ``current`` ones or the ``raw`` ones."""
    channels = None if channel is None else [str(channel)]
    return IntervalRepository(session).versions([pk], after, until, channels, which)


def stored_intervals(
    store: sessionmaker[Session],
    meter_id: str,
    channel: str | None = None,
    which: str = "all",
    after: datetime = EARLY,
    until: datetime | None = None,
) -> list[StoredInterval]:
    """``intervals_of`` the meter named ``meter_id``, in a session of its own."""
    with store() as session:
        return intervals_of(session, meter_pk(session, meter_id), channel, which, after, until)


def every_stored_interval(
    session: Session, which: str = "all", after: datetime = EARLY, until: datetime | None = None
) -> list[StoredInterval]:
    """The interval versions of every meter, by meter pk, channel, interval end and version."""
    pks = list(session.scalars(select(Meter.id)))
    return IntervalRepository(session).versions(pks, after, until, None, which)


def store_versions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store interval versions as rows of the old ``interval_readings`` were inserted: version
    0 (the default) is landed, later versions added; ``flags`` default to 0 and
    ``created_at`` to now, as that table's defaults had them."""
    defaults = {"version": 0, "flags": 0, "created_at": utcnow()}
    filled = [defaults | dict(row) for row in rows]
    repo = IntervalRepository(session)
    read = [row for row in filled if row["version"] == 0]
    later = [row for row in filled if row["version"] != 0]
    assert repo.land(read) == len(read), "an interval given as read was stored already"
    repo.add_versions(later)
