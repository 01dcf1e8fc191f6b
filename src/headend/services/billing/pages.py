"""The records of meters named by id, read in a reading-only session: what
``BillingService.built`` returns and what a billing worker process builds
(``headend.services.billing.workers``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from headend.services.billing.meters import meters_named
from headend.services.billing.period import BillingPeriod
from headend.services.billing.reads import PageReader
from headend.services.billing.records import Built, build_records


@contextmanager
def reading(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reading only, each statement committed on its own: under READ
    COMMITTED every statement has its own snapshot anyway, and no BEGIN and ROLLBACK
    travel to the database and back."""
    with session_factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def built_named(
    session_factory: sessionmaker[Session],
    reader: PageReader,
    meter_ids: Sequence[str],
    period: BillingPeriod,
) -> list[Built]:
    """The records of the named meters that exist, in meter-id order, each with its JSON."""
    with reading(session_factory) as session:
        meters = meters_named(session, meter_ids)
        page = reader.read(session, meters, period) if meters else None
    return build_records(page, meters) if page is not None else []
