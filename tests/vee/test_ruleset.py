"""Rule sets: shipped defaults, overrides per file, meter class and profile; typos refused."""

from __future__ import annotations

import pytest

from headend.vee.ruleset import RuleSetError, default_rules, rules_from_yaml


def test_the_default_rule_set_carries_the_catalogue_defaults() -> None:
    rs = default_rules()
    assert rs.interval_s == 900
    assert rs.num("V10", "factor") == 5.0 and rs.num("V10", "floor_kwh_per_15min") == 0.5
    assert rs.num("V08", "high_factor") == 3.0 and rs.num("V08", "low_factor") == 0.2
    assert rs.num("E3", "max_gap_minutes") == 120
    assert rs.num("V11", "min_run_minutes") == 1440


def test_a_meter_class_override_changes_only_that_class() -> None:
    rs = default_rules()
    assert rs.for_meter(meter_class="three_phase").num("V09", "phases") == 3
    assert rs.for_meter(meter_class="unknown").num("V09", "phases") == 1
    assert rs.num("V09", "phases") == 1


def test_a_profile_override_is_applied_after_the_meter_class() -> None:
    rs = rules_from_yaml("profiles:\n  ct_meter:\n    rules:\n      V09: {rated_current_a: 5.0}\n")
    both = rs.for_meter(profile="ct_meter", meter_class="three_phase")
    assert both.num("V09", "rated_current_a") == 5.0
    assert both.num("V09", "phases") == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  V99: {enabled: false}\n", "unknown rule id"),
        ("rules:\n  V10: {factor: high}\n", "expected a value like 5.0"),
        ("interval_minutes: 7\n", "must divide a day"),
        ("timezone: Mars/Olympus\n", "is unknown"),
        ("colour: blue\n", "unknown setting"),
        ("rules: [1, 2]\n", "mapping of rule ids"),
        ("rules: {V10: {factor: 1\n", "not valid YAML"),
        ("rules:\n  V11: {channels: 1.0.2.8}\n", "V11.channels: .*six value groups"),
        ("rules:\n  V12: {channels: 2}\n", "expected a value like"),
        (
            "profiles:\n  p:\n    rules:\n      V08: {channels: 'A-'}\n",
            "profiles.p.rules.V08.channels",
        ),
    ],
)
def test_a_rules_document_that_sets_something_unknown_is_refused(text: str, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        rules_from_yaml(text)


def test_the_consumption_rules_default_to_active_import_and_a_file_may_widen_them() -> None:
    rs = default_rules()
    assert rs.channels("V11").matches("1.0.1.8.0.255")
    assert not rs.channels("V11").matches("1.0.2.8.0.255")
    widened = rules_from_yaml('rules:\n  V11: {channels: "1.0.1.*.*.255, 1.0.2.8.0.255"}\n')
    assert widened.channels("V11").matches("1.0.2.8.0.255")
    assert not widened.channels("V12").matches("1.0.2.8.0.255")
