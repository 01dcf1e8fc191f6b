"""What an object of a billing meter is, from its OBIS code and class: the quantity of a
value object, or the part a clock, profile or disconnect control plays in a device profile.

Only what a billing head-end reads is classified; anything else is ``None`` (left out of a
discovered profile). ``CANDIDATES`` are the OBIS codes tried one by one on a meter that
refuses its object list, each with the classes it is usually found in, most usual first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from headend.domain.obis import Obis
from headend.profiles.model import Quantity


class Role(StrEnum):
    VALUE = "value"
    CLOCK = "clock"
    ASSOCIATION = "association"
    LOAD_PROFILE = "load_profile"
    BILLING_PROFILE = "billing_profile"
    EVENT_LOG = "event_log"
    DISCONNECT_CONTROL = "disconnect_control"


@dataclass(frozen=True, slots=True)
class Kind:
    role: Role
    quantity: Quantity | None = None
    name: str = ""
    tariff: str | None = None


_DATA = {
    (0, 96, 1, 0): (Quantity.SERIAL_NUMBER, "serial_number"),
    (1, 0, 2, 0): (Quantity.FIRMWARE, "firmware"),  # active firmware identifier
    (0, 96, 10, 1): (Quantity.AMR_STATUS, "amr_status"),
    (0, 96, 11, 0): (Quantity.EVENT_CODE, "event_code"),
}
_REGISTERS = {
    (1, 1, 8, 0): (Quantity.IMPORT, "active_import"),
    (1, 1, 8, 1): (Quantity.IMPORT_T1, "active_import_t1"),
    (1, 1, 8, 2): (Quantity.IMPORT_T2, "active_import_t2"),
    (1, 1, 8, 3): (Quantity.IMPORT_T3, "active_import_t3"),
    (1, 2, 8, 0): (Quantity.EXPORT, "active_export"),
    (1, 3, 8, 0): (Quantity.REACTIVE_IMPORT, "reactive_import"),
    (1, 1, 6, 0): (Quantity.MAX_DEMAND, "max_demand_import"),
}
# the order objects are written in a profile (the firmware identifier last, as the shipped
# profiles declare it)
QUANTITY_ORDER = [
    *(q for q, _ in _DATA.values() if q is not Quantity.FIRMWARE),
    *(q for q, _ in _REGISTERS.values()),
    Quantity.FIRMWARE,
]
_CLASSES = {"data": (1,), "register": (3, 4)}


def classify(obis: Obis, class_id: int) -> Kind | None:
    """What the object is to a billing head-end, or None."""
    key = (obis.a, obis.c, obis.d, obis.e)
    if obis.f != 255:
        return None
    if class_id == 1 and key in _DATA:
        quantity, name = _DATA[key]
        return Kind(Role.VALUE, quantity, name)
    if class_id in (3, 4) and key in _REGISTERS:
        quantity, name = _REGISTERS[key]
        tariff = f"T{obis.e}" if obis.d == 8 and obis.c == 1 and obis.e in (1, 2, 3) else None
        return Kind(Role.VALUE, quantity, name, tariff)
    if class_id == 8 and key == (0, 1, 0, 0):
        return Kind(Role.CLOCK)
    if class_id == 15 and key == (0, 40, 0, 0):
        return Kind(Role.ASSOCIATION)
    if class_id == 70 and key == (0, 96, 3, 10):
        return Kind(Role.DISCONNECT_CONTROL)
    if class_id == 7:
        if obis.a == 1 and obis.c == 99 and obis.d in (1, 2):
            return Kind(Role.LOAD_PROFILE)
        if obis.a == 0 and obis.c == 98 and obis.d == 1:
            return Kind(Role.BILLING_PROFILE)
        if obis.a == 0 and obis.c == 99 and obis.d == 98:
            return Kind(Role.EVENT_LOG)
    return None


def wanted(obis: Obis, class_id: int) -> bool:
    """Whether a survey of the meter should read this object."""
    return classify(obis, class_id) is not None


def _code(text: str) -> Obis:
    return Obis.parse(text)


CANDIDATES: tuple[tuple[Obis, tuple[int, ...]], ...] = (
    (_code("0.0.1.0.0.255"), (8,)),
    (_code("0.0.96.1.0.255"), (1,)),
    (_code("1.0.0.2.0.255"), (1,)),
    (_code("0.0.96.10.1.255"), (1,)),
    (_code("0.0.96.11.0.255"), (1,)),
    *((Obis(1, 0, c, d, e, 255), (3, 4)) for (_, c, d, e) in _REGISTERS if (c, d) != (1, 6)),
    (_code("1.0.1.6.0.255"), (4, 3)),
    (_code("1.0.99.1.0.255"), (7,)),
    (_code("1.0.99.2.0.255"), (7,)),
    (_code("0.0.98.1.0.255"), (7,)),
    (_code("0.0.99.98.0.255"), (7,)),
    (_code("0.0.96.3.10.255"), (70,)),
)
