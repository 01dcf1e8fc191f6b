"""Checking a device profile against a meter's survey: every object of the profile exists on
the meter with its class, each register's scaler and unit are the meter's (headend scales by
the meter's; a profile that says otherwise misleads whoever reads it), and each profile's
capture objects and capture period are the meter's. One ``(key, problem)`` per difference."""

from __future__ import annotations

from collections.abc import Sequence

from headend.domain.obis import Obis
from headend.domain.readings import Column
from headend.domain.survey import PROBED, Survey
from headend.profiles.model import CaptureObjectSpec, DeviceProfile


def _keys(profile: DeviceProfile) -> dict[Obis, str]:
    """Where each object is declared in the profile, as a key path."""
    keys: dict[Obis, str] = {
        profile.clock.obis: "clock.obis",
        profile.association.obis: "association.obis",
    }
    for index, obj in enumerate(profile.objects):
        keys[obj.obis] = f"objects.{index}"
    for section, spec in profile.profiles().items():
        keys[spec.obis] = f"{section}.obis"
    if profile.disconnect_control is not None:
        keys[profile.disconnect_control.obis] = "disconnect_control.obis"
    return keys


def candidates(profile: DeviceProfile) -> list[tuple[Obis, tuple[int, ...]]]:
    """The profile's objects, each with its declared class, to try on a meter that refuses
    its object list."""
    return [(obis, (class_id,)) for obis, class_id in profile.declared_classes().items()]


def wanted(profile: DeviceProfile) -> set[Obis]:
    """The objects whose definition the live check reads: the profile's profiles and its
    registers (their scaler_unit)."""
    registers = {o.obis for o in profile.objects if o.class_id != 1}
    return {spec.obis for spec in profile.profiles().values()} | registers


def _text(captures: Sequence[tuple[int, Obis, int, int]]) -> str:
    return (
        "["
        + ", ".join(
            f"{obis}/{attribute}" + (f"#{index}" if index else "") + f" (class {class_id})"
            for class_id, obis, attribute, index in captures
        )
        + "]"
    )


def _as_tuples(columns: Sequence[Column | CaptureObjectSpec]) -> list[tuple[int, Obis, int, int]]:
    return [(c.class_id, c.obis, c.attribute, c.data_index) for c in columns]


def live_findings(profile: DeviceProfile, survey: Survey) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    keys = _keys(profile)
    for obis, class_id in profile.declared_classes().items():
        key = keys.get(obis, str(obis))
        on_meter = survey.objects.get(obis)
        if on_meter is not None:
            if on_meter.class_id != class_id:
                found.append((
                    key,
                    f"{obis} is class {on_meter.class_id} on the meter, class {class_id} here",
                ))  # fmt: skip
        elif survey.source == PROBED:
            reason = survey.absent.get(obis, "not found")
            found.append((key, f"{obis}: the meter answers {reason}"))
        else:
            found.append((key, f"{obis} (class {class_id}) is not in the meter's object list"))
    for index, obj in enumerate(profile.objects):
        value = survey.values.get(obj.obis)
        if obj.class_id == 1 or value is None or value.class_id != obj.class_id:
            continue  # a data object, one not read, or one of another class (reported above)
        if value.scaler is None or value.unit is None:
            found.append((f"objects.{index}", f"{obj.obis}: {value.problem or 'no scaler_unit'}"))
        elif (value.scaler, value.unit) != (obj.scaler, obj.unit):
            found.append((
                f"objects.{index}",
                f"{obj.obis} has scaler {value.scaler} and unit {value.unit} on the meter, "
                f"scaler {obj.scaler} and unit {obj.unit} here (headend scales by the meter's)",
            ))  # fmt: skip
    for section, spec in profile.profiles().items():
        if spec.obis not in survey.objects:
            continue  # reported above
        meter = survey.profiles.get(spec.obis)
        if meter is None:
            found.append((section, f"the definition of {spec.obis} could not be read"))
            continue
        theirs, ours = _as_tuples(meter.capture_objects), _as_tuples(spec.capture_objects)
        if theirs != ours:
            found.append((
                f"{section}.capture_objects",
                f"the meter captures {_text(theirs)}; the profile says {_text(ours)}",
            ))  # fmt: skip
        if meter.capture_period_s is not None and meter.capture_period_s != spec.capture_period_s:
            found.append((
                f"{section}.capture_period_s",
                f"the meter captures every {meter.capture_period_s} s; the profile says "
                f"{spec.capture_period_s} s",
            ))  # fmt: skip
    return found
