"""Meters that overrun the PDU they took, send every date-time with an unspecified deviation,
or refuse selective access to their profiles, collected with the profiles ``discover`` wrote
for them, store what their well-behaved twins (the same meters without the quirk) store when
collected with the shipped profile: the same registers, and the same intervals at the same
UTC instants.

Each quirky meter is discovered on the real time, over the TCP wrapper and over an HDLC bus;
then the twins and the quirky meters are served in turn on the tests' fixed clock and
collected into two stores.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import Transport
from headend.profiles import classify
from headend.profiles.draft import draft_profile
from headend.profiles.loader import parse_profile
from headend.profiles.writer import render
from headend.protocol.discover import discover_meter
from headend.protocol.security import MemoryCounterStore
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.registry.imports import import_registry
from headend.simulator.registry import registry_csv
from headend.simulator.serve import BackgroundSimulator
from headend.simulator.spec import PDU_OVERRUN, MeterSpec, Quirk
from headend.store import migrations
from headend.store.engine import make_engine, make_session_factory
from headend.store.secrets import SecretBox
from tests.conftest import TEST_SECRET_KEY
from tests.ports import free_port
from tests.protocol.simfleet import meter, target_for
from tests.scheduling.simfleet_store import NOW, PROFILES, Clock
from tests.scheduling.test_collecting_with_discovered_profiles import (
    TIMEOUTS,
    _collect,
    _served,
    _stored,
)

pytestmark = pytest.mark.timeout(240)
SINGLE = "single_phase_residential"
QUIRKS = (Quirk.PDU_IGNORED, Quirk.DEVIATION_UNSPECIFIED, Quirk.NO_SELECTIVE_ACCESS)
EPOCH = NOW.replace(hour=0, minute=0, second=0) - timedelta(days=3)


def _fleet() -> list[MeterSpec]:
    """Each quirk on a meter of the wrapper and on one of an HDLC bus."""
    ports = {Transport.WRAPPER: free_port(), Transport.HDLC: free_port()}
    specs = []
    for transport, port in ports.items():
        for n, quirk in enumerate(QUIRKS):
            spec = meter(
                f"{quirk.value}-{transport.value}",
                transport,
                port,
                logical=n + 1,
                physical=17 + n,
                seed=n,
            )
            specs.append(replace(spec, quirks=(quirk,), epoch=EPOCH, history_days=3))
    return specs


def _name(spec: MeterSpec) -> str:
    """The discovered profile's name: one per quirky meter."""
    return spec.meter_id.replace("-", "_")


def _discover(sim: BackgroundSimulator, spec: MeterSpec, folder: Path) -> Path:
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
            _name(spec),
            source=spec.meter_id,
            discovered_at="now",
            utility_zone="Asia/Ho_Chi_Minh",
        )
        return render(draft)

    path = folder / f"{_name(spec)}.yaml"
    path.write_text(asyncio.run(work()))
    return path


def _collected(
    url: str, specs: list[MeterSpec], clock: Clock, profiles: frozenset[str], folder: Path | None
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    migrations.upgrade(url)
    engine = make_engine(url)
    store: sessionmaker[Session] = make_session_factory(engine)
    box = SecretBox(TEST_SECRET_KEY)
    settings = CollectionSettings(backfill=timedelta(days=2), timeouts=TIMEOUTS)
    try:
        named = [replace(s, profile=_name(s)) if folder is not None else s for s in specs]
        import_registry(store, io.StringIO(registry_csv(named)), box, profiles)
        with _served(specs, clock):
            service = CollectionService(store, box, settings, clock=clock, profiles_dir=folder)
            _collect(store, specs, service)
        return _stored(store)
    finally:
        engine.dispose()


def test_quirky_meters_collected_with_discovered_profiles_store_what_their_twins_store(
    tmp_path: Path,
) -> None:
    quirky = _fleet()
    folder = tmp_path / "discovered"
    folder.mkdir()
    with _served(quirky, None) as sim:
        found = {s.quirks[0]: parse_profile(_discover(sim, s, folder)) for s in quirky}
    # what discovery learned, for the wrapper and for HDLC alike
    assert found[Quirk.PDU_IGNORED].quirks.oversized_pdu_tolerance == PDU_OVERRUN
    assert found[Quirk.DEVIATION_UNSPECIFIED].clock.deviation.value == "unspecified"
    refusing = found[Quirk.NO_SELECTIVE_ACCESS].quirks
    assert (refusing.supports_range_access, refusing.supports_entry_access) == (False, False)

    clock = Clock()
    twins = [replace(s, quirks=()) for s in quirky]
    names = frozenset(_name(s) for s in quirky)
    shipped = _collected(f"sqlite:///{tmp_path / 'twins.db'}", twins, clock, PROFILES, None)
    discovered = _collected(f"sqlite:///{tmp_path / 'quirky.db'}", quirky, clock, names, folder)

    registers, intervals = shipped
    assert {r[0] for r in registers} == {s.meter_id for s in quirky}
    assert {r[0] for r in intervals} == {s.meter_id for s in quirky}
    # the two days of backfill, in quarter-hours, of each meter's import channel
    for spec in quirky:
        ends = [r[2] for r in intervals if r[0] == spec.meter_id and r[1] == "1.0.1.8.0.255"]
        assert len(ends) >= 2 * 96 - 1
    assert discovered == shipped
