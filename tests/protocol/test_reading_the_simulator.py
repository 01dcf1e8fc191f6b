"""Sessions against the simulator over every transport and authentication level; every value
read is compared with the truth the simulator's consumption model serves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from headend.domain.enums import AuthLevel, Transport
from headend.domain.readings import MeterRead
from headend.protocol.collect import Collection, collect
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, expected_register, meter, quantity_of, serving
from tests.protocol.support import client_descriptors as open_fds
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)

AUTHS = [AuthLevel.NONE, AuthLevel.LLS, AuthLevel.HLS_GMAC]
KINDS = ["wrapper", "hdlc", "serial"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    wrapper_port, hdlc_port = free_port(), free_port()
    tty = str(Path(tmp_path_factory.mktemp("tty")) / "ttyBUS")
    specs = []
    for n, auth in enumerate(AUTHS):
        specs.append(meter(f"W{n}", Transport.WRAPPER, wrapper_port, auth, logical=n + 1, seed=n))
        specs.append(meter(f"H{n}", Transport.HDLC, hdlc_port, auth, physical=17 + n, seed=10 + n))
        specs.append(
            meter(f"S{n}", Transport.HDLC, 0, auth, physical=17 + n, seed=20 + n, serial_device=tty)
        )
    specs.append(
        meter(
            "T0", Transport.WRAPPER, free_port(), AuthLevel.LLS, profile="three_phase_tou", seed=99
        )
    )
    specs.append(
        meter(
            "T1",
            Transport.HDLC,
            free_port(),
            AuthLevel.HLS_GMAC,
            profile="three_phase_tou",
            seed=98,
        )
    )
    with serving(specs) as served:
        yield served


def read(fleet: Fleet, meter_id: str, what: Collection | None = None) -> MeterRead:
    spec = fleet.read_spec(meter_id)
    collection = what or Collection(start=NOW - timedelta(days=1), end=NOW)

    async def go() -> MeterRead:
        async with MeterSession(
            fleet.target(meter_id), counters=MemoryCounterStore(), release=spec.supports_release
        ) as session:
            return await collect(session, spec, collection, DefinitionCache())

    return run(go())


def check_against_truth(fleet: Fleet, meter_id: str, got: MeterRead) -> None:
    profile = fleet.specs[meter_id].profile
    data = fleet.data(meter_id)
    spec = fleet.read_spec(meter_id)
    assert got.serial_number == meter_id
    assert got.clock is not None
    assert got.clock.meter_time == data.meter_time(NOW)
    assert not got.unavailable
    assert set(got.registers) == {r.obis for r in spec.registers}
    for obis, value in got.registers.items():
        assert value.value == expected_register(profile, data, obis, NOW), obis
    assert got.load_profile is not None
    truth = data.intervals(NOW - timedelta(days=1), NOW, now=NOW)
    assert len(got.load_profile.rows) == len(truth) > 0
    for row, want in zip(got.load_profile.rows, truth, strict=True):
        assert row.interval_end == want.end
        assert row.status == want.status
        for obis, value in row.values.items():
            assert value == Decimal(want.registers[quantity_of(profile, obis)]), (row, obis)
        assert spec.load_profile is not None
        numeric = [c for c in spec.load_profile.capture_objects if c.class_id == 3]
        assert len(row.values) == len(numeric)


@pytest.mark.parametrize("auth", range(3), ids=[a.value for a in AUTHS])
@pytest.mark.parametrize("kind", KINDS)
def test_a_daily_collection_reads_the_simulators_truth(fleet: Fleet, kind: str, auth: int) -> None:
    meter_id = {"wrapper": "W", "hdlc": "H", "serial": "S"}[kind] + str(auth)
    before = open_fds()
    got = read(fleet, meter_id)
    check_against_truth(fleet, meter_id, got)
    assert open_fds() == before


@pytest.mark.parametrize("meter_id", ["T0", "T1"])
def test_a_time_of_use_meter_without_get_with_list_and_local_time_reads_its_truth(
    fleet: Fleet, meter_id: str
) -> None:
    got = read(fleet, meter_id)
    check_against_truth(fleet, meter_id, got)
    assert got.clock is not None and got.clock.offset_assumed
    assert got.clock.deviation_min is None
    assert got.clock.meter_time.utcoffset() == timedelta(hours=7)


def test_the_billing_profile_and_event_log_are_read_with_their_truth(fleet: Fleet) -> None:
    what = Collection(
        start=NOW - timedelta(days=5), end=NOW, load_profile=False, billing=True, events=True
    )
    got = read(fleet, "W1", what)
    data = fleet.data("W1")
    assert got.billing is not None
    truth = data.billing_rows(NOW - timedelta(days=5), NOW, now=NOW)
    assert [r.captured_at for r in got.billing.rows] == [t.time for t in truth]
    for row, want in zip(got.billing.rows, truth, strict=True):
        for obis, value in row.values.items():
            quantity = quantity_of("single_phase_residential", obis)
            if quantity == "max_demand":
                assert value == want.max_demand_w
            else:
                assert value == Decimal(want.registers[quantity])
    events = data.events(NOW - timedelta(days=5), NOW)
    assert [(e.at, e.code) for e in got.events] == [(e.time, e.code) for e in events]


def test_the_load_profile_is_read_by_entries_where_the_model_refuses_ranges(fleet: Fleet) -> None:
    spec = fleet.read_spec("W0")
    from dataclasses import replace

    no_ranges = replace(spec, supports_range_access=False)

    async def go() -> MeterRead:
        async with MeterSession(fleet.target("W0")) as session:
            return await collect(
                session,
                no_ranges,
                Collection(start=NOW - timedelta(hours=6), end=NOW),
                DefinitionCache(),
            )

    got = run(go())
    assert got.load_profile is not None and got.load_profile.access == "entry"
    truth = fleet.data("W0").intervals(NOW - timedelta(hours=6), NOW, now=NOW)
    assert [r.interval_end for r in got.load_profile.rows] == [t.end for t in truth]
