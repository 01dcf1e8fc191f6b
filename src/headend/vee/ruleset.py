"""Rule sets: which rules run and with which parameters, loaded from YAML.

The default set ships with the package (``default_rules.yaml``). An override is a YAML
document of the same shape; it may only set keys the default defines, with a value of the
same kind, so that a typo is an error rather than a silently ignored setting. A rule that
applies to some channels only has a ``channels`` parameter (OBIS patterns, see
``headend.vee.channels``), checked when the rule set is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from headend.vee.channels import ChannelSelector, ChannelSelectorError

Scalar = bool | int | float | str
TOP_LEVEL = ("interval_minutes", "timezone", "resolution_kwh")


class RuleSetError(ValueError):
    """A rules document is malformed or sets something that does not exist."""


@dataclass(frozen=True)
class RuleSet:
    """Effective settings and rule parameters; one instance per profile or meter class."""

    settings: Mapping[str, Scalar]
    rules: Mapping[str, Mapping[str, Scalar]]
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    name: str = "default"

    @property
    def interval_s(self) -> int:
        return int(self.settings["interval_minutes"]) * 60

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(str(self.settings["timezone"]))

    @property
    def resolution_kwh(self) -> float:
        return float(self.settings["resolution_kwh"])

    def enabled(self, rule: str) -> bool:
        return bool(self.rules[rule]["enabled"])

    def num(self, rule: str, name: str) -> float:
        return float(self.rules[rule][name])

    def flag(self, rule: str, name: str) -> bool:
        return bool(self.rules[rule][name])

    def channels(self, rule: str) -> ChannelSelector:
        """The channels ``rule`` applies to (its ``channels`` parameter)."""
        return ChannelSelector.parse(str(self.rules[rule]["channels"]))

    def params(self, rule: str) -> dict[str, Scalar]:
        """The parameters of ``rule`` as recorded on its findings (without ``enabled``)."""
        return {k: v for k, v in self.rules[rule].items() if k != "enabled"}

    def for_meter(self, profile: str | None = None, meter_class: str | None = None) -> RuleSet:
        """The rule set after the meter class and then the device profile overrides."""
        result = self
        for group, key in (("meter_classes", meter_class), ("profiles", profile)):
            if key is None:
                continue
            patch = self.overrides.get(group, {}).get(key)
            if patch is not None:
                result = _apply(result, patch, f"{group}.{key}", f"{result.name}+{key}")
        return result

    def with_override(self, document: Mapping[str, Any]) -> RuleSet:
        """This rule set with ``document`` (same shape as the default) laid over it."""
        result = _apply(self, document, "", self.name)
        groups = {g: dict(self.overrides.get(g, {})) for g in ("profiles", "meter_classes")}
        for group in groups:
            extra = document.get(group) or {}
            if not isinstance(extra, Mapping):
                raise RuleSetError(f"{group} must be a mapping of names to overrides")
            for key, patch in extra.items():
                _apply(self, patch, f"{group}.{key}", key)  # checked now, applied per meter
                groups[group][str(key)] = patch
        return RuleSet(result.settings, result.rules, groups, result.name)


def _same_kind(old: Scalar, new: object) -> bool:
    if isinstance(old, bool):
        return isinstance(new, bool)
    if isinstance(old, int | float):
        return isinstance(new, int | float) and not isinstance(new, bool)
    return isinstance(new, str)


def _apply(base: RuleSet, document: Mapping[str, Any], where: str, name: str) -> RuleSet:
    if not isinstance(document, Mapping):
        raise RuleSetError(f"{where or 'the rules document'} must be a mapping")
    prefix = f"{where}." if where else ""
    settings = dict(base.settings)
    rules = {rule: dict(params) for rule, params in base.rules.items()}
    for key, value in document.items():
        if key in ("profiles", "meter_classes") and not where:
            continue
        if key == "rules":
            if not isinstance(value, Mapping):
                raise RuleSetError(f"{prefix}rules must be a mapping of rule ids")
            for rule, params in value.items():
                if rule not in rules:
                    known = ", ".join(sorted(rules))
                    raise RuleSetError(f"{prefix}rules.{rule}: unknown rule id (known: {known})")
                if not isinstance(params, Mapping):
                    raise RuleSetError(f"{prefix}rules.{rule} must be a mapping of parameters")
                for param, new in params.items():
                    old = rules[rule].get(param)
                    if old is None:
                        known = ", ".join(sorted(rules[rule]))
                        raise RuleSetError(
                            f"{prefix}rules.{rule}.{param}: unknown parameter (known: {known})"
                        )
                    if not _same_kind(old, new):
                        raise RuleSetError(
                            f"{prefix}rules.{rule}.{param}: expected a value like {old!r}, "
                            f"got {new!r}"
                        )
                    rules[rule][param] = new
        elif key in TOP_LEVEL:
            if not _same_kind(settings[key], value):
                raise RuleSetError(f"{prefix}{key}: expected a value like {settings[key]!r}")
            settings[key] = value
        else:
            raise RuleSetError(f"{prefix}{key}: unknown setting")
    _check(settings, where)
    _check_channels(rules, prefix)
    return RuleSet(settings, rules, base.overrides, name)


def _check_channels(rules: Mapping[str, Mapping[str, Scalar]], prefix: str) -> None:
    for rule, params in rules.items():
        if "channels" in params:
            try:
                ChannelSelector.parse(str(params["channels"]))
            except ChannelSelectorError as exc:
                raise RuleSetError(f"{prefix}rules.{rule}.channels: {exc}") from exc


def _check(settings: Mapping[str, Scalar], where: str) -> None:
    minutes = settings["interval_minutes"]
    if not isinstance(minutes, int) or minutes <= 0 or 1440 % minutes:
        raise RuleSetError(f"{where}interval_minutes must divide a day, got {minutes!r}")
    try:
        ZoneInfo(str(settings["timezone"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleSetError(f"{where}timezone {settings['timezone']!r} is unknown") from exc


def _parse(text: str, source: str) -> Mapping[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"{source} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise RuleSetError(f"{source} must hold a mapping at the top level")
    return document


def default_rules() -> RuleSet:
    """The rule set shipped with the package."""
    text = resources.files("headend.vee").joinpath("default_rules.yaml").read_text("utf-8")
    document = _parse(text, "default_rules.yaml")
    settings = {k: document[k] for k in TOP_LEVEL}
    rules = {rule: dict(params) for rule, params in document["rules"].items()}
    base = RuleSet(settings, rules, {}, "default")
    return base.with_override({g: document.get(g) or {} for g in ("profiles", "meter_classes")})


def rules_from_yaml(text: str, source: str = "rules file", base: RuleSet | None = None) -> RuleSet:
    """``base`` (the default set if omitted) overridden by the YAML document ``text``."""
    return (base or default_rules()).with_override(_parse(text, source))
