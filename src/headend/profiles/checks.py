"""Checking device profile files offline: the schema, then consistency across sections.

``check_file`` gives every problem of one file, each as ``file: key: problem``; a warning is
something headend copes with but the author should know (it does not make the file bad).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from headend.domain.tou import CALENDARS
from headend.profiles.loader import problem_text
from headend.profiles.model import DeviceProfile, ObjectSpec, Quantity

# the quantities a billing record may bill, reading them at both ends of its period; which it
# does bill is the profile's ``billing.quantities`` (import always)
BILLED_AT_BOUNDARIES = (Quantity.IMPORT, Quantity.EXPORT)
_TARIFF_QUANTITY = {"T1": Quantity.IMPORT_T1, "T2": Quantity.IMPORT_T2, "T3": Quantity.IMPORT_T3}
_HOUR_S = 3600
_DAY_S = 86400


@dataclass(frozen=True)
class Finding:
    """One line of a check: ``file: key: problem`` (``warning:`` before a warning)."""

    file: str
    key: str
    problem: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}: " if self.key else f"{self.file}: "
        return where + ("warning: " if self.warning else "") + self.problem

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "key": self.key,
            "problem": self.problem,
            "severity": "warning" if self.warning else "error",
        }


def check_file(path: Path) -> list[Finding]:
    """Every problem of the profile file at ``path``: schema first, then cross-checks."""
    shown = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return [Finding(shown, "", f"cannot read the file ({exc.strerror})")]
    except yaml.YAMLError as exc:
        return [Finding(shown, "", f"not valid YAML ({exc})")]
    if not isinstance(raw, dict):
        return [Finding(shown, "", "the file must hold a mapping of keys")]
    found: list[Finding] = []
    if raw.get("name") != path.stem:
        found.append(Finding(shown, "name", f"must be {path.stem!r}, the file's name"))
    try:
        profile = DeviceProfile.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            message = problem_text(error["msg"])
            if ": " in message and not key:
                key, message = message.split(": ", 1)
            found.append(Finding(shown, key, message))
        return found
    return found + [Finding(shown, key, problem, warning) for key, problem, warning in
                    cross_check(profile)]  # fmt: skip


def cross_check(profile: DeviceProfile) -> list[tuple[str, str, bool]]:
    """Consistency the schema alone does not catch, as (key, problem, is a warning)."""
    found: list[tuple[str, str, bool]] = []
    found += _billed_registers(profile)
    found += _tariffs(profile)
    found += _capture_periods(profile)
    return found


def _key_of(profile: DeviceProfile, obj: ObjectSpec) -> str:
    return f"objects.{profile.objects.index(obj)}"


def _billed_registers(profile: DeviceProfile) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    captured = {c.obis for c in profile.load_profile.capture_objects}
    scheduled = set(profile.reads.registers)
    if not any(o.quantity is Quantity.IMPORT for o in profile.objects):
        found.append(("objects", "no active import register (quantity A+): nothing to bill", False))
    for obj in profile.objects:
        if obj.quantity not in BILLED_AT_BOUNDARIES or obj.obis in captured:
            continue
        if not profile.billed(obj.quantity):
            continue  # reported in billing records as not billed: it never blocks a bill
        if obj.obis in scheduled:
            found.append((
                _key_of(profile, obj),
                f"{obj.obis} ({obj.quantity.value}) is billed at period boundaries but the load "
                "profile does not capture it: its boundary reads will come from scheduled "
                "register reads (reads.registers)",
                True,
            ))  # fmt: skip
        else:
            found.append((
                _key_of(profile, obj),
                f"{obj.obis} ({obj.quantity.value}) is billed at period boundaries but neither "
                "captured by the load profile nor listed in reads.registers: it is never read "
                "at a boundary",
                False,
            ))  # fmt: skip
    return found


def _tariffs(profile: DeviceProfile) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    mapping = profile.tariffs.registers if profile.tariffs is not None else {}
    for obj in profile.objects:
        key = _key_of(profile, obj)
        if obj.tariff is not None:
            if obj.tariff not in mapping:
                found.append((
                    f"{key}.tariff",
                    f"tariff {obj.tariff} has no time-of-use period in tariffs.registers",
                    False,
                ))  # fmt: skip
            if obj.quantity is not _TARIFF_QUANTITY[obj.tariff]:
                found.append((
                    f"{key}.quantity",
                    f"a register of tariff {obj.tariff} carries "
                    f"{_TARIFF_QUANTITY[obj.tariff].value}, not {obj.quantity.value}",
                    False,
                ))  # fmt: skip
        elif obj.quantity in _TARIFF_QUANTITY.values():
            found.append((f"{key}.tariff", f"quantity {obj.quantity.value} needs a tariff", False))
    if profile.tariffs is None:
        return found
    tariffs_of = {o.tariff for o in profile.objects if o.tariff is not None}
    for tariff in sorted(mapping):
        if tariff not in tariffs_of:
            found.append((
                f"tariffs.registers.{tariff}",
                f"no register in objects has tariff {tariff}",
                False,
            ))  # fmt: skip
    periods = set(mapping.values())
    if periods != {"normal", "peak", "off_peak"}:
        missing = ", ".join(sorted({"normal", "peak", "off_peak"} - periods))
        found.append((
            "tariffs.registers",
            f"no register for the period(s) {missing}: billing will not split import by "
            "time of use",
            True,
        ))  # fmt: skip
    if len(periods) != len(mapping):
        found.append(("tariffs.registers", "two tariffs accumulate the same period", False))
    if profile.tariffs.calendar not in CALENDARS:
        known = ", ".join(sorted(CALENDARS))
        found.append((
            "tariffs.calendar",
            f"no time-of-use calendar named {profile.tariffs.calendar!r} (known: {known})",
            False,
        ))  # fmt: skip
    return found


def _capture_periods(profile: DeviceProfile) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    load = profile.load_profile
    if load.capture_period_s > _HOUR_S:
        found.append((
            "load_profile.capture_period_s",
            f"{load.capture_period_s} s is longer than an hour; load profiles capture every "
            "5, 15, 30 or 60 minutes",
            True,
        ))  # fmt: skip
    held_s = load.capture_period_s * load.profile_entries
    if held_s < 2 * _DAY_S:
        found.append((
            "load_profile.profile_entries",
            f"{load.profile_entries} entries of {load.capture_period_s} s hold "
            f"{held_s / _HOUR_S:g} hours: a meter missed for two days loses intervals",
            True,
        ))  # fmt: skip
    billing = profile.billing_profile
    if billing is not None and billing.capture_period_s % _DAY_S:
        found.append((
            "billing_profile.capture_period_s",
            f"{billing.capture_period_s} s is not a whole number of days (0 for captures on "
            "events, 86400 for daily)",
            True,
        ))  # fmt: skip
    return found
