from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.quality import Flag
from headend.domain.readings import (
    BillingProfile,
    BillingRow,
    ClockReading,
    ClockStatus,
    Column,
    LoadProfile,
    MeterRead,
    ProfileRow,
    RegisterValue,
)
from headend.services.collection.landing import land
from headend.services.registry.imports import import_registry
from headend.store.models import Meter, RawRead, RegisterReading
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import every_stored_interval

A_PLUS = Obis.parse("1.0.1.8.0.255")
START = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


def _meter(store: sessionmaker[Session]) -> int:
    import_registry(
        store,
        REPO / "fixtures" / "sample_fleet.csv",
        SecretBox(TEST_SECRET_KEY),
        frozenset({"single_phase_residential", "three_phase_tou"}),
    )
    with store() as session:
        return session.scalar(select(Meter.id).where(Meter.meter_id == "2611000003")) or 0


def _at(last: int) -> datetime:
    return START + timedelta(minutes=15 * last, seconds=30)


def _read(first: int, last: int, skip: set[int] | None = None) -> MeterRead:
    columns = (
        Column(8, Obis.parse("0.0.1.0.0.255"), 2),
        Column(1, Obis.parse("0.0.96.10.1.255"), 2),
        Column(3, A_PLUS, 2, unit="Wh"),
    )
    rows = tuple(
        ProfileRow(
            START + timedelta(minutes=15 * i),
            0x80 if i == 5 else 0,
            {A_PLUS: Decimal(1_000_000 + 250 * i)},
        )
        for i in range(first, last + 1)
        if i not in (skip or set())
    )
    now = _at(last)
    return MeterRead(
        serial_number="2611000003",
        clock=ClockReading(now, now, ClockStatus(0), 420, False),
        registers={A_PLUS: RegisterValue(A_PLUS, Decimal(1_000_000 + 250 * last), "Wh", 0, 0)},
        load_profile=LoadProfile(Obis.parse("1.0.99.1.0.255"), 900, columns, rows),
    )


def test_intervals_are_the_difference_of_consecutive_register_captures_in_kwh(
    store: sessionmaker[Session],
) -> None:
    meter = _meter(store)
    with store() as session, session.begin():
        landed = land(session, meter, ReadKind.LOAD_PROFILE, _read(0, 8, skip={3, 4}), START, None)
    # row 0 is only the base; rows 1, 2, 5..8 land; row 5 follows a gap of two intervals
    assert landed.intervals == 6
    with store() as session:
        rows = sorted(every_stored_interval(session), key=lambda r: r.interval_end)
    assert [r.value for r in rows] == [
        Decimal("0.25"),
        Decimal("0.25"),
        Decimal("0.75"),
        Decimal("0.25"),
        Decimal("0.25"),
        Decimal("0.25"),
    ]
    after_gap = rows[2]
    assert Flag(after_gap.flags) & Flag.LONG and Flag(after_gap.flags) & Flag.POWER_FAIL
    assert rows[-1].cumulative == Decimal("1002")


def test_landing_the_same_read_twice_stores_it_once_and_a_later_read_continues_from_it(
    store: sessionmaker[Session],
) -> None:
    meter = _meter(store)
    for _ in range(2):
        with store() as session, session.begin():
            land(session, meter, ReadKind.LOAD_PROFILE, _read(0, 4), _at(4), None)
    with store() as session, session.begin():
        landed = land(session, meter, ReadKind.LOAD_PROFILE, _read(4, 10), _at(10), None)
    assert landed.intervals == 6  # rows 5..10, based on row 4 already stored
    with store() as session:
        assert session.scalar(select(func.count()).select_from(RawRead)) == 2
        assert len(every_stored_interval(session)) == 10
        assert session.scalar(select(func.count()).select_from(RegisterReading)) == 2
        register = session.scalars(select(RegisterReading).order_by(RegisterReading.id)).first()
        assert register is not None and register.unit == "kWh" and register.value == Decimal("1001")


def test_a_demand_register_from_the_billing_profile_keeps_its_unit_beside_its_capture_time(
    store: sessionmaker[Session],
) -> None:
    meter = _meter(store)
    demand = Obis.parse("1.0.1.6.0.255")
    captured = START - timedelta(days=3)
    billing = BillingProfile(
        Obis.parse("0.0.98.1.0.255"),
        (
            Column(8, Obis.parse("0.0.1.0.0.255"), 2),
            Column(4, demand, 2, unit="W"),
            Column(4, demand, 5),
        ),
        (BillingRow(START, {demand: Decimal(4200)}, {demand: captured}),),
    )
    read = MeterRead(serial_number="2611000003", billing=billing)
    with store() as session, session.begin():
        land(session, meter, ReadKind.BILLING_PROFILE, read, START, None)
    with store() as session:
        stored = session.scalars(select(RegisterReading)).one()
    assert (stored.obis, stored.value, stored.unit) == (str(demand), Decimal("4.2"), "kW")
    assert stored.capture_time == captured
