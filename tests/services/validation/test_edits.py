"""Operator edits of stored intervals: new versions with who and why, reverts, findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
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
from headend.domain.reports import EditResult
from headend.services.access.audit import Actor
from headend.services.collection.jobs import UnknownMeter
from headend.services.collection.landing import land
from headend.services.registry.imports import import_registry
from headend.services.reporting.reports import ReportService
from headend.services.validation.edits import EditError, EditService, UnknownEdit, UnknownFinding
from headend.services.validation.vee import ValidationService
from headend.store.base import Base
from headend.store.blocks import StoredInterval
from headend.store.models import Edit, Meter, VeeFinding
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY
from tests.intervals import store_versions, stored_intervals

A_PLUS = Obis.parse("1.0.1.8.0.255")
CHANNEL = str(A_PLUS)
START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # local midnight of 25 November in Hanoi
VALIDATED_AT = START + timedelta(days=1, hours=1)
EDITED_AT = VALIDATED_AT + timedelta(hours=3)
GAP = (41, 42, 43, 44)  # intervals lost in the first read of the day
METER = "2611000003"
OTHER = "2611000004"
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})
LAN = Actor("lan.nguyen")
MINH = Actor("minh.tran")


def end_of(i: int) -> datetime:
    return START + timedelta(minutes=15 * i)


def _wh(i: int) -> int:
    return 100 + 40 * ((i % 96) // 8) + (i * 7) % 13


def _index(i: int) -> int:
    return 5_000_000 + sum(_wh(k) for k in range(1, i + 1))


def load_profile_read(meter_id: str, indexes: Iterable[int]) -> MeterRead:
    wanted = sorted(indexes)
    columns = (
        Column(8, Obis.parse("0.0.1.0.0.255"), 2),
        Column(1, Obis.parse("0.0.96.10.1.255"), 2),
        Column(3, A_PLUS, 2, unit="Wh"),
    )
    rows = tuple(ProfileRow(end_of(i), 0, {A_PLUS: Decimal(_index(i))}) for i in wanted)
    at = end_of(wanted[-1]) + timedelta(seconds=40)
    return MeterRead(
        serial_number=meter_id,
        clock=ClockReading(at, at, ClockStatus(0), 420, False),
        load_profile=LoadProfile(Obis.parse("1.0.99.1.0.255"), 900, columns, rows),
    )


def land_and_validate(
    store: sessionmaker[Session], reads: dict[str, Iterable[int]], at: datetime = VALIDATED_AT
) -> None:
    with store() as session, session.begin():
        pks = {m: pk for m, pk in session.execute(select(Meter.meter_id, Meter.id))}
        for meter_id, indexes in reads.items():
            land(
                session,
                pks[meter_id],
                ReadKind.LOAD_PROFILE,
                load_profile_read(meter_id, indexes),
                at,
                None,
            )
    ValidationService(store, clock=lambda: at).run_pending()


def a_validated_day_with_a_gap(store: sessionmaker[Session], *meters: str) -> None:
    """The sample registry, and one day of 15-minute data for each meter, read with a gap
    that VEE estimated (and reported as findings)."""
    import_registry(
        store, REPO / "fixtures" / "sample_fleet.csv", SecretBox(TEST_SECRET_KEY), PROFILES
    )
    day = [i for i in range(97) if i not in GAP]
    land_and_validate(store, {m: day for m in meters or (METER,)})


@dataclass
class Clock:
    now: datetime = EDITED_AT

    def __call__(self) -> datetime:
        return self.now


def current(store: sessionmaker[Session], meter_id: str = METER) -> dict[datetime, StoredInterval]:
    return {row.interval_end: row for row in stored_intervals(store, meter_id, CHANNEL)}


def history(store: sessionmaker[Session], i: int) -> list[tuple[int, Decimal | None, Quality, str]]:
    end = end_of(i)
    rows = stored_intervals(store, METER, after=end - timedelta(seconds=1), until=end)
    return [
        (row.version, row.value, row.quality, row.created_by)
        for row in sorted(rows, key=lambda row: row.version)
    ]


def snapshot(store: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show a refused change left the store as it was."""
    with store() as session:
        return {
            table.name: sorted((tuple(row) for row in session.execute(table.select())), key=repr)
            for table in Base.metadata.sorted_tables
        }


