"""Scheduled collection of meters whose device profile is wrong for them: the job fails as
``configuration`` (not retried) with a detail naming the meter's value and the profile's, and
nothing of the read lands: 48 intervals a day where the meter captured 96 never reach billing.
A meter its profile describes is collected as before."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import FailureCategory, JobState, ReadKind
from headend.services.registry.imports import import_registry
from headend.simulator.devices import cosem_devices, link_parameters
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from headend.store.models import Meter, RawRead, ReadJob
from headend.store.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.intervals import every_stored_interval, meter_ids
from tests.scheduling.simfleet_store import PROFILES, Clock, StoreFleet, make_fleet

pytestmark = pytest.mark.timeout(120)
TOU, SINGLE = "three_phase_tou", "single_phase_residential"
COLUMNS = "0.0.1.0.0.255/2, 0.0.96.10.1.255/2, 1.0.1.8.0.255/2, 1.0.2.8.0.255/2"


@contextmanager
def registered_as(
    specs: list[MeterSpec], profiles: dict[str, str], store: sessionmaker[Session]
) -> Iterator[StoreFleet]:
    """Serve ``specs``, registered in the store with the profile ``profiles`` names (by meter
    id) where it is not the one they are simulated with."""
    registered = [replace(s, profile=profiles.get(s.meter_id, s.profile)) for s in specs]
    csv = registry_csv(registered)
    import_registry(store, io.StringIO(csv), SecretBox(TEST_SECRET_KEY), PROFILES)
    clock = Clock()
    with BackgroundSimulator(Simulator(specs, cosem_devices(now=clock), link_parameters)):
        yield StoreFleet({s.meter_id: s for s in specs}, clock, store)


def test_meters_their_profile_misdescribes_fail_as_configuration_and_land_nothing(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    made = make_fleet(tmp_path, 4, transport="mixed", auth="none")
    assert {s.transport.value for s in made} == {"wrapper", "hdlc"}
    tou = [replace(s, profile=TOU, shape="business", capture_period_s=1800) for s in made]
    healthy, every_900, other_model, single = tou[0], tou[1], tou[2], made[3]
    every_900 = replace(every_900, capture_period_s=900)  # its profile says 1800 s
    other_model = replace(other_model, capture_period_s=900)  # registered as single-phase
    specs = [healthy, every_900, other_model, single]
    with registered_as(specs, {other_model.meter_id: SINGLE}, store) as fleet:
        ids = fleet.jobs.queue_for_meters(
            list(fleet.specs),
            ReadKind.FULL,
            params={"kinds": ["registers", "load_profile"]},
            skip_if_active=False,
        )
        dispatcher = fleet.dispatcher()
        try:
            assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=90))
        finally:
            dispatcher.close()
        summary = fleet.jobs.summary(ids)
    assert summary["succeeded"] == 2 and summary["failed"] == 2
    assert summary["failures_by_category"] == {"configuration": 2}
    with store() as session:
        jobs = {
            meter_id: job
            for meter_id, job in session.execute(
                select(Meter.meter_id, ReadJob).join(Meter, ReadJob.meter_id == Meter.id)
            ).all()
        }
        names = meter_ids(session)
        landed = Counter(names[v.meter_id] for v in every_stored_interval(session))
        raw = set(
            session.scalars(select(Meter.meter_id).join(RawRead, RawRead.meter_id == Meter.id))
        )
    for failed in (every_900, other_model):
        job = jobs[failed.meter_id]
        assert job.state is JobState.FAILED
        assert job.failure_category is FailureCategory.CONFIGURATION
        assert job.attempts == 1  # the profile's mistake: trying again would not help
        assert failed.meter_id not in landed and failed.meter_id not in raw
    assert jobs[every_900.meter_id].failure_detail == (
        "configuration: load profile 1.0.99.1.0.255: capture period 900 s on the meter, "
        f"1800 s in profile {TOU}"
    )
    assert jobs[other_model.meter_id].failure_detail == (
        f"configuration: load profile 1.0.99.1.0.255: capture objects [{COLUMNS}, "
        f"1.0.3.8.0.255/2] on the meter, [{COLUMNS}] in profile {SINGLE}"
    )
    for fine in (healthy, single):
        assert jobs[fine.meter_id].state is JobState.SUCCEEDED
        assert landed[fine.meter_id] > 0
