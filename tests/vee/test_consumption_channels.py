"""The rules that judge consumption (V08, V11, V12) look only at consumption channels.

A household without generation exports nothing, so its export channel (A-, 1.0.2.8.0.255)
reads zero day after day: that is normal, not a stopped meter, a vacancy or low usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from headend.domain.obis import Obis
from headend.vee.block import Block, Channels, RegisterArrays
from headend.vee.channels import ChannelSelector, ChannelSelectorError
from headend.vee.model import Finding, IntervalRead, MeterContext, RegisterRead
from headend.vee.pipeline import run_vee
from headend.vee.registers import zero_consumption
from headend.vee.ruleset import default_rules, rules_from_yaml
from headend.vee.validate import validate

from .helpers import LATER, MIDNIGHT

IMPORT = "1.0.1.8.0.255"
EXPORT = "1.0.2.8.0.255"
DAY = 96  # quarter hours


def _reads(channel: str, values: Sequence[str], meter: str = "M1") -> list[IntervalRead]:
    return [
        IntervalRead(meter, channel, MIDNIGHT + timedelta(minutes=15 * (i + 1)), Decimal(v))
        for i, v in enumerate(values)
    ]


def _registers(channel: str, indices: Sequence[str], meter: str = "M1") -> list[RegisterRead]:
    """Daily reads of a total register from ``MIDNIGHT``."""
    obis = Obis.parse(channel)
    return [
        RegisterRead(meter, obis, MIDNIGHT + timedelta(days=d), Decimal(v))
        for d, v in enumerate(indices)
    ]


def _rules_by_channel(findings: Sequence[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.channel) for f in findings}


def _zero_block(channels: Channels | None) -> Block:
    """One day of zeros on two rows, import and export, as the kernel sees it."""
    return Block(
        start_s=int(MIDNIGHT.timestamp()),
        step_s=900,
        days=(MIDNIGHT.date(),),
        values=np.zeros((2, DAY)),
        status=np.zeros((2, DAY), dtype=np.uint8),
        span_lo=0,
        span_hi=DAY,
        limit_kwh=np.full(2, 2.76),
        channels=channels,
    )


def _still_registers(channels: Channels | None) -> RegisterArrays:
    """An import and an export total register, each read twice a day apart, not moving."""
    t0 = int(MIDNIGHT.timestamp())
    return RegisterArrays(
        group=np.array([0, 0, 1, 1]),
        family=np.array([0, 0, 1, 1]),
        tariff=np.zeros(4, dtype=np.int64),
        t=np.array([t0, t0 + 86400, t0, t0 + 86400]),
        value=np.array([500.0, 500.0, 7.0, 7.0]),
        row=np.full(4, -1),
        channels=channels,
    )


# The rules on the kernel's arrays


def test_a_zero_run_on_the_export_row_is_no_v11_finding() -> None:
    block = _zero_block(Channels.of([IMPORT, EXPORT]))
    out = validate(block, default_rules())
    (batch,) = [b for b in out.findings if b.rule == "V11"]
    assert batch.rows.tolist() == [0]
    assert not out.rules[1].any()  # the export row carries no rule at all


def test_a_still_export_register_is_no_v12_finding() -> None:
    (batch,) = zero_consumption(
        _still_registers(Channels.of([IMPORT, IMPORT, EXPORT, EXPORT])), default_rules()
    )
    assert batch.rows.tolist() == [0]


def test_arrays_that_do_not_name_their_channels_are_checked_on_every_row() -> None:
    out = validate(_zero_block(None), default_rules())
    (batch,) = [b for b in out.findings if b.rule == "V11"]
    assert batch.rows.tolist() == [0, 1]
    (reg,) = zero_consumption(_still_registers(None), default_rules())
    assert reg.rows.tolist() == [0, 1]


# The rules through run_vee


def test_a_meter_that_exports_nothing_raises_no_zero_findings_on_its_export_channel() -> None:
    reads = _reads(IMPORT, ["0.120"] * 2 * DAY) + _reads(EXPORT, ["0.000"] * 2 * DAY)
    registers = _registers(IMPORT, ["100.000", "111.520", "123.040"])
    registers += _registers(EXPORT, ["7.000", "7.000", "7.000"])
    result = run_vee(reads, registers, now=LATER)
    assert result.findings == ()
    assert {v.quality.value for v in result.versions} == {"VALID"}
    assert not any(v.rules for v in result.versions if v.channel == EXPORT)


def test_zeros_on_the_import_channel_still_raise_v11_and_v12() -> None:
    reads = _reads(IMPORT, ["0.000"] * DAY) + _reads(EXPORT, ["0.000"] * DAY)
    registers = _registers(IMPORT, ["100.000", "100.000"])
    registers += _registers(EXPORT, ["7.000", "7.000"])
    result = run_vee(reads, registers, now=LATER)
    assert _rules_by_channel(result.findings) == {("V11", IMPORT), ("V12", IMPORT)}
    assert {v.rules for v in result.versions if v.channel == IMPORT} == {("V11",)}


def test_a_zero_run_on_the_load_profile_delta_channel_is_still_a_finding() -> None:
    delta = "1.0.1.29.0.255"  # active import over each capture period
    result = run_vee(_reads(delta, ["0.000"] * DAY), now=LATER)
    assert _rules_by_channel(result.findings) == {("V11", delta)}


def test_a_day_without_export_after_days_with_a_little_is_not_low_usage() -> None:
    blips = {5, DAY + 5, 2 * DAY + 5}  # a few Wh on each of three days, then none
    values = ["0.002" if i in blips else "0.000" for i in range(4 * DAY)]
    steady = ["0.100"] * 3 * DAY + ["0.000"] * DAY
    exporting = run_vee(_reads(IMPORT, ["0.100"] * 4 * DAY) + _reads(EXPORT, values), now=LATER)
    assert exporting.findings == ()
    importing = run_vee(_reads(IMPORT, steady), now=LATER)  # the same drop on import
    assert ("V08", IMPORT) in _rules_by_channel(importing.findings)


def test_an_export_register_is_not_judged_for_high_or_low_usage() -> None:
    indices = ["100.000", "110.000", "120.000", "130.000", "175.000"]  # 10 kWh/day, then 45
    for channel, expected in ((EXPORT, set()), (IMPORT, {("V08", IMPORT)})):
        result = run_vee(_reads(IMPORT, ["0.1"]), _registers(channel, indices), now=LATER)
        assert _rules_by_channel(result.findings) == expected


# Naming other channels


def test_a_rules_file_can_point_the_zero_rules_at_other_channels() -> None:
    reads = _reads(IMPORT, ["0.000"] * DAY) + _reads(EXPORT, ["0.000"] * DAY)
    registers = _registers(IMPORT, ["100.000", "100.000"])
    registers += _registers(EXPORT, ["7.000", "7.000"])
    only_export = rules_from_yaml(
        f'rules:\n  V11: {{channels: "{EXPORT}"}}\n  V12: {{channels: "1.0.2.*.*.255"}}\n'
    )
    result = run_vee(reads, registers, now=LATER, rules=only_export)
    assert _rules_by_channel(result.findings) == {("V11", EXPORT), ("V12", EXPORT)}
    every = rules_from_yaml('rules:\n  V11: {channels: "*"}\n  V12: {channels: "*"}\n')
    result = run_vee(reads, registers, now=LATER, rules=every)
    assert _rules_by_channel(result.findings) == {
        ("V11", IMPORT),
        ("V11", EXPORT),
        ("V12", IMPORT),
        ("V12", EXPORT),
    }


def test_a_device_profile_can_name_its_own_consumption_channels() -> None:
    rules = rules_from_yaml('profiles:\n  odd_meter:\n    rules:\n      V11: {channels: "*"}\n')
    reads = _reads(EXPORT, ["0.000"] * DAY, meter="M1") + _reads(EXPORT, ["0.000"] * DAY, "M2")
    result = run_vee(
        reads, now=LATER, rules=rules, contexts={"M2": MeterContext(profile="odd_meter")}
    )
    assert {(f.rule, f.meter_id) for f in result.findings} == {("V11", "M2")}


def test_a_finding_records_the_channels_its_rule_ran_with() -> None:
    result = run_vee(_reads(IMPORT, ["0.000"] * DAY), now=LATER)
    (finding,) = result.findings
    assert finding.params["channels"] == "1.0.1.*.*.255, 1.0.15.*.*.255"


# The selector itself


@pytest.mark.parametrize(
    ("channel", "selected"),
    [
        ("1.0.1.8.0.255", True),
        ("1.0.1.8.2.255", True),  # a tariff register
        ("1.0.1.29.0.255", True),  # the load-profile delta
        ("1-0:1.8.0*255", True),  # any written form of the same code
        ("1.0.15.8.0.255", True),  # |A+| + |A-|
        ("1.0.2.8.0.255", False),  # export
        ("1.0.3.8.0.255", False),  # reactive import
        ("1.0.21.8.0.255", False),  # import on phase L1 alone
        ("import", False),  # not an OBIS code
    ],
)
def test_the_default_consumption_channels_are_active_import(channel: str, selected: bool) -> None:
    for rule in ("V08", "V11", "V12"):
        assert default_rules().channels(rule).matches(channel) is selected


def test_a_lone_star_selects_every_channel_even_one_not_named_by_obis() -> None:
    every = ChannelSelector.parse("*")
    assert every.matches("import") and every.matches(EXPORT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0.1.8", "six value groups"),
        ("1.0.1.8.x.255", "a number 0..255 or \\*"),
        ("1.0.1.8.0.256", "a number 0..255 or \\*"),
        ("1.0.1.8.0.255,", "separated by commas"),
        ("", "separated by commas"),
    ],
)
def test_a_channels_value_that_is_not_obis_patterns_is_refused(text: str, message: str) -> None:
    with pytest.raises(ChannelSelectorError, match=message):
        ChannelSelector.parse(text)