def open_finding_ids(store: sessionmaker[Session], meter_id: str = METER) -> list[int]:
    reports = ReportService(store, ZoneInfo("Asia/Ho_Chi_Minh"))
    return [f.id for f in reports.open_findings(meter_id=meter_id)]


def test_an_edit_adds_an_edited_version_with_who_and_why_and_keeps_the_old_ones(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store)
    before = {i: history(store, i) for i in (42, 43, 44)}
    result = EditService(store, Clock()).edit_intervals(
        METER, CHANNEL, end_of(41), end_of(43), Decimal("0.512"), "FIELD_READ",
        "customer read the display", actor=LAN,
    )  # fmt: skip
    assert [c.interval_end for c in result.changes] == [end_of(42), end_of(43)]
    assert (result.edited_by, result.edited_at, result.reason_code) == (
        "lan.nguyen",
        EDITED_AT,
        "FIELD_READ",
    )
    now = current(store)
    for i in (42, 43):
        row = now[end_of(i)]
        assert (row.value, row.quality, row.method) == (Decimal("0.512"), Quality.EDITED, "E10")
        assert (row.created_by, row.created_at) == ("lan.nguyen", EDITED_AT)
        assert row.version == before[i][-1][0] + 1
        assert (
            row.inputs
            == f"edit #{result.id}: edited from {before[i][-1][1]} (EST_SCALED_TO_REGISTER)"
        )
        assert history(store, i)[:-1] == before[i]  # every earlier version is still there
    assert history(store, 44) == before[44]  # outside (start, end]: untouched
    with store() as session:
        edit = session.get(Edit, result.id)
        assert edit is not None
        assert (edit.reason_code, edit.comment, edit.edited_by) == (
            "FIELD_READ",
            "customer read the display",
            "lan.nguyen",
        )
        assert edit.value == Decimal("0.512") and edit.reverted_at is None


def test_an_edit_without_a_value_keeps_the_estimates_and_marks_them_edited(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store)
    estimates = {end: row.value for end, row in current(store).items()}
    result = EditService(store, Clock()).edit_intervals(
        METER, CHANNEL, end_of(40), end_of(45), None, "EST_OK", None, actor=LAN
    )
    assert len(result.changes) == 5 and result.value is None
    for change in result.changes:
        assert change.value == change.previous_value == estimates[change.interval_end]
        assert change.quality is Quality.EDITED
        assert change.version == change.previous_version + 1


