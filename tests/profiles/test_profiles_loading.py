"""Loading device profiles: the shipped ones validate, and a bad one is refused with an error
that names the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.profiles import (
    DeviationSemantics,
    ProfileError,
    Quantity,
    load_all,
    load_profile,
)
from headend.profiles.loader import PROFILES_DIR_VARIABLE, profiles_dir

pytestmark = pytest.mark.timeout(30)

SHIPPED = profiles_dir() / "single_phase_residential.yaml"


def write_variant(folder: Path, name: str, change: dict[str, object]) -> Path:
    """A copy of the residential profile named ``name`` with ``change`` applied by dotted key."""
    raw = yaml.safe_load(SHIPPED.read_text())
    raw["name"] = name
    for dotted, new in change.items():
        target = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(leaf)] = new
        elif new is None:
            del target[leaf]
        else:
            target[leaf] = new
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_shipped_profiles_load() -> None:
    profiles = load_all()

    assert {"single_phase_residential", "three_phase_tou"} <= set(profiles)
    residential, tou = profiles["single_phase_residential"], profiles["three_phase_tou"]
    assert residential.load_profile.capture_period_s == 900
    assert tou.load_profile.capture_period_s == 1800
    assert tou.register_resolution_wh == 10
    assert {o.scaler for o in tou.objects if o.unit == 30} == {1}
    assert {o.scaler for o in residential.objects if o.unit == 30} == {0}
    assert tou.clock.deviation is DeviationSemantics.UNSPECIFIED
    assert not tou.quirks.supports_get_with_list


def test_the_tariff_registers_map_to_the_evn_periods() -> None:
    for profile in load_all().values():
        assert profile.tariffs is not None
        assert profile.tariffs.registers == {"T1": "normal", "T2": "peak", "T3": "off_peak"}
        tariffed = {o.tariff: o.quantity.value for o in profile.objects if o.tariff}
        assert tariffed == {"T1": "A+T1", "T2": "A+T2", "T3": "A+T3"}


def test_both_shipped_models_declare_their_firmware_identifier_as_a_string_data_object() -> None:
    types = {}
    for name, profile in load_all().items():
        (firmware,) = [o for o in profile.objects if o.quantity.value == "firmware"]
        assert (str(firmware.obis), firmware.class_id) == ("1.0.0.2.0.255", 1)
        types[name] = firmware.resolved_value_type.value
    assert types == {
        "single_phase_residential": "octet_string",
        "three_phase_tou": "visible_string",
    }


def test_the_read_plan_lists_objects_by_read_kind() -> None:
    profile = load_profile("three_phase_tou")

    assert profile.reads.for_kind(ReadKind.CLOCK) == [Obis(0, 0, 1, 0, 0)]
    assert Obis(1, 0, 3, 8, 0) in profile.reads.for_kind(ReadKind.REGISTERS)
    assert profile.reads.for_kind(ReadKind.LOAD_PROFILE) == [Obis(1, 0, 99, 1, 0)]
    assert profile.reads.for_kind(ReadKind.EVENTS) == [Obis(0, 0, 99, 98, 0)]


def test_the_load_profile_captures_clock_status_and_energy() -> None:
    for name, extra in (("single_phase_residential", []), ("three_phase_tou", ["1.0.3.8.0.255"])):
        captured = [str(c.obis) for c in load_profile(name).load_profile.capture_objects]
        assert captured == [
            "0.0.1.0.0.255", "0.0.96.10.1.255", "1.0.1.8.0.255", "1.0.2.8.0.255", *extra
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"load_profile.capture_period_s": 100}, "load_profile.capture_period_s",
         "must be a positive multiple of 60"),
        ({"objects.3.scaler": None}, "objects.3", "a register needs both scaler and unit"),
        ({"objects.0.colour": "red"}, "objects.0.colour", "Extra inputs are not permitted"),
        ({"objects.3.obis": "1.0.1.8"}, "objects.3.obis", "is not an OBIS code"),
        ({"clock.time_zone": "Mars/Olympus"}, "clock.time_zone", "unknown time zone"),
        ({"status_bits.amr_status.7": "melted"}, "status_bits.amr_status", "unknown flag"),
        ({"load_profile.capture_objects.2.obis": "1.0.9.8.0.255"},
         "load_profile.capture_objects.2", "1.0.9.8.0.255 is not declared"),
        ({"reads.registers": ["1.0.21.8.0.255"]}, "reads", "1.0.21.8.0.255 is not declared"),
        ({"quirks.max_pdu_size": 10}, "quirks.max_pdu_size", "greater than or equal to 64"),
        ({"billing.quantities": ["A-"]}, "billing.quantities", "must include A+"),
        ({"billing.quantities": ["A+", "R+"]}, "billing.quantities.1", "Input should be"),
        ({"billing.quantities": ["A+", "A-"], "objects.7.quantity": "R+", "objects.7.unit": 32},
         "billing.quantities.1", "A- is billed but no object has that quantity"),
        ({"objects.9.value_type": "unsigned"}, "objects.9",
         "value_type unsigned does not fit quantity firmware"),
        ({"objects.9.class_id": 3, "objects.9.scaler": 0, "objects.9.unit": 30}, "objects.9",
         "quantity 'firmware' belongs in a data object (class_id 1)"),
    ],
)  # fmt: skip
def test_a_bad_profile_is_refused_naming_file_key_and_problem(
    tmp_path: Path, change: dict[str, object], key: str, problem: str
) -> None:
    write_variant(tmp_path, "bad_meter", change)

    with pytest.raises(ProfileError) as caught:
        load_profile("bad_meter", tmp_path)

    error = caught.value
    assert (error.path, error.key) == (f"{tmp_path.name}/bad_meter.yaml", key)
    assert problem in error.problem
    assert str(error).startswith(f"{tmp_path.name}/bad_meter.yaml: {key}: ")


def test_a_profile_whose_name_is_not_its_file_name_is_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "renamed", {})
    path.rename(tmp_path / "other.yaml")

    with pytest.raises(ProfileError, match=r"other.yaml: name: must be 'other'"):
        load_profile("other", tmp_path)


def test_a_missing_profile_says_which_exist(tmp_path: Path) -> None:
    write_variant(tmp_path, "only_one", {})

    with pytest.raises(ProfileError, match=r"no such profile.*only_one"):
        load_profile("nowhere", tmp_path)


def test_an_unknown_profile_names_the_folder_searched_and_the_setting(tmp_path: Path) -> None:
    write_variant(tmp_path, "only_one", {})

    with pytest.raises(ProfileError) as caught:
        load_profile("nowhere", tmp_path)

    message = str(caught.value)
    assert f"no such profile nowhere in {tmp_path.resolve()} ({PROFILES_DIR_VARIABLE})" in message


def test_a_profiles_folder_that_does_not_exist_is_named_with_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(ProfileError, match=r"no folder .*nowhere \(HEADEND_PROFILES_DIR\)"):
        load_profile("single_phase_residential", missing)


def test_the_profiles_folder_is_the_one_passed_in_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_variant(tmp_path, "elsewhere", {"register_resolution_wh": 5})
    monkeypatch.setenv(PROFILES_DIR_VARIABLE, str(tmp_path / "ignored"))

    assert load_profile("elsewhere", tmp_path).register_resolution_wh == 5
    assert set(load_all(tmp_path)) == {"elsewhere"}
    assert "single_phase_residential" in load_all()


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (tmp_path / "listy.yaml").write_text("- 1\n- 2\n")

    with pytest.raises(ProfileError, match=r"listy\.yaml: the file must hold a mapping"):
        load_profile("listy", tmp_path)


def test_a_profile_without_a_billing_section_bills_import_alone(tmp_path: Path) -> None:
    write_variant(tmp_path, "import_only", {"billing": None})

    profile = load_profile("import_only", tmp_path)

    assert profile.billing.quantities == ["A+"]
    assert profile.billed(Quantity.IMPORT) and not profile.billed(Quantity.EXPORT)


def test_the_shipped_profiles_bill_import_and_export() -> None:
    for profile in load_all().values():
        assert profile.billed(Quantity.IMPORT) and profile.billed(Quantity.EXPORT), profile.name
