"""Drafting a device profile from a survey, without a meter: the clock's deviation and zone
guessed from one read, the classification of OBIS codes, and what a draft refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from headend.domain.obis import Obis
from headend.domain.readings import Column
from headend.domain.survey import (
    Behaviour,
    FoundClock,
    FoundObject,
    FoundProfile,
    FoundValue,
    Survey,
)
from headend.profiles.classify import Role, classify
from headend.profiles.draft import DraftError, draft_profile
from headend.profiles.model import DeviceProfile, Quantity
from headend.profiles.writer import render
from headend.profiles.zones import guess_clock

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
HANOI = "Asia/Ho_Chi_Minh"


def clock(local_offset_min: int, deviation: int | None, drift_s: float = 4.0) -> FoundClock:
    local = (NOW + timedelta(minutes=local_offset_min, seconds=drift_s)).replace(tzinfo=None)
    return FoundClock(Obis(0, 0, 1, 0, 0), local, NOW, deviation, None, 0)


def test_a_blue_book_deviation_is_read_as_minutes_to_utc_in_the_utility_zone() -> None:
    guess = guess_clock(clock(420, -420), HANOI)
    assert (guess.deviation, guess.zone, guess.east_minutes) == ("minutes_to_utc", HANOI, 420)
    assert guess.notes[0].startswith("found: the clock sends deviation -420")


def test_a_companion_standard_deviation_is_read_as_minutes_from_utc() -> None:
    guess = guess_clock(clock(420, 420), HANOI)
    assert (guess.deviation, guess.zone) == ("minutes_from_utc", HANOI)


def test_an_unspecified_deviation_takes_the_offset_of_the_clock_against_ours() -> None:
    guess = guess_clock(clock(420, None, drift_s=-200), HANOI)
    assert (guess.deviation, guess.zone, guess.east_minutes) == ("unspecified", HANOI, 420)
    assert any(n.startswith("time_zone guessed:") for n in guess.notes)


def test_an_unspecified_deviation_of_a_clock_minutes_off_takes_its_time_zone_attribute() -> None:
    drifted = clock(420, None, drift_s=11 * 60)  # to the quarter hour: UTC+07:15
    alone = guess_clock(drifted, HANOI)
    assert (alone.east_minutes, alone.zone) == (435, HANOI)
    assert (
        "no zone has that offset: Asia/Ho_Chi_Minh, the utility's zone, is written"
        in (alone.notes[1])
    )
    guess = guess_clock(replace(drifted, time_zone_attribute=-420), HANOI)
    assert (guess.deviation, guess.zone, guess.east_minutes) == ("unspecified", HANOI, 420)
    assert any("its time_zone attribute (3), -420, says UTC+07:00" in n for n in guess.notes)
    # an attribute that disagrees with the clock by hours is not taken
    assert guess_clock(replace(drifted, time_zone_attribute=60), HANOI).east_minutes == 435


def test_a_meter_in_another_zone_gets_a_zone_of_its_offset() -> None:
    assert guess_clock(clock(-300, 300), HANOI).zone == "Etc/GMT+5"
    assert guess_clock(clock(330, -330), HANOI).zone in {
        "Asia/Calcutta",
        "Asia/Colombo",
        "Asia/Kolkata",
    }
    assert guess_clock(clock(0, 0), HANOI).zone == "UTC"


def test_a_clock_hours_off_is_read_the_blue_book_way_and_says_it_guessed() -> None:
    guess = guess_clock(clock(420 + 180, -420), HANOI)
    assert guess.deviation == "minutes_to_utc"
    assert guess.notes[0].startswith("guessed: deviation -420 read the Blue Book way")


@pytest.mark.parametrize(
    ("code", "class_id", "role", "quantity", "tariff"),
    [
        ("1.0.1.8.0.255", 3, Role.VALUE, Quantity.IMPORT, None),
        ("1.0.1.8.2.255", 4, Role.VALUE, Quantity.IMPORT_T2, "T2"),
        ("1.0.2.8.0.255", 3, Role.VALUE, Quantity.EXPORT, None),
        ("1.0.1.6.0.255", 4, Role.VALUE, Quantity.MAX_DEMAND, None),
        ("0.0.96.1.0.255", 1, Role.VALUE, Quantity.SERIAL_NUMBER, None),
        ("1.0.99.2.0.255", 7, Role.LOAD_PROFILE, None, None),
        ("0.0.98.1.0.255", 7, Role.BILLING_PROFILE, None, None),
        ("0.0.99.98.0.255", 7, Role.EVENT_LOG, None, None),
        ("0.0.96.3.10.255", 70, Role.DISCONNECT_CONTROL, None, None),
    ],
)
def test_billing_objects_are_classified_from_their_obis_code_and_class(
    code: str, class_id: int, role: Role, quantity: Quantity | None, tariff: str | None
) -> None:
    kind = classify(Obis.parse(code), class_id)
    assert kind is not None
    assert (kind.role, kind.quantity, kind.tariff) == (role, quantity, tariff)


@pytest.mark.parametrize(
    ("code", "class_id"),
    [("1.0.1.8.0.255", 1), ("1.0.32.7.0.255", 3), ("1.0.1.8.0.101", 3), ("1.0.1.6.0.255", 5)],
)
def test_objects_a_billing_profile_does_not_describe_are_not_classified(
    code: str, class_id: int
) -> None:
    assert classify(Obis.parse(code), class_id) is None


LP = Obis(1, 0, 99, 1, 0)
A_PLUS = Obis(1, 0, 1, 8, 0)
VOLTAGE = Obis(1, 0, 32, 7, 0)
CLOCK = Obis(0, 0, 1, 0, 0)


def survey(captures: tuple[Column, ...], period: int | None = 900) -> Survey:
    found = Survey(source="object_list", behaviour=Behaviour(server_max_pdu=40000))
    for obis, class_id in ((CLOCK, 8), (A_PLUS, 3), (LP, 7), (VOLTAGE, 3)):
        found.objects[obis] = FoundObject(obis, class_id)
    found.values[A_PLUS] = FoundValue(A_PLUS, 3, 6, scaler=-1, unit=30)
    found.profiles[LP] = FoundProfile(LP, captures, period, 2880, 10)
    found.clock = clock(420, -420)
    return found


def draft(found: Survey) -> str:
    made = draft_profile(found, "acme", source="here", discovered_at="now", utility_zone=HANOI)
    return render(made)


def test_a_minimal_meter_makes_a_loadable_profile_with_its_guesses_said() -> None:
    text = draft(survey((Column(8, CLOCK, 2), Column(3, A_PLUS, 2))))
    profile = DeviceProfile.model_validate(yaml.safe_load(text))
    assert profile.objects[0].scaler == -1
    assert profile.register_resolution_wh == 1
    assert profile.quirks.max_pdu_size == 40000
    assert profile.reads.registers == [A_PLUS]
    assert "supports_release: true  # guessed: release (RLRQ) not tried" in text
    assert "# no billing profile was found on the meter" in text


def test_a_load_profile_capturing_an_object_a_profile_cannot_declare_is_refused() -> None:
    found = survey((Column(8, CLOCK, 2), Column(3, A_PLUS, 2), Column(3, VOLTAGE, 2)))
    with pytest.raises(DraftError, match=r"captures 1\.0\.32\.7\.0\.255 \(class 3\)") as caught:
        draft(found)
    assert caught.value.category == "configuration"


def test_a_load_profile_period_that_does_not_divide_a_day_is_refused() -> None:
    with pytest.raises(DraftError, match="captures every 420 s"):
        draft(survey((Column(8, CLOCK, 2), Column(3, A_PLUS, 2)), period=420))
