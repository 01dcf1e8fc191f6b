"""A store filled by real collection from a simulated fleet, then VEE, for the billing tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.billing import BillingRecord
from headend.domain.enums import ReadKind
from headend.domain.quality import Quality
from headend.services.billing.service import BillingPeriod, BillingService
from headend.simulator.devices import meter_data
from headend.simulator.spec import MeterSpec
from headend.simulator.truth import Truth
from headend.store.base import Base
from headend.store.blocks import StoredInterval
from headend.store.repositories.rollups import RollupRepository
from tests.intervals import store_versions, stored_intervals
from tests.scheduling.simfleet_store import Clock, make_fleet, serving_into_store

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
A_PLUS = "1.0.1.8.0.255"


@dataclass
class Collected:
    store: sessionmaker[Session]
    specs: dict[str, MeterSpec]
    now: datetime
    day: BillingPeriod  # yesterday in the utility's time zone: collected, validated
    outage: str  # the meter whose power was off for three hours yesterday
    healthy: list[str]  # the others, less the two below
    for_versions: str  # a healthy meter the version test adds versions to
    for_suspect: str  # a healthy meter the suspect test holds an interval of

    def service(self, page_size: int = 500) -> BillingService:
        return BillingService(self.store, ICT, page_size=page_size)

    def truth(self, meter_id: str, period: BillingPeriod) -> Truth:
        return meter_data(self.specs[meter_id]).truth(period.start, period.end)


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def collect(store: sessionmaker[Session], where: Path) -> tuple[list[MeterSpec], Clock]:
    specs = make_fleet(
        where, 10, faults="outage=1:days_ago=1:hour=10:hours=3", transport="wrapper", auth="none"
    )
    clock = Clock()
    with serving_into_store(specs, store, clock) as fleet:
        fleet.collection.settings = replace(fleet.collection.settings, backfill=timedelta(days=3))
        ids = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.FULL, skip_if_active=False)
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
        finally:
            dispatcher.close()
        assert fleet.jobs.summary(ids)["succeeded"] == len(specs)
    return specs, clock


def tariffs(truth: Truth) -> dict[str, Decimal]:
    names = {"T1": "normal", "T2": "peak", "T3": "off_peak"}
    return {names[t]: kwh for t, kwh in truth.tariffs.items()}


def split(record: BillingRecord) -> dict[str, Decimal | None]:
    tou = record.tou
    return {"normal": tou.normal_kwh, "peak": tou.peak_kwh, "off_peak": tou.off_peak_kwh}


def current_version(store: sessionmaker[Session], meter_id: str, end: datetime) -> StoredInterval:
    found = stored_intervals(
        store, meter_id, A_PLUS, "current", after=end - timedelta(seconds=1), until=end
    )
    assert len(found) == 1
    return found[0]


def add_version(
    store: sessionmaker[Session],
    meter_id: str,
    end: datetime,
    quality: Quality,
    value: Decimal | None = None,
) -> None:
    """A new version of an interval, written as every writer does: its meter's day rollups
    are marked stale from it in the same transaction."""
    current = current_version(store, meter_id, end)
    with store() as session, session.begin():
        RollupRepository(session).mark_stale({current.meter_id: end})
        store_versions(
            session,
            [
                {
                    "meter_id": current.meter_id,
                    "channel": A_PLUS,
                    "interval_end": end,
                    "version": current.version + 1,
                    "value": current.value if value is None else value,
                    "quality": quality,
                    "flags": 0,
                    "method": "E10" if quality is Quality.EDITED else None,
                    "created_by": "test",
                }
            ],
        )
