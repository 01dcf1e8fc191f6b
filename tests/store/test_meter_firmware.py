"""Each meter's firmware as its last read reported it: kept in ``meters.firmware`` when a read
lands, the key of what its sessions learned, and the migration that adds the column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.readings import MeterRead
from headend.protocol.session import LIST_UNRELIABLE, RANGE_ACCESS_REFUSED
from headend.services.collection.landing import land
from headend.services.collection.quirks import LearnedQuirks
from headend.store import migrations
from headend.store.engine import make_engine
from headend.store.models import Meter
from tests.conftest import import_sample_fleet

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _firmware(store: sessionmaker[Session], meter_pk: int) -> str | None:
    with store() as session:
        return session.scalar(select(Meter.firmware).where(Meter.id == meter_pk))


def test_a_landed_read_keeps_the_firmware_it_reported_and_learns_under_it(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    with store() as session:
        pk, meter_id = session.execute(select(Meter.id, Meter.meter_id).limit(1)).one()
    assert _firmware(store, pk) is None
    upgraded = MeterRead(serial_number=meter_id, firmware="2.1", learned=(LIST_UNRELIABLE,))
    with store() as session, session.begin():
        land(session, pk, ReadKind.REGISTERS, upgraded, T0, None)
    assert _firmware(store, pk) == "2.1"
    # a read that did not report its firmware (the meter lacked the object) leaves it, and
    # what it learned is kept under the firmware stored for the meter
    silent = MeterRead(serial_number=meter_id, learned=(RANGE_ACCESS_REFUSED,))
    with store() as session, session.begin():
        land(session, pk, ReadKind.REGISTERS, silent, T0 + timedelta(minutes=5), None)
    assert _firmware(store, pk) == "2.1"
    newer = MeterRead(serial_number=meter_id, firmware="2.2")
    with store() as session, session.begin():
        land(session, pk, ReadKind.REGISTERS, newer, T0 + timedelta(minutes=10), None)
    assert _firmware(store, pk) == "2.2"
    learned = {(row["quirk"], row["firmware"]) for row in LearnedQuirks(store).as_json()}
    assert learned == {(LIST_UNRELIABLE, "2.1"), (RANGE_ACCESS_REFUSED, "2.1")}


def test_the_meters_firmware_migration_goes_down_and_up_again_keeping_the_meters(
    fresh_database_url: str,
) -> None:
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    store = sessionmaker(engine)
    try:
        import_sample_fleet(store)
        with store() as session, session.begin():
            meters = dict(session.execute(select(Meter.meter_id, Meter.device_profile)).all())
            first = session.scalars(select(Meter).order_by(Meter.id).limit(1)).one()
            first.firmware = "3.0.1"
        migrations.downgrade(fresh_database_url, "0004_learned_quirks")
        columns = {c["name"] for c in inspect(engine).get_columns("meters")}
        assert "firmware" not in columns and "device_profile" in columns
        assert migrations.current_revision(fresh_database_url) == "0004_learned_quirks"
        migrations.upgrade(fresh_database_url, "0005_meters_firmware")
        assert migrations.current_revision(fresh_database_url) == "0005_meters_firmware"
        with store() as session:
            rows = session.execute(select(Meter.meter_id, Meter.device_profile, Meter.firmware))
            after = {meter_id: (profile, firmware) for meter_id, profile, firmware in rows}
        # the meters are all there, their firmware unknown again until a read reports it
        assert after == {meter_id: (profile, None) for meter_id, profile in meters.items()}
    finally:
        engine.dispose()
