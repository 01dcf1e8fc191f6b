"""VEE over the store: newly landed data is validated, late data is validated again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.quality import Quality
from headend.domain.readings import (
    ClockReading,
    ClockStatus,
    Column,
    LoadProfile,
    MeterRead,
    ProfileRow,
)
from headend.services.collection.landing import land
from headend.services.validation.vee import (
    CLEARED_BY,
    VEE_FAILED_RULE,
    PassSummary,
    ValidationService,
    ValidationSettings,
)
from headend.store.blocks import StoredInterval
from headend.store.models import Meter, VeeFinding
from tests.conftest import import_sample_fleet
from tests.intervals import every_stored_interval, intervals_of

A_PLUS = Obis.parse("1.0.1.8.0.255")
START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # local midnight in Hanoi
NOW = START + timedelta(days=1, hours=1)


def _energy(i: int) -> int:
    """Wh in interval i: a small daily shape, never zero."""
    return 100 + 40 * ((i % 96) // 8) + (i * 7) % 13


def _cumulative(i: int) -> int:
    return 5_000_000 + sum(_energy(k) for k in range(1, i + 1))


def _read(indexes: list[int]) -> MeterRead:
    columns = (
        Column(8, Obis.parse("0.0.1.0.0.255"), 2),
        Column(1, Obis.parse("0.0.96.10.1.255"), 2),
        Column(3, A_PLUS, 2, unit="Wh"),
    )
    rows = tuple(
        ProfileRow(START + timedelta(minutes=15 * i), 0, {A_PLUS: Decimal(_cumulative(i))})
        for i in indexes
    )
    at = START + timedelta(minutes=15 * max(indexes), seconds=40)
    return MeterRead(
        serial_number="2611000003",
        clock=ClockReading(at, at, ClockStatus(0), 420, False),
        load_profile=LoadProfile(Obis.parse("1.0.99.1.0.255"), 900, columns, rows),
    )


def _current(store: sessionmaker[Session], meter: int) -> dict[datetime, StoredInterval]:
    with store() as session:
        rows = intervals_of(session, meter)
    rows.sort(key=lambda row: (row.interval_end, row.version))
    return {row.interval_end: row for row in rows if row.version > 0}


def _a_day_with_a_gap(store: sessionmaker[Session]) -> tuple[int, list[int]]:
    """The sample fleet, and one meter's day landed without four intervals: (meter, gap)."""
    import_sample_fleet(store)
    with store() as session:
        meter = session.scalar(select(Meter.id).where(Meter.meter_id == "2611000003")) or 0
    gap = [41, 42, 43, 44]
    with store() as session, session.begin():
        land(
            session,
            meter,
            ReadKind.LOAD_PROFILE,
            _read([i for i in range(0, 97) if i not in gap]),
            NOW,
            None,
        )
    return meter, gap


def test_new_data_is_validated_and_late_data_replaces_the_estimates(
    store: sessionmaker[Session],
) -> None:
    meter, gap = _a_day_with_a_gap(store)
    with store() as session:
        assert session.scalar(select(Meter.vee_from).where(Meter.id == meter)) is not None
    vee = ValidationService(store, clock=lambda: NOW)
    first = vee.run_pending()
    assert first.meters == 1 and first.new_versions == 96

    current = _current(store, meter)
    gap_ends = {START + timedelta(minutes=15 * i) for i in [*gap, 45]}
    for end, row in current.items():
        if end in gap_ends:
            assert row.quality is Quality.EST_SCALED_TO_REGISTER, end
            assert row.method == "E2"
        else:
            assert row.quality is Quality.VALID, end
    # the estimate is held to the register: the day still adds up exactly
    day = sum(row.value for row in current.values())
    assert day == Decimal(_cumulative(96) - _cumulative(0)) / 1000
    with store() as session:
        assert session.scalar(select(Meter.vee_from).where(Meter.id == meter)) is None
        assert session.scalar(select(func.count()).select_from(VeeFinding)) >= 1

    assert vee.run_pending().new_versions == 0  # nothing new: nothing to do

    # the missing rows arrive late (a re-read): that period is validated again
    with store() as session, session.begin():
        land(session, meter, ReadKind.LOAD_PROFILE, _read([40, *gap]), NOW, None)
    again = vee.run_pending()
    assert again.new_versions == len(gap_ends)
    current = _current(store, meter)
    for i in [*gap, 45]:
        row = current[START + timedelta(minutes=15 * i)]
        assert row.quality is Quality.VALID and row.version == 2
        assert row.value == Decimal(_energy(i)) / 1000
    end = START + timedelta(minutes=15 * 42)
    with store() as session:
        versions = len(every_stored_interval(session, after=end - timedelta(seconds=1), until=end))
    assert versions == 3  # as read, estimated, replaced by the actual: nothing overwritten
    assert vee.run_pending().new_versions == 0


