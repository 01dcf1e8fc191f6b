from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.quality import Quality
from headend.services.registry.imports import import_registry
from headend.store.models import Meter, RegisterReading
from headend.store.repositories.readings import ReadingsRepository
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import every_stored_interval

PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})


def _meter_pk(store: sessionmaker[Session]) -> int:
    import_registry(
        store, REPO / "fixtures" / "sample_fleet.csv", SecretBox(TEST_SECRET_KEY), PROFILES
    )
    with store() as session:
        return session.scalars(select(Meter.id).order_by(Meter.id)).first() or 0


def _intervals(meter: int, count: int) -> list[dict[str, object]]:
    start = datetime(2026, 11, 1, 17, 0, tzinfo=UTC)
    return [
        {
            "meter_id": meter,
            "channel": "1.0.1.8.0.255",
            "interval_end": start + timedelta(minutes=15 * i),
            "version": 0,
            "value": Decimal("0.125") * i,
            "quality": Quality.RAW,
            "flags": 0,
            "status": 0,
            "created_by": "meter",
        }
        for i in range(1, count + 1)
    ]


def test_rereading_an_interval_does_not_duplicate_it(store: sessionmaker[Session]) -> None:
    meter = _meter_pk(store)
    with store() as session, session.begin():
        assert ReadingsRepository(session).land_intervals(_intervals(meter, 96)) == 96
    with store() as session, session.begin():
        # the same day read again, overlapping a new day
        assert ReadingsRepository(session).land_intervals(_intervals(meter, 192)) == 96
    with store() as session:
        stored = every_stored_interval(session)
        assert len(stored) == 192
        value = max(stored, key=lambda row: row.interval_end).value
        assert value == Decimal("24.000")


def test_rereading_a_register_does_not_duplicate_it(store: sessionmaker[Session]) -> None:
    meter = _meter_pk(store)
    row = {
        "meter_id": meter,
        "obis": "1.0.1.8.0.255",
        "read_at": datetime(2026, 11, 27, 17, 5, tzinfo=UTC),
        "version": 0,
        "value": Decimal("12345.678"),
        "unit": "kWh",
        "quality": Quality.RAW,
        "created_by": "meter",
    }
    for _ in range(2):
        with store() as session, session.begin():
            ReadingsRepository(session).land_registers([row])
    with store() as session:
        stored = session.scalars(select(RegisterReading)).one()
        assert stored.value == Decimal("12345.678")
        assert stored.read_at == row["read_at"]
