"""The quality VEE gives register reads: valid, or suspect by the register rules it failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from headend.domain.obis import Obis
from headend.domain.quality import Quality
from headend.vee.register_quality import RegisterPoint, RegisterVerdict, judge_registers
from headend.vee.ruleset import default_rules

T0 = datetime(2026, 11, 1, 17, tzinfo=UTC)
TOTAL, T1, T2, T3 = (Obis(1, 0, 1, 8, e) for e in range(4))
DEMAND = Obis(1, 0, 1, 6, 0)
RULES = default_rules()


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def test_reads_that_move_forward_and_add_up_are_valid() -> None:
    points = [
        RegisterPoint(TOTAL, at(0), Decimal("100.0"), judged=False),
        RegisterPoint(TOTAL, at(24), Decimal("112.5")),
        RegisterPoint(T1, at(24), Decimal("60.0")),
        RegisterPoint(T2, at(24), Decimal("20.5")),
        RegisterPoint(T3, at(24), Decimal("32.0")),
    ]

    verdicts = judge_registers(points, RULES)

    assert verdicts == [RegisterVerdict(p.obis, p.read_at, Quality.VALID) for p in points[1:]]


def test_an_index_below_the_read_before_is_suspect_and_the_earlier_read_is_not_judged() -> None:
    points = [
        RegisterPoint(TOTAL, at(0), Decimal("100.0"), judged=False),
        RegisterPoint(TOTAL, at(24), Decimal("99.0")),
    ]

    assert judge_registers(points, RULES) == [
        RegisterVerdict(TOTAL, at(24), Quality.SUSPECT, ("V06",))
    ]


def test_a_rollover_past_the_register_digits_is_valid_and_says_so() -> None:
    points = [
        RegisterPoint(TOTAL, at(0), Decimal("999990.0")),
        RegisterPoint(TOTAL, at(24), Decimal("12.0")),
    ]

    assert judge_registers(points, RULES)[1] == RegisterVerdict(
        TOTAL, at(24), Quality.VALID, ("V07",)
    )


def test_tariff_registers_that_do_not_add_up_to_the_total_are_all_suspect() -> None:
    points = [
        RegisterPoint(TOTAL, at(0), Decimal("112.5")),
        RegisterPoint(T1, at(0), Decimal("60.0")),
        RegisterPoint(T2, at(0), Decimal("20.5")),
        RegisterPoint(T3, at(0), Decimal("30.0")),
    ]

    verdicts = judge_registers(points, RULES)

    assert {(v.quality, v.rules) for v in verdicts} == {(Quality.SUSPECT, ("V14",))}


def test_a_demand_register_may_go_down() -> None:
    points = [
        RegisterPoint(DEMAND, at(0), Decimal("5.2")),
        RegisterPoint(DEMAND, at(24), Decimal("1.1")),
    ]

    assert {v.quality for v in judge_registers(points, RULES)} == {Quality.VALID}


def test_a_rule_turned_off_is_not_applied() -> None:
    rules = RULES.with_override({"rules": {"V06": {"enabled": False}}})
    points = [
        RegisterPoint(TOTAL, at(0), Decimal("100.0")),
        RegisterPoint(TOTAL, at(24), Decimal("99.0")),
    ]

    assert {v.quality for v in judge_registers(points, rules)} == {Quality.VALID}
