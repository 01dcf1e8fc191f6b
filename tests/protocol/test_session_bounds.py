"""What a read may cost: the session budget and the block-transfer bytes derived from what is
read, never above the ceilings of the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from headend.config import Settings
from headend.domain.obis import Obis
from headend.protocol.collect import Collection, profile_transfer_bytes, session_budget
from headend.protocol.plan import CaptureSpec, ObjectRead, ProfileRead, ReadSpec
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts

START = datetime(2026, 5, 1, tzinfo=UTC)
LOAD = ProfileRead(
    Obis(1, 0, 99, 1, 0),
    tuple(CaptureSpec(3, Obis(1, 0, 1, 8, n)) for n in range(4)),
    capture_period_s=900,
)
SPEC = ReadSpec(
    registers=tuple(ObjectRead(Obis(1, 0, 1, 8, n)) for n in range(6)), load_profile=LOAD
)


def test_a_read_of_more_days_gets_a_longer_budget() -> None:
    one_day = session_budget(SPEC, Collection(start=START, end=START + timedelta(days=1)))
    forty = session_budget(SPEC, Collection(start=START, end=START + timedelta(days=40)))
    registers_only = session_budget(SPEC, Collection())
    assert registers_only < one_day < forty
    assert registers_only <= 120


def test_the_session_budget_is_never_above_the_ceiling_of_its_timeouts() -> None:
    session = MeterSession(MeterTarget("m", timeouts=Timeouts(session=30)))
    session.limit_budget(1000)
    assert session.budget_s == 30
    session.limit_budget(5)
    assert session.budget_s == 5


def test_a_profile_transfer_is_bounded_by_the_rows_its_period_holds() -> None:
    day = profile_transfer_bytes(LOAD, SPEC, START, START + timedelta(days=1))
    month = profile_transfer_bytes(LOAD, SPEC, START, START + timedelta(days=31))
    assert day is not None and month is not None
    assert day < month < 4 * 1024 * 1024
    rows = 31 * 96
    assert month > rows * (4 + 4 * 20)  # room for every row of the month


def test_a_meter_without_selective_access_is_bounded_only_by_the_ceiling() -> None:
    from dataclasses import replace

    whole_buffer = replace(SPEC, supports_range_access=False, supports_entry_access=False)
    assert profile_transfer_bytes(LOAD, whole_buffer, START, START + timedelta(days=1)) is None


def test_the_ceilings_are_settings_with_safe_defaults() -> None:
    fields = Settings.model_fields
    assert fields["session_budget_s"].default == 600
    assert fields["max_transfer_bytes"].default == 4 * 1024 * 1024


def test_the_ceilings_of_the_settings_reach_the_collection() -> None:
    from headend.runtime import Runtime

    settings = Settings(
        database_url="sqlite://", demo=True, session_budget_s=42, max_transfer_bytes=128 * 1024
    )
    collection = Runtime(settings, session_factory=None).collection.settings
    assert collection.timeouts.session == 42
    assert collection.max_transfer_bytes == 128 * 1024
