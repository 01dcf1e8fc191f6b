"""The spool keeps a read exactly, ignores what a crash left half-written, and forgets a read
only when told to."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.readings import (
    BillingProfile,
    BillingRow,
    ClockAction,
    ClockReading,
    ClockStatus,
    ClockSync,
    Column,
    DataValue,
    Event,
    LoadProfile,
    MeterRead,
    ProfileRow,
    RegisterValue,
    Unavailable,
)
from headend.services.collection.spool import Spool, Spooled, SpoolError

A_PLUS = Obis.parse("1.0.1.8.0.255")
CLOCK = Obis.parse("0.0.1.0.0.255")
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def a_read() -> MeterRead:
    at = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    before = ClockReading(
        at.astimezone(timezone(timedelta(hours=7))), at, ClockStatus(0x80), 420, False
    )
    column = Column(3, A_PLUS, 2, 0, "Wh", 0)
    return MeterRead(
        serial_number="SN-001",
        clock=before,
        registers={
            A_PLUS: RegisterValue(A_PLUS, Decimal("12345.600"), "Wh", -1, 123456),
            Obis.parse("1.0.1.6.0.255"): RegisterValue(
                Obis.parse("1.0.1.6.0.255"),
                Decimal("1.5E+3"),
                "W",
                2,
                Decimal("15"),
                at.astimezone(HANOI),
            ),
        },
        data={
            Obis.parse("0.0.96.1.0.255"): DataValue(Obis.parse("0.0.96.1.0.255"), b"\x00\xffA"),
            Obis.parse("0.0.96.1.1.255"): DataValue(Obis.parse("0.0.96.1.1.255"), None),
            Obis.parse("1.0.0.2.0.255"): DataValue(Obis.parse("1.0.0.2.0.255"), 7),
        },
        unavailable={CLOCK: Unavailable(CLOCK, "object_unavailable", "no such object")},
        load_profile=LoadProfile(
            Obis.parse("1.0.99.1.0.255"),
            900,
            (Column(8, CLOCK, 2), column),
            (
                ProfileRow(at, 0x08, {A_PLUS: Decimal("100.0")}, 420, ClockStatus(1)),
                ProfileRow(at + timedelta(minutes=15), None, {A_PLUS: Decimal("0.25")}),
            ),
            "entry",
        ),
        billing=BillingProfile(
            Obis.parse("0.0.98.1.0.255"),
            (column,),
            (BillingRow(at, {A_PLUS: Decimal("-3")}, {A_PLUS: at}),),
        ),
        events=(Event(at, 42, Obis.parse("0.0.99.98.0.255"), {A_PLUS: Decimal("1.00")}),),
        clock_sync=ClockSync(before, 20.5, ClockAction.SET, at, before, "drift"),
    )


def spooled() -> Spooled:
    return Spooled(17, 3, ReadKind.FULL, datetime(2024, 3, 1, 12, 1, tzinfo=UTC), a_read())


def test_a_spooled_read_reads_back_equal_and_encodes_to_the_same_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.keep(spooled())
    written = path.read_bytes()
    back = spool.load(path)
    assert back == spooled()
    assert back.to_bytes() == written
    reg = back.read.registers[Obis.parse("1.0.1.6.0.255")]
    assert str(reg.value) == "1.5E+3" and isinstance(reg.raw, Decimal)
    assert reg.captured_at is not None and reg.captured_at.tzinfo == HANOI
    assert back.read.registers[A_PLUS].raw == 123456 and str(back.read.registers[A_PLUS].value) == (
        "12345.600"
    )


def test_a_torn_temporary_file_is_not_a_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.keep(spooled())
    torn = tmp_path / f".tmp-{kept.name.replace('000000000017', '000000000018')}"
    torn.write_bytes(kept.read_bytes()[:40])
    assert spool.waiting() == [kept]
    assert spool.clear_torn() == 0  # it may be another process writing it now
    old = time.time() - 7200
    os.utime(torn, (old, old))
    assert spool.clear_torn() == 1
    assert sorted(tmp_path.iterdir()) == [kept]


def test_a_spooled_read_is_gone_only_once_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first, second = spool.keep(spooled()), spool.keep(spooled())
    assert len(spool) == 2
    spool.remove(first)
    assert spool.waiting() == [second]
    spool.remove(second)
    assert len(spool) == 0


def test_a_file_that_is_not_a_spooled_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.read.json"
    path.write_bytes(b'{"format": 1, "read": {"$dc": "Nope", "f": {}}}')
    with pytest.raises(SpoolError):
        Spool.load(path)
    path.write_bytes(b"{not json")
    with pytest.raises(SpoolError):
        Spool.load(path)


def test_an_empty_spool_folder_need_not_exist(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "never-made")
    assert spool.waiting() == [] and spool.clear_torn() == 0
