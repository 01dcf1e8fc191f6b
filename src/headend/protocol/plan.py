"""What to read from one meter model and how: the protocol layer's view of a device profile.

The caller (services, the probe) builds a ``ReadSpec`` from the device profile; this package
knows nothing of YAML or of the profile schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headend.domain.obis import Obis
from headend.protocol.cosem_time import TimePolicy

CLOCK_CLASS = 8
DATA_CLASS = 1
REGISTER_CLASS = 3
EXTENDED_REGISTER_CLASS = 4
DEMAND_REGISTER_CLASS = 5
PROFILE_GENERIC_CLASS = 7
CLOCK_OBIS = Obis(0, 0, 1, 0, 0, 255)
SERIAL_NUMBER_OBIS = Obis(0, 0, 96, 1, 0, 255)
FIRMWARE_OBIS = Obis(1, 0, 0, 2, 0, 255)  # active firmware identifier


@dataclass(frozen=True, slots=True)
class CaptureSpec:
    class_id: int
    obis: Obis
    attribute: int = 2
    data_index: int = 0


@dataclass(frozen=True, slots=True)
class ProfileRead:
    """A profile generic object and the capture objects the device profile expects."""

    obis: Obis
    capture_objects: tuple[CaptureSpec, ...] = ()
    capture_period_s: int = 0


@dataclass(frozen=True, slots=True)
class ObjectRead:
    """A value object to read: data (1), register (3), extended (4) or demand register (5)."""

    obis: Obis
    class_id: int = REGISTER_CLASS


@dataclass(frozen=True)
class ReadSpec:
    clock: Obis = CLOCK_OBIS
    serial_number: Obis | None = SERIAL_NUMBER_OBIS
    # the active firmware identifier, read with the serial number; None: the model has none
    firmware: Obis | None = None
    registers: tuple[ObjectRead, ...] = ()
    load_profile: ProfileRead | None = None
    billing_profile: ProfileRead | None = None
    event_logs: tuple[ProfileRead, ...] = ()
    time: TimePolicy = field(default_factory=TimePolicy)
    # quirks of the model, as named settings
    supports_release: bool = True
    supports_range_access: bool = True
    supports_entry_access: bool = True
    supports_get_with_list: bool = True
    list_batch: int = 16  # attributes per GET with list
    # read with the registers, besides them (the registry's extra_obis): an object the meter
    # lacks, or whose value is not of its class, is reported unavailable
    extra_objects: tuple[ObjectRead, ...] = ()
    model: str = ""  # keys the scaler cache together with the meter and its firmware
