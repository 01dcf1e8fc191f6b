"""Billing records from the store: one meter's, or every meter's page by page; billing periods.

``BillingService.record`` builds one meter's ``BillingRecord`` (rules in
``headend.domain.billing``); ``records`` streams every meter's in meter-id order, a page of
meters per transaction, resuming after a cursor; ``record_json`` and ``records_json`` give
the same records as the JSON written once while building them (the API sends it as it is);
``nem12`` writes the NEM12 profile export (``headend.services.billing.nem12``).

A page takes the same few statements whatever its size (``headend.services.billing.reads``;
the records are built from them by ``headend.services.billing.records``):

1. the page of meters (keyset pagination on ``meter_id``), with each meter's ``rollup_from``
   mark and the basis the stored day rollups were computed on;
2. register reads at the period's boundary instants (billing-profile snapshots);
3. the load profile's register captures at those instants (the fallback for 2);
4. the day rollups (``interval_days``) of each meter's whole local days before its mark,
   summed by meter, channel and quality, time-of-use sums included
   (``headend.store.queries.day_rollups``, ``headend.services.validation.rollups``);
5. only for what the rollups do not hold (days from the mark on, part-days at the ends of a
   period off midnight, everything when the rollups are on another basis): the current
   version of every interval there, counted and summed by meter, channel and quality;
6. only for meters whose time-of-use split comes from intervals, and only for what the
   rollups do not hold: import summed by local day and time-of-use segment.

With fresh rollups a month costs a few dozen rows per meter (statement 4) instead of about
12,000 intervals (two channels, two versions); statements 5 and 6 then read a day or two of
the meters whose data changed since the last rollup pass, or nothing. The current version of
an interval is its highest (``headend.store.queries.intervals``). Values are summed in SQL as
the integers of micro-kWh they are stored as, and become ``Decimal`` once per sum. Pages are
read one ahead of the records being built (``headend.services.billing.prefetch``), or, given
``PageWorkers``, read and built by a pool of worker processes
(``headend.services.billing.workers``).

What the meter measures is read from its device profile (in the ``profiles_dir`` folder, the
shipped ``protocols/`` by default): the import and export registers and which of them a record
bills (``billing.quantities``), the load profile's capture period and channels, the tariff
registers and the time-of-use period of each (``tariffs.registers``), the maximum-demand
register and its unit.
A boundary instant is the last interval end at or before each end of the period; an
interval belongs to the period when it ends after its start and at or before its end.
Where the meter's maximum-demand register is taken from, and the quality and billability of
a record, are documented in ``headend.domain.billing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.billing import BillingRecord
from headend.domain.tou import TouCalendar
from headend.services.billing.meters import (
    meter_ids_after,
    meter_page,
    profiles_calendar,
)
from headend.services.billing.nem12 import Nem12Writer, TextSink
from headend.services.billing.pages import built_named, reading
from headend.services.billing.period import BillingPeriod, PeriodError, parse_period
from headend.services.billing.prefetch import prefetched
from headend.services.billing.reads import PageReader
from headend.services.billing.records import Built, build_records
from headend.services.billing.workers import PageWorkers, page_csv, page_json
from headend.services.errors import UnknownMeter

__all__ = [
    "BillingPeriod",
    "BillingService",
    "PeriodError",
    "UnknownMeter",
    "parse_period",
]

DEFAULT_PAGE_SIZE = 500
T = TypeVar("T")
# a page as read: how many meters it has, the last one's id, what it hands out (None: nothing)
_Page = tuple[int, str | None, T | None]


def page_workers(
    database_url: str, tz: ZoneInfo, processes: int, profiles_dir: Path | None = None
) -> PageWorkers | None:
    """``processes`` worker processes on the store at ``database_url`` (started on first
    use), reading device profiles from ``profiles_dir``; None for none, or for a store that
    lives in this process's memory."""
    if processes < 1 or ":memory:" in database_url:
        return None
    return PageWorkers(database_url, tz, processes, DEFAULT_PAGE_SIZE, profiles_dir)


