"""Learned quirks in the store: kept per device profile and firmware with when and where they
were first found, landed with the read that learned them, and the migration that adds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.readings import MeterRead
from headend.protocol.session import LIST_UNRELIABLE, RANGE_ACCESS_REFUSED, WRONG_INVOKE_ON_ERROR
from headend.services.collection.landing import land
from headend.services.collection.quirks import LearnedQuirks, known_quirks
from headend.store import migrations
from headend.store.engine import make_engine
from headend.store.models import Meter
from headend.store.repositories.quirks import QuirksRepository
from tests.conftest import import_sample_fleet

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _meters(store: sessionmaker[Session]) -> dict[str, tuple[int, str]]:
    """meter id -> (primary key, device profile) of the sample fleet"""
    import_sample_fleet(store)
    with store() as session:
        rows = session.execute(select(Meter.meter_id, Meter.id, Meter.device_profile)).all()
    return {meter_id: (pk, profile) for meter_id, pk, profile in rows}


def test_a_quirk_found_again_keeps_its_first_meter_and_counts_the_sessions(
    store: sessionmaker[Session],
) -> None:
    meters = _meters(store)
    (first, (first_pk, profile)), (second, (second_pk, _)) = [
        (m, v) for m, v in sorted(meters.items()) if v[1] == "single_phase_residential"
    ][:2]
    with store() as session, session.begin():
        QuirksRepository(session).record(profile, "", [LIST_UNRELIABLE], first_pk, T0)
    later = T0 + timedelta(hours=3)
    with store() as session, session.begin():
        repo = QuirksRepository(session)
        repo.record(profile, "", [LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR], second_pk, later)
    rows = {row.quirk: row for row in LearnedQuirks(store).listing()}
    assert set(rows) == {LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR}
    again = rows[LIST_UNRELIABLE]
    assert (again.device_profile, again.firmware, again.first_meter) == (profile, "", first)
    assert (again.first_seen_at, again.last_seen_at, again.sessions) == (T0, later, 2)
    new = rows[WRONG_INVOKE_ON_ERROR]
    assert (new.first_meter, new.first_seen_at, new.sessions) == (second, later, 1)


def test_what_is_known_is_kept_per_firmware_and_a_meter_of_unknown_firmware_gets_every_one(
    store: sessionmaker[Session],
) -> None:
    meters = _meters(store)
    pk, profile = next(iter(meters.values()))
    with store() as session, session.begin():
        QuirksRepository(session).record(profile, "", [LIST_UNRELIABLE], pk, T0)
        QuirksRepository(session).record(profile, "2.1", [RANGE_ACCESS_REFUSED], pk, T0)
    with store() as session:
        known = known_quirks(session, [(profile, ""), (profile, "2.1"), ("other_model", "")])
    assert known == {
        (profile, ""): frozenset({LIST_UNRELIABLE, RANGE_ACCESS_REFUSED}),
        (profile, "2.1"): frozenset({RANGE_ACCESS_REFUSED}),
        ("other_model", ""): frozenset(),
    }
    assert [r.firmware for r in LearnedQuirks(store).listing(profile)] == ["", "2.1"]
    assert LearnedQuirks(store).listing("other_model") == []


def test_a_landed_read_keeps_what_its_session_learned_for_the_meters_profile(
    store: sessionmaker[Session],
) -> None:
    meters = _meters(store)
    meter_id, (pk, profile) = sorted(meters.items())[0]
    read = MeterRead(serial_number=meter_id, learned=(LIST_UNRELIABLE,))
    with store() as session, session.begin():
        land(session, pk, ReadKind.REGISTERS, read, T0, None)
    with store() as session, session.begin():  # the same read landed again, a session later
        land(session, pk, ReadKind.REGISTERS, read, T0 + timedelta(minutes=5), None)
    with store() as session, session.begin():  # a session that learned nothing
        land(session, pk, ReadKind.REGISTERS, MeterRead(serial_number=meter_id), T0, None)
    assert LearnedQuirks(store).as_json() == [
        {
            "device_profile": profile,
            "firmware": None,
            "quirk": LIST_UNRELIABLE,
            "first_seen_at": T0.isoformat(),
            "last_seen_at": (T0 + timedelta(minutes=5)).isoformat(),
            "first_meter": meter_id,
            "sessions": 2,
        }
    ]


def test_the_learned_quirks_migration_goes_down_and_up_again(fresh_database_url: str) -> None:
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        assert "learned_quirks" in inspect(engine).get_table_names()
        migrations.downgrade(fresh_database_url, "0003")
        inspector = inspect(engine)
        assert "learned_quirks" not in inspector.get_table_names()
        assert {"meters", "interval_days"} <= set(inspector.get_table_names())
        assert migrations.current_revision(fresh_database_url) == "0003"
        migrations.upgrade(fresh_database_url, "0004_learned_quirks")
        assert "learned_quirks" in inspect(engine).get_table_names()
        assert migrations.current_revision(fresh_database_url) == "0004_learned_quirks"
    finally:
        engine.dispose()
