"""A simulated fleet on loopback imported into the test store, with a clock the test controls."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from headend.protocol.transports import Timeouts
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.services.collection.jobs import JobService
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.registry.imports import import_registry
from headend.simulator.consumption import MeterData
from headend.simulator.devices import cosem_devices, link_parameters, meter_data
from headend.simulator.faultspec import parse_faults
from headend.simulator.fleet import FleetOptions, generate_fleet
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from headend.store.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.ports import free_ports

PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
# 7.5 minutes past a quarter hour: no read straddles an interval end
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
NOW = NOW.replace(minute=(NOW.minute // 15) * 15) + timedelta(minutes=7, seconds=30)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class StoreFleet:
    specs: dict[str, MeterSpec]
    clock: Clock
    store: sessionmaker[Session]
    jobs: JobService = field(init=False)
    collection: CollectionService = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobService(self.store, retry_delay_scale=0.002, rng=random.Random(5))
        self.collection = CollectionService(
            self.store,
            SecretBox(TEST_SECRET_KEY),
            CollectionSettings(
                backfill=timedelta(days=2),
                timeouts=Timeouts(connect=2.0, link=2.0, response=2.0, close=1.0),
            ),
            clock=self.clock,
        )

    def dispatcher(self, max_sessions: int = 50) -> Dispatcher:
        return Dispatcher(
            self.jobs,
            self.collection.run,
            DispatcherLimits(max_sessions=max_sessions, poll_interval_s=0.02),
        )

    def data(self, meter_id: str) -> MeterData:
        return meter_data(self.specs[meter_id])


def make_fleet(
    tmp_path: Path,
    meters: int,
    *,
    faults: str = "",
    transport: str = "mixed",
    auth: str = "mixed",
    seed: int = 3,
    bus_size: int = 3,
) -> list[MeterSpec]:
    base = free_ports(meters + 4)
    options = FleetOptions(
        meters=meters,
        seed=seed,
        transport=transport,
        auth=auth,
        faults=parse_faults(faults) if faults else (),
        base_port=base,
        pty_dir=str(tmp_path / "pty"),
        history_days=10,
        bus_size=bus_size,
        # the fleet's day is its clock's (NOW is two hours behind: another day from 00:00 to
        # 02:00 local); its history and the days of its data faults count from that day
        today=NOW.astimezone(ZoneInfo(FleetOptions.timezone)).date(),
    )
    return generate_fleet(options)


@contextmanager
def serving_into_store(
    specs: list[MeterSpec], store: sessionmaker[Session], clock: Clock | None = None
) -> Iterator[StoreFleet]:
    clock = clock or Clock()
    import_registry(store, io.StringIO(registry_csv(specs)), SecretBox(TEST_SECRET_KEY), PROFILES)
    simulator = Simulator(specs, cosem_devices(now=clock), link_parameters)
    with BackgroundSimulator(simulator):
        yield StoreFleet({s.meter_id: s for s in specs}, clock, store)
