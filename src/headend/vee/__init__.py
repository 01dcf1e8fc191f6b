"""Validation, estimation and editing (VEE) of interval and register data, as pure functions.

``run_vee`` takes raw reads and returns a ``VeeResult``; ``headend.vee.edits`` makes operator
edits and reverts; ``headend.vee.kernel.run_block`` is the array kernel underneath, which the
benchmark drives directly.
"""

from __future__ import annotations

from headend.vee.model import (
    ClockCheck,
    Finding,
    IntervalRead,
    IntervalVersion,
    MeterContext,
    Outage,
    RegisterRead,
    ReReadRequest,
    VeeResult,
)
from headend.vee.pipeline import run_vee
from headend.vee.ruleset import RuleSet, RuleSetError, default_rules, rules_from_yaml

__all__ = [
    "ClockCheck",
    "Finding",
    "IntervalRead",
    "IntervalVersion",
    "MeterContext",
    "Outage",
    "ReReadRequest",
    "RegisterRead",
    "RuleSet",
    "RuleSetError",
    "VeeResult",
    "default_rules",
    "rules_from_yaml",
    "run_vee",
]
