"""Register reads carry the quality the VEE pass gave them, over the API: VALID for the reads of
the collected fleet, SUSPECT for a read below the one before; the read as landed stays RAW."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from headend.domain.enums import Role
from headend.domain.quality import Quality
from headend.services.validation.vee import ValidationService
from headend.store.models import Meter, RegisterReading
from headend.store.repositories.readings import ReadingsRepository
from tests.served import Served

A_PLUS = "1.0.1.8.0.255"


def _registers(served: Served, meter: str, version: str = "current") -> list[dict[str, str]]:
    now = served.fleet.clock.now
    query = {
        "start": (now - timedelta(days=3)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "version": version,
    }
    with served.client(Role.BILLING) as client:
        response = client.get(f"/api/v1/meters/{meter}/registers", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, str]] = response.json()
    return found


def test_after_a_vee_pass_the_register_reads_carry_the_quality_vee_gave_them(
    served: Served,
) -> None:
    meter = served.healthy()[0]

    current = _registers(served, meter)
    landed = _registers(served, meter, "raw")

    assert current and len(current) == len(landed)
    assert {(r["quality"], r["created_by"], r["version"]) for r in current} == {("VALID", "vee", 1)}
    assert {r["quality"] for r in landed} == {"RAW"}
    assert [(r["obis"], r["read_at"], r["value"]) for r in current] == [
        (r["obis"], r["read_at"], r["value"]) for r in landed
    ]


def test_an_import_register_read_below_the_one_before_is_suspect_after_the_vee_pass(
    served: Served,
) -> None:
    meter = served.healthy()[1]
    at = served.fleet.clock.now + timedelta(minutes=1)
    with served.store() as session, session.begin():
        pk = session.scalar(select(Meter.id).where(Meter.meter_id == meter))
        assert pk is not None
        lowest = session.scalar(
            select(RegisterReading.value)
            .where(RegisterReading.meter_id == pk, RegisterReading.obis == A_PLUS)
            .order_by(RegisterReading.value)
            .limit(1)
        )
        assert lowest is not None
        repo = ReadingsRepository(session)
        row = {
            "meter_id": pk,
            "obis": A_PLUS,
            "read_at": at,
            "version": 0,
            "value": lowest - Decimal(1),
            "unit": "kWh",
            "capture_time": None,
            "quality": Quality.RAW,
            "flags": 0,
            "raw_read_id": None,
            "created_by": "meter",
        }
        assert repo.land_registers([row]) == 1
        repo.mark_for_validation(pk, at)

    summary = ValidationService(served.store, clock=lambda: at).run_pending()

    assert summary.register_versions >= 1
    reads = {(r["obis"], r["read_at"]): r for r in _registers(served, meter)}
    backwards = next(r for (obis, _), r in reads.items() if obis == A_PLUS and
                     Decimal(r["value"]) == lowest - 1)  # fmt: skip
    assert (backwards["quality"], backwards["version"]) == ("SUSPECT", 1)
    with served.store() as session:
        rules = session.scalar(
            select(RegisterReading.rules).where(
                RegisterReading.meter_id == pk,
                RegisterReading.read_at == at,
                RegisterReading.version == 1,
            )
        )
    assert rules == "V06"
