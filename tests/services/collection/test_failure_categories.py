"""Which party a failed read points at: a bug of ours, a store that refused, or the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.domain.jobs import RETRY_RULES
from headend.domain.readings import MeterRead
from headend.protocol.collect import Collection
from headend.protocol.plan import ReadSpec
from headend.protocol.session import MeterSession
from headend.services.collection.runner import CollectionService
from headend.store.models import Meter, ReadAttempt, ReadJob
from tests.scheduling.simfleet_store import StoreFleet, make_fleet, serving_into_store

pytestmark = pytest.mark.timeout(60)


class BuggyRead(CollectionService):
    """A read function with a bug of ours in it."""

    async def read(self, session: MeterSession, spec: ReadSpec, what: Collection) -> MeterRead:
        raise RuntimeError("a bug of ours")


class RefusingStore(CollectionService):
    """A store that refuses to land anything, for good (not a busy file it waits out)."""

    def land_reads(self, items: Any) -> list[Any]:
        raise IntegrityError("INSERT INTO raw_reads", {}, Exception("CHECK constraint failed"))


def _one_attempt(fleet: StoreFleet, service: CollectionService) -> tuple[ReadJob, ReadAttempt]:
    (job_id,) = fleet.jobs.queue_for_meters(list(fleet.specs), ReadKind.REGISTERS)
    (due,) = fleet.jobs.due(10, set())
    assert fleet.jobs.start(due)
    outcome = asyncio.run(service.run(due))
    fleet.jobs.finish(due, outcome)
    with fleet.store() as session:
        job = session.get(ReadJob, job_id)
        attempt = session.scalars(select(ReadAttempt).where(ReadAttempt.job_id == job_id)).one()
        assert job is not None
        session.expunge_all()
        return job, attempt


def _service(cls: type[CollectionService], fleet: StoreFleet) -> CollectionService:
    base = fleet.collection
    return cls(base.session_factory, base.box, base.settings, clock=fleet.clock)


def test_an_unexpected_exception_while_reading_is_filed_as_internal_and_not_retried(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    with serving_into_store(specs, store) as fleet:
        job, attempt = _one_attempt(fleet, _service(BuggyRead, fleet))
    assert attempt.failure_category is FailureCategory.INTERNAL
    assert "RuntimeError" in (attempt.failure_detail or "")
    assert job.state is JobState.FAILED
    assert not RETRY_RULES[FailureCategory.INTERNAL].retry


def test_a_read_the_store_refused_to_land_is_filed_as_store_refused_and_retried(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    with serving_into_store(specs, store) as fleet:
        job, attempt = _one_attempt(fleet, _service(RefusingStore, fleet))
    assert attempt.failure_category is FailureCategory.STORE_REFUSED
    assert job.failure_category is FailureCategory.STORE_REFUSED
    assert job.state is JobState.RETRY_WAIT


def test_a_meter_missing_from_the_registry_is_still_a_configuration_failure(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 1, transport="wrapper", auth="none")
    with serving_into_store(specs, store) as fleet:
        with fleet.store() as session, session.begin():
            meter = session.scalars(select(Meter)).one()
            meter.device_profile = "no_such_profile"
        job, attempt = _one_attempt(fleet, fleet.collection)
    assert attempt.failure_category is FailureCategory.CONFIGURATION
    assert job.state is JobState.FAILED