class BillingService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        tz: ZoneInfo,
        calendar: TouCalendar | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        rollups: bool = True,
        workers: PageWorkers | None = None,
        profiles_dir: Path | None = None,
    ) -> None:
        """``rollups=False`` reads every interval of the period and no day rollup: the same
        records, slower; a cross-check of the rollups. With ``workers``, ``records_json``
        and ``csv_rows`` have the pages built by those processes (give them the same
        ``profiles_dir``). ``profiles_dir``: the folder of device profiles (the
        ``profiles_dir`` setting; None: the shipped ``protocols/`` folder)."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.session_factory = session_factory
        self.tz = tz
        self.profiles_dir = profiles_dir
        self.calendar = calendar or profiles_calendar(tz, profiles_dir)
        self.page_size = page_size
        self._reader = PageReader(
            self.tz, self.calendar, rollups=rollups, profiles_dir=profiles_dir
        )
        self.workers = workers

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with reading(self.session_factory) as session:
            yield session

    def record(self, meter_id: str, period: BillingPeriod) -> BillingRecord:
        """One meter's billing record; ``UnknownMeter`` if the registry has no such meter."""
        return self._one(meter_id, period)[0]

    def record_json(self, meter_id: str, period: BillingPeriod) -> str:
        """``record`` as JSON, exactly ``record(...).model_dump_json()``."""
        return self._one(meter_id, period)[1]

    def records(
        self, period: BillingPeriod, after: str | None = None, limit: int | None = None
    ) -> Iterator[BillingRecord]:
        """Every meter's record in meter-id order, from the meter after ``after`` on, at most
        ``limit`` of them. Each page of meters is read in its own short transaction and
        handed out after it is closed, so a slow consumer holds no transaction open; the
        next page is read meanwhile (``headend.services.billing.prefetch``)."""
        for build in prefetched(self._pages(period, after, limit)):
            for record, _ in build():
                yield record

    def records_json(
        self, period: BillingPeriod, after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """``records`` as JSON, each exactly its ``model_dump_json()``."""
        if self.workers is not None:
            yield from self.workers.in_order(page_json, self._id_pages(after, limit), period)
            return
        for build in prefetched(self._pages(period, after, limit)):
            for _, text in build():
                yield text

    def csv_rows(
        self, period: BillingPeriod, after: str | None = None, limit: int | None = None
    ) -> Iterator[list[str]]:
        """``records`` as CSV rows (``BillingRecord.csv_row``), without the header."""
        if self.workers is not None:
            yield from self.workers.in_order(page_csv, self._id_pages(after, limit), period)
            return
        for record in self.records(period, after, limit):
            yield record.csv_row()

    def built(self, meter_ids: Sequence[str], period: BillingPeriod) -> list[Built]:
        """The records of the named meters that exist, in meter-id order, each with its JSON."""
        return built_named(self.session_factory, self._reader, meter_ids, period)

    def _one(self, meter_id: str, period: BillingPeriod) -> Built:
        found = self.built([meter_id], period)
        if not found:
            raise UnknownMeter([meter_id])
        return found[0]

    def _id_pages(self, after: str | None, limit: int | None) -> Iterator[list[str]]:
        """The meter ids of each page, in order, each page read in its own short session."""

        def ids(session: Session, cursor: str | None, size: int) -> _Page[list[str]]:
            found = meter_ids_after(session, cursor, size)
            return len(found), found[-1] if found else None, found or None

        return self._paged(after, limit, ids)

    def _pages(
        self, period: BillingPeriod, after: str | None, limit: int | None
    ) -> Iterator[Callable[[], list[Built]]]:
        """Page after page, read from the store; each gives how to build its records."""

        def page(
            session: Session, cursor: str | None, size: int
        ) -> _Page[Callable[[], list[Built]]]:
            meters = meter_page(session, cursor, size)
            if not meters:
                return 0, None, None
            data = self._reader.read(session, meters, period)
            return len(meters), meters[-1].meter_id, partial(build_records, data, meters)

        return self._paged(after, limit, page)

    def _paged(
        self,
        after: str | None,
        limit: int | None,
        read: Callable[[Session, str | None, int], _Page[T]],
    ) -> Iterator[T]:
        """Pages of meters in meter-id order from the meter after ``after`` on, at most
        ``limit`` meters, each read by ``read(session, cursor, size)`` in its own short
        session; ``read`` gives the page's number of meters, the last one's id and what to
        hand out (None: nothing)."""
        cursor, remaining = after, limit
        while remaining is None or remaining > 0:
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            with self._reading() as session:
                count, last, item = read(session, cursor, size)
            if item is not None:
                yield item
            if count < size:
                return
            cursor = last
            if remaining is not None:
                remaining -= count

    def nem12(
        self,
        period: BillingPeriod,
        out: TextSink,
        meter_ids: Sequence[str] | None = None,
        now: datetime | None = None,
        *,
        from_participant: str = "HEADEND",
        to_participant: str = "EVN",
    ) -> int:
        """Write the period's intervals as a NEM12 profile file; returns the 300 records."""
        writer = Nem12Writer(
            self.session_factory,
            self.tz,
            from_participant=from_participant,
            to_participant=to_participant,
            page_size=max(1, self.page_size // 20),
            profiles_dir=self.profiles_dir,
        )
        return writer.write(period, out, meter_ids, now)
