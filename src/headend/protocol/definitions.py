"""A meter's profile definitions against the device profile: capture objects and period.

A profile generic object's capture objects (attribute 3) say what each entry of its buffer
holds, its capture period (attribute 4) how often an entry is taken. A collection reads both
from the meter (once per meter, model and firmware: ``DefinitionCache``) and compares them with
the device profile every time, at no cost on the wire: a difference is the profile's mistake,
a ``ConfigurationError`` naming both values, because intervals read with the wrong period or
the wrong columns are silently wrong data. The probe does not compare before reading: it reads
each profile as the meter defines it and reports the differences (:func:`differences`).

The capture period is in **seconds**, as COSEM defines it (dlms-cosem 25.1.0 treats it as
minutes).
"""

from __future__ import annotations

from collections.abc import Sequence

from headend.domain.obis import Obis, ObisError
from headend.domain.readings import Column
from headend.protocol import axdr
from headend.protocol.errors import ConfigurationError, DecodeError
from headend.protocol.plan import CaptureSpec, ProfileRead

LOAD_PROFILE = "load profile"
BILLING_PROFILE = "billing profile"
EVENT_LOG = "event log"
# an event log captures on events (period 0), whatever it declares: its period is not compared
PERIODIC = frozenset({LOAD_PROFILE, BILLING_PROFILE})

# capture_period in seconds: 0 is an asynchronous capture (event logs, a billing profile
# captured on a reset); a periodic profile captures at most once a second and at least daily
MAX_CAPTURE_PERIOD_S = 86_400


def parse_capture_period(data: bytes) -> int | None:
    """The capture period in seconds, or None when the meter sent no integer."""
    value = axdr.decode(data)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not 0 <= value <= MAX_CAPTURE_PERIOD_S:
        raise DecodeError(
            f"capture period of {value} s is outside 1 s..{MAX_CAPTURE_PERIOD_S} s (or 0)"
        )
    return value


def parse_capture_objects(data: bytes) -> tuple[Column, ...]:
    value = axdr.decode(data)
    if not isinstance(value, list):
        raise DecodeError("capture_objects is not an array")
    columns = []
    for item in value:
        if (
            not isinstance(item, tuple)
            or len(item) != 4
            or not isinstance(item[0], int)
            or not isinstance(item[1], bytes)
            or not isinstance(item[2], int)
            or not isinstance(item[3], int)
            or any(isinstance(v, bool) for v in item)
        ):
            raise DecodeError(f"capture object {item!r} is not (class, obis, attribute, index)")
        class_id, logical_name, attribute, data_index = item[0], item[1], item[2], item[3]
        try:
            obis = Obis.from_bytes(logical_name)
        except ObisError as exc:
            raise DecodeError(f"capture object {item!r}: {exc}") from exc
        if not (0 <= class_id <= 0xFFFF and -128 <= attribute <= 127 and 0 <= data_index <= 0xFFFF):
            raise DecodeError(f"capture object {item!r} is out of range")
        columns.append(Column(class_id, obis, attribute, data_index))
    return tuple(columns)


def _listed(columns: Sequence[CaptureSpec | Column]) -> str:
    return "[" + ", ".join(f"{c.obis}/{c.attribute}" for c in columns) + "]"


def differences(
    role: str, model: str, profile: ProfileRead, columns: tuple[Column, ...], period_s: int | None
) -> list[str]:
    """How the meter's definition of ``profile`` differs from the device profile ``model``:
    one sentence per difference, naming both values; empty when they agree. A profile that
    names no capture objects, or a meter that sent no period, leaves that part unchecked."""
    where = f"{role} {profile.obis}"
    named = f"profile {model}" if model else "the device profile"
    found: list[str] = []
    if role in PERIODIC and period_s is not None and period_s != profile.capture_period_s:
        found.append(
            f"{where}: capture period {period_s} s on the meter, "
            f"{profile.capture_period_s} s in {named}"
        )
    expected = [(c.class_id, c.obis, c.attribute) for c in profile.capture_objects]
    meter = [(c.class_id, c.obis, c.attribute) for c in columns]
    if expected and expected != meter:
        found.append(
            f"{where}: capture objects {_listed(columns)} on the meter, "
            f"{_listed(profile.capture_objects)} in {named}"
        )
    return found


def check_definition(
    role: str, model: str, profile: ProfileRead, columns: tuple[Column, ...], period_s: int | None
) -> None:
    """Raise ``ConfigurationError`` when the meter's definition differs from the profile's."""
    found = differences(role, model, profile, columns, period_s)
    if found:
        raise ConfigurationError("; ".join(found))


def as_defined(profile: ProfileRead, columns: tuple[Column, ...], period_s: int) -> ProfileRead:
    """``profile`` with the capture objects and period the meter reported."""
    return ProfileRead(
        obis=profile.obis,
        capture_objects=tuple(
            CaptureSpec(c.class_id, c.obis, c.attribute, c.data_index) for c in columns
        ),
        capture_period_s=period_s,
    )
