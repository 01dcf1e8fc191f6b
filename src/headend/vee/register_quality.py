"""The quality VEE gives a meter's register reads (scheduled reads and billing-profile snapshots).

A register read lands as the meter gave it (quality RAW). The VEE pass judges each one and
stores the result as the read's next version:

* SUSPECT, rule V06, when an energy index (OBIS D = 8) is below the meter's previous read of
  the same register, unless it is a rollover (V07: the previous value above ``high_fraction``
  of 10**``register_digits``, this one below ``low_fraction`` of it), which is VALID;
* SUSPECT, rule V14, for a total register and its tariff registers (same OBIS C and D, E = 0
  and E > 0) read at the same instant whose tariffs do not add up to the total within
  ``resolution_kwh`` per tariff register;
* VALID otherwise (demand and other registers are not cumulative and are checked for nothing
  but having a value).

A rule that the rule set turns off is not applied. Pure functions: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from headend.domain.obis import Obis
from headend.domain.quality import Quality
from headend.vee.ruleset import RuleSet

ENERGY_INDEX_D = 8  # OBIS D of a cumulative energy register (x.x.C.8.E.255)


@dataclass(frozen=True, slots=True)
class RegisterPoint:
    """One register read of one meter: its current version's value, and whether it is to be
    judged (False: an earlier read, there to compare with)."""

    obis: Obis
    read_at: datetime
    value: Decimal
    judged: bool = True


@dataclass(frozen=True, slots=True)
class RegisterVerdict:
    obis: Obis
    read_at: datetime
    quality: Quality
    rules: tuple[str, ...] = ()  # the rules behind the quality (V06, V07, V14)


def judge_registers(points: Sequence[RegisterPoint], rules: RuleSet) -> list[RegisterVerdict]:
    """The quality of every judged read of one meter, by the rules of the module docstring,
    in the order of ``points``."""
    found: dict[tuple[Obis, datetime], set[str]] = defaultdict(set)
    suspect: set[tuple[Obis, datetime]] = set()
    by_obis: dict[Obis, list[RegisterPoint]] = defaultdict(list)
    for point in points:
        by_obis[point.obis].append(point)
    for obis, reads in by_obis.items():
        if obis.d != ENERGY_INDEX_D:
            continue
        reads.sort(key=lambda p: p.read_at)
        for before, now in pairwise(reads):
            if not now.judged or now.value >= before.value:
                continue
            key = (obis, now.read_at)
            if _rollover(before.value, now.value, rules):
                found[key].add("V07")
            elif rules.enabled("V06"):
                found[key].add("V06")
                suspect.add(key)
    if rules.enabled("V14"):
        for key in _tou_sum_failures(points, rules):
            found[key].add("V14")
            suspect.add(key)
    return [
        RegisterVerdict(
            p.obis,
            p.read_at,
            Quality.SUSPECT if (p.obis, p.read_at) in suspect else Quality.VALID,
            tuple(sorted(found.get((p.obis, p.read_at), ()))),
        )
        for p in points
        if p.judged
    ]


def _rollover(previous: Decimal, current: Decimal, rules: RuleSet) -> bool:
    if not rules.enabled("V07"):
        return False
    top = Decimal(10) ** int(rules.num("V07", "register_digits"))
    high = Decimal(str(rules.num("V07", "high_fraction"))) * top
    low = Decimal(str(rules.num("V07", "low_fraction"))) * top
    return previous > high and current < low


def _tou_sum_failures(
    points: Sequence[RegisterPoint], rules: RuleSet
) -> list[tuple[Obis, datetime]]:
    """The reads of every total and tariff registers read together whose tariffs do not add up
    to the total, where one of them is judged."""
    families: dict[tuple[int, int, int, int, datetime], list[RegisterPoint]] = defaultdict(list)
    for p in points:
        if p.obis.d == ENERGY_INDEX_D:
            families[(p.obis.a, p.obis.b, p.obis.c, p.obis.d, p.read_at)].append(p)
    resolution = Decimal(str(rules.num("V14", "resolution_kwh")))
    failing: list[tuple[Obis, datetime]] = []
    for reads in families.values():
        totals = [p for p in reads if p.obis.e == 0]
        parts = [p for p in reads if p.obis.e != 0]
        if len(totals) != 1 or not parts or not any(p.judged for p in reads):
            continue
        if abs(sum(p.value for p in parts) - totals[0].value) > len(parts) * resolution:
            failing.extend((p.obis, p.read_at) for p in reads if p.judged)
    return failing
