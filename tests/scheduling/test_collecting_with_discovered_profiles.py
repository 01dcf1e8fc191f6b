"""Collection with profiles discovered from the meters stores what collection with the
shipped profiles stores: the same registers and the same intervals, meter by meter.

A fleet of both models on the TCP wrapper, HDLC buses and a serial line is served twice on
loopback: first on the real time, for discovery (the three-phase model over the wrapper, the
single-phase one over HDLC, with LLS), then on the tests' fixed clock for collection into two
stores, one with the shipped profiles and one with a folder holding the discovered profiles
under the shipped names.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind, Transport
from headend.profiles import classify
from headend.profiles.draft import draft_profile
from headend.profiles.writer import render
from headend.protocol.discover import discover_meter
from headend.protocol.security import MemoryCounterStore
from headend.protocol.transports import Timeouts
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.services.collection.jobs import JobService
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.registry.imports import import_registry
from headend.simulator.devices import cosem_devices, link_parameters
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.models import Meter, RegisterReading
from headend.store.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.intervals import every_stored_interval, meter_ids
from tests.protocol.simfleet import target_for
from tests.scheduling.simfleet_store import PROFILES, Clock, make_fleet

pytestmark = pytest.mark.timeout(180)
KINDS = {"kinds": ["registers", "load_profile", "billing_profile", "events"]}
SINGLE, THREE = "single_phase_residential", "three_phase_tou"
TIMEOUTS = Timeouts(connect=2.0, link=2.0, response=2.0, close=1.0)


@contextmanager
def _served(specs: list[MeterSpec], clock: Clock | None) -> Iterator[BackgroundSimulator]:
    now = clock if clock is not None else (lambda: datetime.now(UTC))
    with BackgroundSimulator(Simulator(specs, cosem_devices(now=now), link_parameters)) as sim:
        yield sim


def _discover(sim: BackgroundSimulator, spec: MeterSpec, folder: Path) -> None:
    target = target_for(spec, sim.endpoint_of(spec.meter_id).address, timeout=3.0)

    async def work() -> str:
        survey = await discover_meter(
            target,
            candidates=classify.CANDIDATES,
            wanted=classify.wanted,
            counters=MemoryCounterStore(),
        )
        draft = draft_profile(
            survey,
            spec.profile,
            source=spec.meter_id,
            discovered_at="now",
            utility_zone="Asia/Ho_Chi_Minh",
        )
        return render(draft)

    (folder / f"{spec.profile}.yaml").write_text(asyncio.run(work()))


def _collect(
    store: sessionmaker[Session], specs: list[MeterSpec], service: CollectionService
) -> None:
    jobs = JobService(store, retry_delay_scale=0.002)
    ids = jobs.queue_for_meters(
        [s.meter_id for s in specs], ReadKind.FULL, params=KINDS, skip_if_active=False
    )
    dispatcher = Dispatcher(
        jobs, service.run, DispatcherLimits(max_sessions=20, poll_interval_s=0.02)
    )
    try:
        assert asyncio.run(dispatcher.run_until_finished(ids, timeout_s=120))
    finally:
        dispatcher.close()
    assert jobs.summary(ids)["succeeded"] == len(specs)


def _stored(
    store: sessionmaker[Session],
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store() as session:
        registers = session.execute(
            select(
                Meter.meter_id,
                RegisterReading.obis,
                RegisterReading.read_at,
                RegisterReading.value,
                RegisterReading.unit,
                RegisterReading.capture_time,
            )
            .join(Meter, Meter.id == RegisterReading.meter_id)
            .order_by(Meter.meter_id, RegisterReading.obis, RegisterReading.read_at)
        ).all()
        names = meter_ids(session)
        versions = sorted(
            every_stored_interval(session),
            key=lambda v: (names[v.meter_id], v.channel, v.interval_end, v.version),
        )
        intervals: list[tuple[object, ...]] = [
            (names[v.meter_id], v.channel, v.interval_end, v.value, v.cumulative, v.status, v.flags)
            for v in versions
        ]
    return [tuple(r) for r in registers], intervals


def test_collection_with_discovered_profiles_stores_what_the_shipped_profiles_store(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    specs = make_fleet(tmp_path, 10, transport="mixed", auth="lls")
    on_tcp = [s for s in specs if s.serial_device is None]
    three = next(s for s in on_tcp if s.profile == THREE and s.transport is Transport.WRAPPER)
    single = next(s for s in on_tcp if s.profile == SINGLE and s.transport is Transport.HDLC)
    assert {s.transport for s in specs} == {Transport.WRAPPER, Transport.HDLC}
    folder = tmp_path / "discovered"
    folder.mkdir()
    with _served(specs, None) as sim:
        _discover(sim, three, folder)
        _discover(sim, single, folder)
    assert {p.stem for p in folder.glob("*.yaml")} == PROFILES

    other_url = f"sqlite:///{tmp_path / 'discovered.db'}"
    migrations.upgrade(other_url)
    engine = make_engine(other_url)
    other = make_session_factory(engine)
    clock = Clock()
    box = SecretBox(TEST_SECRET_KEY)
    settings = CollectionSettings(backfill=timedelta(days=2), timeouts=TIMEOUTS)
    try:
        for target in (store, other):
            import_registry(target, io.StringIO(registry_csv(specs)), box, PROFILES)
        with _served(specs, clock):
            _collect(store, specs, CollectionService(store, box, settings, clock=clock))
            _collect(
                other,
                specs,
                CollectionService(other, box, settings, clock=clock, profiles_dir=folder),
            )
        shipped, discovered = _stored(store), _stored(other)
    finally:
        engine.dispose()
    registers, intervals = shipped
    assert {r[0] for r in registers} == {s.meter_id for s in specs}
    assert {r[1] for r in intervals} >= {"1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255"}
    assert {r[0] for r in intervals} == {s.meter_id for s in specs}
    assert discovered == shipped
