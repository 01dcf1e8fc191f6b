"""VEE over the store judges zeros on consumption channels only: a household that exports
nothing has an export channel (A-) that reads zero, and that is no finding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.readings import (
    ClockReading,
    ClockStatus,
    Column,
    LoadProfile,
    MeterRead,
    ProfileRow,
)
from headend.services.collection.landing import land
from headend.services.validation.vee import ValidationService
from headend.store.models import Meter, VeeFinding
from tests.conftest import import_sample_fleet
from tests.intervals import every_stored_interval, intervals_of

A_PLUS = Obis.parse("1.0.1.8.0.255")
A_MINUS = Obis.parse("1.0.2.8.0.255")
START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # local midnight in Hanoi
ROWS = 101  # a base capture, then 100 quarter hours: more than a day of intervals and reads
NOW = START + timedelta(days=1, hours=2)
VACANT = "2611000001"  # imports nothing and exports nothing
HOUSEHOLD = "2611000003"  # imports every quarter hour and exports nothing


def _read(serial: str, imported_wh: Callable[[int], int]) -> MeterRead:
    columns = (
        Column(8, Obis.parse("0.0.1.0.0.255"), 2),
        Column(1, Obis.parse("0.0.96.10.1.255"), 2),
        Column(3, A_PLUS, 2, unit="Wh"),
        Column(3, A_MINUS, 2, unit="Wh"),
    )
    rows = tuple(
        ProfileRow(
            START + timedelta(minutes=15 * i),
            0,
            {
                A_PLUS: Decimal(4_000_000 + sum(imported_wh(k) for k in range(1, i + 1))),
                A_MINUS: Decimal(1_234),  # never moves: nothing exported
            },
        )
        for i in range(ROWS)
    )
    at = START + timedelta(minutes=15 * (ROWS - 1), seconds=40)
    return MeterRead(
        serial_number=serial,
        clock=ClockReading(at, at, ClockStatus(0), 420, False),
        load_profile=LoadProfile(Obis.parse("1.0.99.1.0.255"), 900, columns, rows),
    )


def test_zeros_raise_v11_and_v12_on_the_import_channel_and_nothing_on_the_export_channel(
    store: sessionmaker[Session],
) -> None:
    import_sample_fleet(store)
    with store() as session:
        pk = {meter: id_ for meter, id_ in session.execute(select(Meter.meter_id, Meter.id))}
    with store() as session, session.begin():
        land(session, pk[VACANT], ReadKind.LOAD_PROFILE, _read(VACANT, lambda i: 0), NOW, None)
        land(
            session,
            pk[HOUSEHOLD],
            ReadKind.LOAD_PROFILE,
            _read(HOUSEHOLD, lambda i: 120 + (i * 7) % 13),
            NOW,
            None,
        )

    summary = ValidationService(store, clock=lambda: NOW).run_pending()

    assert summary.meters == 2
    with store() as session:
        findings = session.execute(
            select(VeeFinding.meter_id, VeeFinding.channel, VeeFinding.rule).where(
                VeeFinding.rule.in_(("V08", "V11", "V12"))
            )
        ).all()
        export_rules = [
            row.rules
            for row in every_stored_interval(session)
            if row.channel == str(A_MINUS) and row.version > 0
        ]
        vacant_import_rules = [
            row.rules for row in intervals_of(session, pk[VACANT], str(A_PLUS)) if row.version > 0
        ]
    assert sorted(findings) == [
        (pk[VACANT], str(A_PLUS), "V11"),
        (pk[VACANT], str(A_PLUS), "V12"),
    ]
    assert len(export_rules) == 2 * (ROWS - 1)
    assert not any(export_rules)  # the export intervals are plainly valid
    assert len(vacant_import_rules) == ROWS - 1
    assert all(rules == "V11" for rules in vacant_import_rules)