def _edit(**changes: Any) -> Callable[[EditService], EditResult]:
    args: dict[str, Any] = {
        "meter_id": METER,
        "channel": CHANNEL,
        "start": end_of(41),
        "end": end_of(44),
        "value": Decimal("0.3"),
        "reason_code": "FIELD_READ",
        "comment": None,
        "actor": LAN,
    }
    args.update(changes)
    return lambda service: service.edit_intervals(**args)


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (_edit(channel="1.0.2.8.0.255"), "channel", "no interval data on channel"),
        (_edit(end=end_of(41)), "end", "must be after start"),
        (_edit(start=end_of(41).replace(tzinfo=None)), "start", "no UTC offset"),
        (_edit(value=Decimal("-0.1")), "value", "negative"),
        (_edit(value=Decimal("0.0000001")), "value", "6 decimal places"),
        (_edit(value=Decimal("NaN")), "value", "not a quantity"),
        (_edit(reason_code="  "), "reason_code", "reason code"),
        (_edit(reason_code="NOT A CODE"), "reason_code", "letters, digits"),
        (_edit(actor=Actor("")), "user", "who"),
        (_edit(start=end_of(200), end=end_of(300)), "start", "no interval"),
        (_edit(start=end_of(-10), end=end_of(0), value=None), "start", "no interval"),
        (_edit(resolve_findings=[10**9]), "resolve_findings", "no VEE finding"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_refused_edit_names_the_field_and_leaves_the_store_as_it_was(
    store: sessionmaker[Session],
    edit: Callable[[EditService], EditResult],
    field: str,
    message: str,
) -> None:
    a_validated_day_with_a_gap(store)
    before = snapshot(store)
    with pytest.raises(EditError, match=message) as refused:
        edit(EditService(store, Clock()))
    assert refused.value.field == field
    assert snapshot(store) == before


def test_an_edit_of_an_unknown_meter_is_refused_and_writes_nothing(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store)
    before = snapshot(store)
    with pytest.raises(UnknownMeter, match="9999"):
        _edit(meter_id="9999")(EditService(store, Clock()))
    assert snapshot(store) == before


def test_keeping_an_interval_that_has_no_value_is_refused(store: sessionmaker[Session]) -> None:
    a_validated_day_with_a_gap(store)
    # what VEE stores for an interval no method could estimate (e.g. its estimators disabled)
    gap = current(store)[end_of(42)]
    with store() as session, session.begin():
        store_versions(
            session,
            [
                {
                    "meter_id": gap.meter_id,
                    "channel": CHANNEL,
                    "interval_end": end_of(42),
                    "version": gap.version + 1,
                    "value": None,
                    "quality": Quality.MISSING,
                    "created_by": "vee",
                }
            ],
        )
    before = snapshot(store)
    with pytest.raises(EditError, match="no value to keep") as refused:
        _edit(value=None)(EditService(store, Clock()))
    assert refused.value.field == "value"
    assert snapshot(store) == before
    edit = _edit(value=Decimal("0.2"))(EditService(store, Clock()))  # a value fills it
    assert current(store)[end_of(42)].value == Decimal("0.2")
    assert [c.previous_quality for c in edit.changes] == [
        Quality.MISSING,
        Quality.EST_SCALED_TO_REGISTER,
        Quality.EST_SCALED_TO_REGISTER,
    ]


def test_reverting_an_edit_restores_what_it_replaced_as_a_new_version(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store)
    service = EditService(store, Clock())
    original = current(store)
    edit = service.edit_intervals(
        METER, CHANNEL, end_of(40), end_of(44), Decimal("0.4"), "FIELD_READ", None, actor=LAN
    )
    service.clock = Clock(EDITED_AT + timedelta(hours=1))
    reverted = service.revert_edit(edit.id, actor=MINH)
    assert (reverted.reverted_by, reverted.reverted_at) == (
        "minh.tran",
        EDITED_AT + timedelta(hours=1),
    )
    assert len(reverted.changes) == 4
    now = current(store)
    for change in reverted.changes:
        row, was = now[change.interval_end], original[change.interval_end]
        assert (row.value, row.quality, row.method, row.inputs) == (
            was.value,
            was.quality,
            was.method,
            was.inputs,
        )
        assert row.version == was.version + 2  # the original, the edit, the revert
        assert row.created_by == "minh.tran"
    with store() as session:
        stored = session.get(Edit, edit.id)
        assert stored is not None and stored.reverted_by == "minh.tran"
    before = snapshot(store)
    with pytest.raises(EditError, match="reverted already"):
        service.revert_edit(edit.id, actor=MINH)
    with pytest.raises(UnknownEdit):
        service.revert_edit(10**9, actor=MINH)
    assert snapshot(store) == before


def test_an_edit_under_a_later_edit_is_reverted_only_after_the_later_one(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store)
    service = EditService(store, Clock())
    original = current(store)
    first = service.edit_intervals(
        METER, CHANNEL, end_of(40), end_of(44), Decimal("0.4"), "FIELD_READ", None, actor=LAN
    )
    second = service.edit_intervals(
        METER, CHANNEL, end_of(43), end_of(46), Decimal("0.6"), "CUSTOMER", None, actor=LAN
    )
    before = snapshot(store)
    with pytest.raises(EditError, match="changed after edit") as refused:
        service.revert_edit(first.id, actor=MINH)
    assert refused.value.field is None
    assert snapshot(store) == before
    service.revert_edit(second.id, actor=MINH)
    assert {current(store)[end_of(i)].value for i in (41, 42, 43, 44)} == {Decimal("0.4")}
    service.revert_edit(first.id, actor=MINH)
    now = current(store)
    for i in range(41, 47):
        assert (now[end_of(i)].value, now[end_of(i)].quality) == (
            original[end_of(i)].value,
            original[end_of(i)].quality,
        ), i


def test_a_vee_pass_over_the_period_again_keeps_the_edit(store: sessionmaker[Session]) -> None:
    a_validated_day_with_a_gap(store)
    EditService(store, Clock()).edit_intervals(
        METER, CHANNEL, end_of(41), end_of(44), Decimal("0.25"), "FIELD_READ", None, actor=LAN
    )
    # the lost rows arrive late: VEE validates the period again
    land_and_validate(store, {METER: [40, *GAP]}, at=EDITED_AT + timedelta(hours=1))
    now = current(store)
    assert {now[end_of(i)].quality for i in (42, 43, 44)} == {Quality.EDITED}
    assert now[end_of(45)].quality is Quality.VALID  # outside the edit: the actual replaced it


def test_resolving_a_finding_records_who_when_and_the_note(store: sessionmaker[Session]) -> None:
    a_validated_day_with_a_gap(store)
    ids = open_finding_ids(store)
    assert ids, "VEE reports the gap"
    service = EditService(store, Clock())
    finding = service.resolve_finding(ids[0], "meter was being replaced", actor=LAN)
    assert (finding.status, finding.resolved_by, finding.resolved_at) == (
        "resolved",
        "lan.nguyen",
        EDITED_AT,
    )
    assert finding.resolution_note == "meter was being replaced"
    assert ids[0] not in open_finding_ids(store)
    before = snapshot(store)
    with pytest.raises(EditError, match="resolved already"):
        service.resolve_finding(ids[0], actor=MINH)
    with pytest.raises(UnknownFinding):
        service.resolve_finding(10**9, actor=MINH)
    with pytest.raises(EditError) as refused:
        service.resolve_finding(ids[-1], actor=Actor(" "))
    assert refused.value.field == "user"
    assert snapshot(store) == before


def test_an_edit_resolves_the_findings_it_settles_and_only_those_of_its_meter(
    store: sessionmaker[Session],
) -> None:
    a_validated_day_with_a_gap(store, METER, OTHER)
    mine, theirs = open_finding_ids(store, METER), open_finding_ids(store, OTHER)
    assert mine and theirs
    service = EditService(store, Clock())
    before = snapshot(store)
    with pytest.raises(EditError, match=f"of meter {OTHER}") as refused:
        _edit(resolve_findings=[mine[0], theirs[0]])(service)
    assert refused.value.field == "resolve_findings"
    assert snapshot(store) == before
    edit = _edit(resolve_findings=mine)(service)
    assert open_finding_ids(store, METER) == []
    assert open_finding_ids(store, OTHER) == theirs
    with store() as session:
        resolved = session.scalars(select(VeeFinding).where(VeeFinding.id.in_(mine))).all()
    assert {(f.status, f.resolved_by) for f in resolved} == {("resolved", "lan.nguyen")}
    assert {f.params["resolution_note"] for f in resolved} == {f"edit #{edit.id}"}


def test_edits_are_listed_by_meter_oldest_first(store: sessionmaker[Session]) -> None:
    a_validated_day_with_a_gap(store, METER, OTHER)
    service = EditService(store, Clock())
    made = [
        _edit(meter_id=meter, start=end_of(i), end=end_of(i + 1))(service)
        for i, meter in enumerate([METER, OTHER, METER])
    ]
    mine = service.edits(METER)
    assert [e.id for e in mine] == [made[0].id, made[2].id]
    assert [e.id for e in service.edits(after_id=mine[0].id, limit=1)] == [made[1].id]
    with pytest.raises(UnknownMeter):
        service.edits("9999")
