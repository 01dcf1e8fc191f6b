"""What a survey of one meter found: its objects and their classes, the scalers and value
types of its value objects, its profiles' definitions, its clock and how it behaves.

A survey is made by ``headend.protocol.discover`` over a session and read by
``headend.profiles.writer`` (a draft device profile) and ``headend.profiles.live`` (checking
a profile against the meter); this module is the value both sides share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from headend.domain.obis import Obis
from headend.domain.readings import Column

OBJECT_LIST = "object_list"  # the objects came from the association's object list
PROBED = "probed"  # the list was refused: the usual OBIS codes were tried one by one


@dataclass(frozen=True, slots=True)
class FoundObject:
    """An object the meter has: from its object list, a GET of its logical name, or a
    profile's capture object definition."""

    obis: Obis
    class_id: int
    version: int | None = None
    selectors: tuple[int, ...] = ()  # access selectors of attribute 2, from the object list


@dataclass(frozen=True, slots=True)
class FoundValue:
    """A value object's attribute 2 (its DLMS type tag) and, for a register, scaler_unit."""

    obis: Obis
    class_id: int
    type_tag: int | None  # None: the value could not be read
    scaler: int | None = None
    unit: int | None = None
    problem: str | None = None  # why the value or its scaler_unit is missing


@dataclass(frozen=True, slots=True)
class FoundProfile:
    """A profile generic object's definition as the meter holds it."""

    obis: Obis
    capture_objects: tuple[Column, ...]
    capture_period_s: int | None
    profile_entries: int | None
    entries_in_use: int | None


@dataclass(frozen=True, slots=True)
class FoundClock:
    obis: Obis
    meter_local: datetime  # naive: the wall-clock time the meter sent
    system_utc: datetime  # aware: our time, midway between request and answer
    deviation: int | None  # the deviation field as sent; None: 0x8000 (unspecified)
    time_zone_attribute: int | None  # attribute 3, as sent
    status: int | None


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the meter answered what was tried; None: not tried (or not decidable)."""

    server_max_pdu: int
    list_offered: bool | None = None  # the AARE's conformance offers GET with list
    get_with_list: bool | None = None
    list_with_a_missing_item: bool | None = None  # a list holding a missing item came back whole
    range_access: bool | None = None
    entry_access: bool | None = None
    release: bool | None = None
    hdlc_max_info: int | None = None
    hdlc_window: int | None = None
    # the PDU size the meter took (the smaller of ours and its own), the longest answer APDU it
    # sent, and whether one answer needed blocks (then the longest shows the meter's limit)
    pdu_taken: int | None = None
    largest_answer: int | None = None
    answer_in_blocks: bool | None = None


@dataclass
class Survey:
    source: str  # OBJECT_LIST or PROBED
    objects: dict[Obis, FoundObject] = field(default_factory=dict)
    absent: dict[Obis, str] = field(default_factory=dict)  # probed and not found: why
    values: dict[Obis, FoundValue] = field(default_factory=dict)
    profiles: dict[Obis, FoundProfile] = field(default_factory=dict)
    clock: FoundClock | None = None
    control_mode: int | None = None  # of the disconnect control, when read
    behaviour: Behaviour = field(default_factory=lambda: Behaviour(server_max_pdu=0xFFFF))
    learned: set[str] = field(default_factory=set)  # quirks the session learned
    notes: list[str] = field(default_factory=list)  # what could not be read, and why
    object_list_refusal: str | None = None