def test_a_pass_told_to_stop_validates_nothing_more_and_keeps_the_marks(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    with store() as session:
        meter = session.scalar(select(Meter.id).where(Meter.meter_id == "2611000003")) or 0
    with store() as session, session.begin():
        land(session, meter, ReadKind.LOAD_PROFILE, _read(list(range(0, 97))), NOW, None)
    vee = ValidationService(store, clock=lambda: NOW)
    assert vee.run_pending(stop=lambda: True).meters == 0
    with store() as session:
        assert session.scalar(select(Meter.vee_from).where(Meter.id == meter)) is not None
    assert vee.run_pending().meters == 1


def test_a_pass_writes_in_transactions_of_bounded_size_and_validates_every_meter(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    names = ["2611000001", "2611000002", "2611000003"]
    with store() as session:
        meters = list(session.scalars(select(Meter.id).where(Meter.meter_id.in_(names))))
    with store() as session, session.begin():
        for meter in meters:
            land(session, meter, ReadKind.LOAD_PROFILE, _read(list(range(0, 97))), NOW, None)
    batches: list[int] = []

    class Counting(ValidationService):
        def _validate(self, session: Session, marked: Sequence[Any]) -> PassSummary:
            batches.append(len(marked))
            return super()._validate(session, marked)

    # a day and the revalidated day before it on two channels: 400 intervals a meter
    vee = Counting(store, ValidationSettings(batch_intervals=900), clock=lambda: NOW)
    done = vee.run_pending()
    assert batches == [2, 1]
    assert done.meters == 3 and done.new_versions == 3 * 96
    for meter in meters:
        assert all(row.quality is Quality.VALID for row in _current(store, meter).values())


def test_a_meter_whose_profile_breaks_the_pass_is_recorded_and_the_others_are_validated(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    names = ["2611000001", "2611000002", "2611000003"]
    with store() as session:
        meters = dict(
            session.execute(select(Meter.meter_id, Meter.id).where(Meter.meter_id.in_(names))).all()
        )
    with store() as session, session.begin():
        for meter in meters.values():
            land(session, meter, ReadKind.LOAD_PROFILE, _read(list(range(0, 97))), NOW, None)
        broken = session.get(Meter, meters["2611000002"])
        assert broken is not None
        broken.device_profile = "profile_since_deleted"
    vee = ValidationService(store, clock=lambda: NOW)
    done = vee.run_pending()
    assert [meter_id for meter_id, _ in done.failed] == ["2611000002"]
    assert "profile_since_deleted" in done.failed[0][1]
    assert done.new_versions == 2 * 96
    for name in ("2611000001", "2611000003"):
        assert all(r.quality is Quality.VALID for r in _current(store, meters[name]).values())
    with store() as session:
        finding = session.scalars(
            select(VeeFinding).where(VeeFinding.rule == VEE_FAILED_RULE)
        ).one()
        assert finding.meter_id == meters["2611000002"] and finding.status == "open"
        marks = session.scalars(select(Meter.vee_from).where(Meter.id.in_(meters.values())))
        assert set(marks) == {None}  # the run ended, not stuck on the broken meter
    assert vee.run_pending().failed == []


def test_a_meter_whose_data_breaks_vee_does_not_stop_the_batch(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    names = ["2611000001", "2611000003"]
    with store() as session:
        meters = dict(
            session.execute(select(Meter.meter_id, Meter.id).where(Meter.meter_id.in_(names))).all()
        )
    with store() as session, session.begin():
        for meter in meters.values():
            land(session, meter, ReadKind.LOAD_PROFILE, _read(list(range(0, 97))), NOW, None)

    class Fragile(ValidationService):
        def _validate(self, session: Session, marked: Sequence[Any]) -> PassSummary:
            if any(meter_id == "2611000001" for _, meter_id, _, _ in marked):
                raise ArithmeticError("a value VEE cannot take")
            return super()._validate(session, marked)

    done = Fragile(store, clock=lambda: NOW).run_pending()
    assert done.failed == [("2611000001", "ArithmeticError: a value VEE cannot take")]
    assert done.meters == 2 and done.new_versions == 96


def _findings(store: sessionmaker[Session]) -> dict[int, VeeFinding]:
    with store() as session:
        return {f.id: f for f in session.scalars(select(VeeFinding).order_by(VeeFinding.id))}


def test_findings_found_again_are_kept_cleared_ones_closed_and_only_new_ones_counted(
    store: sessionmaker[Session],
) -> None:
    meter, gap = _a_day_with_a_gap(store)
    first = ValidationService(store, clock=lambda: NOW).run_pending()
    before = _findings(store)
    assert first.findings == len(before) >= 1 and first.findings_closed == 0
    assert {f.status for f in before.values()} == {"open"}

    # a later interval comes: the same period is validated again and fails the same way
    later = NOW + timedelta(minutes=15)
    with store() as session, session.begin():
        land(session, meter, ReadKind.LOAD_PROFILE, _read([97]), later, None)
    second = ValidationService(store, clock=lambda: later).run_pending()
    assert second.meters == 1 and second.findings == 0 and second.findings_closed == 0
    after = _findings(store)
    assert {i: (f.created_at, f.status) for i, f in after.items()} == {
        i: (f.created_at, f.status) for i, f in before.items()
    }

    # the missing rows arrive: the findings about the gap are closed, not deleted
    late = later + timedelta(minutes=15)
    with store() as session, session.begin():
        land(session, meter, ReadKind.LOAD_PROFILE, _read([40, *gap]), late, None)
    third = ValidationService(store, clock=lambda: late).run_pending()
    closed = {i: f for i, f in _findings(store).items() if f.status == "resolved"}
    assert third.findings == 0 and third.findings_closed == len(closed) >= 1
    assert set(closed) <= set(before)
    for f in closed.values():
        assert f.resolved_by == CLEARED_BY and f.resolved_at == late
        assert f.created_at == before[f.id].created_at

    # new data with a gap: new findings, counted
    latest = late + timedelta(hours=1)
    with store() as session, session.begin():
        land(
            session,
            meter,
            ReadKind.LOAD_PROFILE,
            _read([i for i in range(98, 110) if i not in (102, 103)]),
            latest,
            None,
        )
    fourth = ValidationService(store, clock=lambda: latest).run_pending()
    now_open = {i for i, f in _findings(store).items() if f.status == "open"}
    assert fourth.findings == len(now_open - set(before)) >= 1
