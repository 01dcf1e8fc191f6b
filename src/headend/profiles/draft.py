"""A device profile drafted from a survey of a meter (``headend.domain.survey``).

``draft_profile`` classifies what the meter has (``classify``), takes each register's scaler
and unit, each profile's capture objects, period and capacity, the clock's deviation and the
quirks the survey tried, and keeps, section by section, a note of what was found on the meter
and what was guessed. ``headend.profiles.writer`` writes the draft as YAML with those notes as
comments. A meter whose load profile cannot be described refuses the draft (``DraftError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from headend.domain.obis import Obis
from headend.domain.survey import PROBED, FoundProfile, Survey
from headend.profiles.classify import QUANTITY_ORDER, Kind, Role, classify
from headend.profiles.model import Quantity
from headend.profiles.tolerance import pdu_tolerance
from headend.profiles.zones import ClockGuess, guess_clock

# DLMS type tags -> value_type
_VALUE_TYPES = {
    17: "unsigned",
    18: "long_unsigned",
    6: "double_long_unsigned",
    21: "long64_unsigned",
    9: "octet_string",
    10: "visible_string",
}
_DEFAULT_TARIFFS = {"T1": "normal", "T2": "peak", "T3": "off_peak"}
_STATUS_BITS = {
    0: "critical_error",
    1: "clock_invalid",
    2: "data_not_valid",
    3: "dst_active",
    5: "clock_adjusted",
    7: "power_fail",
}
_WH = 30


class DraftError(ValueError):
    """The meter cannot be described by a device profile; ``category`` is the failure's."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


@dataclass
class Draft:
    """A profile document (keys in the order written) and notes by section."""

    doc: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    item_notes: dict[tuple[str, int], str] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def _kinds(survey: Survey) -> dict[Obis, tuple[Kind, int]]:
    found: dict[Obis, tuple[Kind, int]] = {}
    for obj in survey.objects.values():
        kind = classify(obj.obis, obj.class_id)
        if kind is not None and (kind.role not in _PROFILE_ROLES or obj.obis in survey.profiles):
            found[obj.obis] = (kind, obj.class_id)
    return found


def _object(
    draft: Draft, survey: Survey, obis: Obis, kind: Kind, class_id: int
) -> dict[str, Any] | None:
    value = survey.values.get(obis)
    entry: dict[str, Any] = {"name": kind.name, "obis": str(obis), "class_id": class_id}
    assert kind.quantity is not None
    entry["quantity"] = kind.quantity.value
    said: list[str] = []
    if class_id != 1:
        if value is None or value.scaler is None or value.unit is None:
            why = value.problem if value is not None else "not read"
            draft.note("objects", f"{obis} ({kind.quantity.value}) left out: {why}")
            return None
        scaler = max(-9, min(9, value.scaler))
        if scaler != value.scaler:
            said.append(f"the meter's scaler {value.scaler} is outside -9..9")
        unit = value.unit if 1 <= value.unit <= 255 else 255
        entry.update(scaler=scaler, unit=unit)
    if kind.tariff is not None:
        entry["tariff"] = kind.tariff
    tag = value.type_tag if value is not None else None
    vtype = _VALUE_TYPES.get(tag) if tag is not None else None
    strings = ("octet_string", "visible_string")
    if kind.quantity in (Quantity.SERIAL_NUMBER, Quantity.FIRMWARE):
        if vtype not in strings:
            said.append(f"value_type guessed: the meter sends DLMS type {tag}")
            vtype = "octet_string"
        entry["value_type"] = vtype
    elif vtype is not None and vtype not in strings:
        entry["value_type"] = vtype
    elif tag is not None:
        said.append(f"the meter sends DLMS type {tag}; value_type left to its default")
    draft.item_notes[("objects", len(draft.doc["objects"]))] = "; ".join(said)
    return entry


def _objects(draft: Draft, survey: Survey, kinds: dict[Obis, tuple[Kind, int]]) -> None:
    draft.doc["objects"] = []
    values = [(o, k, c) for o, (k, c) in kinds.items() if k.role is Role.VALUE]
    values.sort(
        key=lambda item: (QUANTITY_ORDER.index(item[1].quantity or Quantity.IMPORT), item[0])
    )
    seen: set[Quantity] = set()
    for obis, kind, class_id in values:
        assert kind.quantity is not None
        if kind.quantity in seen:
            draft.note("objects", f"{obis} left out: a second {kind.quantity.value} object")
            continue
        entry = _object(draft, survey, obis, kind, class_id)
        if entry is not None:
            seen.add(kind.quantity)
            draft.doc["objects"].append(entry)
    draft.note(
        "objects",
        "found on the meter: each object with its class; scaler and unit from its "
        "scaler_unit; value_type from the type the meter sends (used by the simulator only)",
    )
    if not any(o["quantity"] == "A+" for o in draft.doc["objects"]):
        raise DraftError(
            "object_unavailable", "the meter has no active import register (1.0.1.8.0.255)"
        )


def _capture_period(found: FoundProfile, periodic: bool, draft: Draft, section: str) -> int:
    period = found.capture_period_s
    if period is None:
        draft.note(section, "capture_period_s guessed: the meter did not send it")
        return 900 if periodic else 0
    return period


def _profile(
    draft: Draft, found: FoundProfile, section: str, declared: dict[Obis, int]
) -> dict[str, Any] | None:
    periodic = section == "load_profile"
    period = _capture_period(found, periodic, draft, section)
    if periodic and (period <= 0 or period % 60 or 86400 % period):
        raise DraftError(
            "configuration",
            f"the load profile {found.obis} captures every {period} s, which a device profile "
            "cannot describe (a multiple of 60 that divides a day)",
        )
    captures = []
    for column in found.capture_objects:
        if declared.get(column.obis) != column.class_id:
            problem = (
                f"{section} {found.obis} captures {column.obis} (class {column.class_id}), "
                "which this draft cannot declare"
            )
            if periodic:
                raise DraftError("configuration", problem)
            draft.note("header", f"{section} left out: {problem}")
            return None
        capture: dict[str, Any] = {"obis": str(column.obis), "class_id": column.class_id}
        if column.attribute != 2:
            capture["attribute"] = column.attribute
        if column.data_index:
            capture["data_index"] = column.data_index
        captures.append(capture)
    entries = found.profile_entries
    if entries is None or not 1 <= entries <= 100_000:
        draft.note(section, f"profile_entries guessed: the meter sent {entries}")
        entries = max(1, min(100_000, entries or found.entries_in_use or 1))
    every = f"captured every {period} s" if period else "captured on events"
    if period:
        every += f", {entries} entries ({timedelta(seconds=period * entries).days} days)"
    else:
        every += f", {entries} entries"
    draft.note(
        section,
        f"found on the meter: {found.obis}, {len(captures)} capture objects, {every}; "
        f"{found.entries_in_use} in use",
    )
    return {
        "obis": str(found.obis),
        "capture_period_s": period,
        "profile_entries": entries,
        "capture_objects": captures,
    }


def _pick(kinds: dict[Obis, tuple[Kind, int]], role: Role, survey: Survey) -> list[FoundProfile]:
    chosen = [
        survey.profiles[o] for o, (k, _) in kinds.items() if k.role is role and o in survey.profiles
    ]
    chosen.sort(key=lambda p: (p.obis.e != 0, p.obis))
    return chosen


def draft_profile(
    survey: Survey, name: str, *, source: str, discovered_at: str, utility_zone: str
) -> Draft:
    """The draft profile ``name`` of the surveyed meter (``source`` says where it was read)."""
    draft = Draft()
    kinds = _kinds(survey)
    draft.doc["name"] = name
    draft.doc["description"] = f"Discovered from the meter at {source} on {discovered_at}."
    _header(draft, survey, source, discovered_at)
    clock = _clock(draft, survey, utility_zone)
    _objects(draft, survey, kinds)
    a_plus = next(o for o in draft.doc["objects"] if o["quantity"] == "A+")
    resolution = 10 ** a_plus["scaler"] if a_plus["unit"] == _WH and a_plus["scaler"] > 0 else 1
    draft.doc["register_resolution_wh"] = resolution
    draft.note("register_resolution_wh", "from the import register's scaler; the simulator's only")
    _quirks(draft, survey)
    draft.doc["clock"] = clock
    declared: dict[Obis, int] = {Obis.parse(clock["obis"]): 8}
    declared.update({Obis.parse(o["obis"]): o["class_id"] for o in draft.doc["objects"]})
    declared.update({o: 7 for o, (k, _) in kinds.items() if k.role in _PROFILE_ROLES})
    controls = [o for o, (k, _) in kinds.items() if k.role is Role.DISCONNECT_CONTROL]
    declared.update({o: 70 for o in controls})
    load = _pick(kinds, Role.LOAD_PROFILE, survey)
    load = [p for p in load if p.capture_period_s] or load
    if not load:
        raise DraftError("object_unavailable", "the meter has no load profile (1.0.99.1.0.255)")
    for other in load[1:]:
        draft.note("load_profile", f"another load profile on the meter, not read: {other.obis}")
    draft.doc["load_profile"] = _profile(draft, load[0], "load_profile", declared)
    reads: dict[str, Any] = {}
    for role, section in ((Role.BILLING_PROFILE, "billing_profile"), (Role.EVENT_LOG, "event_log")):
        found = _pick(kinds, role, survey)
        spec = _profile(draft, found[0], section, declared) if found else None
        if spec is not None:
            draft.doc[section] = spec
            reads[section] = spec["obis"]
        elif not found:
            draft.note("header", f"no {section.replace('_', ' ')} was found on the meter")
    if controls:
        mode = survey.control_mode
        if mode is None or not 0 <= mode <= 6:
            draft.note("disconnect_control", f"control_mode guessed: the meter sent {mode}")
            mode = 1
        draft.doc["disconnect_control"] = {"obis": str(controls[0]), "control_mode": mode}
        draft.note("disconnect_control", "found on the meter, with its control mode")
    draft.doc["association"] = {"obis": "0.0.40.0.0.255"}
    _tariffs(draft)
    _billing(draft)
    if any(o["quantity"] == "amr_status" for o in draft.doc["objects"]):
        draft.doc["status_bits"] = {"amr_status": dict(_STATUS_BITS)}
        draft.note(
            "status_bits",
            "guessed: the usual meaning of the AMR status bits; write them as the meter's "
            "documentation says (headend decodes with its fixed table)",
        )
    registers = [o["obis"] for o in draft.doc["objects"] if o["class_id"] != 1]
    draft.doc["reads"] = {
        "clock": clock["obis"],
        "registers": registers,
        "load_profile": draft.doc["load_profile"]["obis"],
        **({"billing_profile": reads["billing_profile"]} if "billing_profile" in reads else {}),
        **({"events": [reads["event_log"]]} if "event_log" in reads else {}),
    }
    return draft


_PROFILE_ROLES = (Role.LOAD_PROFILE, Role.BILLING_PROFILE, Role.EVENT_LOG)


def _billing(draft: Draft) -> None:
    """Import is billed; export only where a profile captures its register, since a record
    bills a register by its reads at both ends of the period."""
    quantities = ["A+"]
    export = next((o["obis"] for o in draft.doc["objects"] if o["quantity"] == "A-"), None)
    captured = {
        c["obis"]
        for section in ("load_profile", "billing_profile")
        for c in draft.doc.get(section, {}).get("capture_objects", [])
    }
    if export is not None and export in captured:
        quantities.append("A-")
        draft.note("billing", "export billed: the meter captures its register in a profile")
    elif export is not None:
        draft.note(
            "billing",
            "export not billed: the meter captures its register in no profile, so there is no "
            "read of it at a period's ends; it is still read and reported",
        )
    draft.doc["billing"] = {"quantities": quantities}


def _header(draft: Draft, survey: Survey, source: str, discovered_at: str) -> None:
    draft.note(
        "header", f"Discovered by headend profiles discover from {source} on {discovered_at}."
    )
    if survey.source == PROBED:
        draft.note(
            "header",
            f"The meter refused its object list ({survey.object_list_refusal}); the usual OBIS "
            "codes of a billing meter were tried one by one, so objects it has under other "
            "codes are not here.",
        )
    else:
        draft.note("header", "Objects from the association's object list (0.0.40.0.0.255).")
    for text in survey.notes:
        draft.note("header", f"not read: {text}")
    if survey.learned:
        draft.note("header", f"the session learned: {', '.join(sorted(survey.learned))}")


def _clock(draft: Draft, survey: Survey, utility_zone: str) -> dict[str, Any]:
    if survey.clock is None:
        draft.note("clock", "guessed: no clock was read; deviation and zone are defaults")
        return {"obis": "0.0.1.0.0.255", "time_zone": utility_zone, "deviation": "minutes_to_utc"}
    guess: ClockGuess = guess_clock(survey.clock, utility_zone)
    for line in guess.notes:
        draft.note("clock", line)
    return {"obis": str(survey.clock.obis), "time_zone": guess.zone, "deviation": guess.deviation}


def _quirks(draft: Draft, survey: Survey) -> None:
    b = survey.behaviour
    quirks: dict[str, Any] = {}

    def tried(key: str, value: bool | None, default: bool, what: str, fails: str) -> None:
        quirks[key] = default if value is None else value
        said = f"guessed: {what} not tried" if value is None else f"tried: {what}"
        draft.item_notes[("quirks", len(quirks) - 1)] = said + (
            "" if value in (None, True) else f": {fails}"
        )

    tried("supports_release", b.release, True, "release (RLRQ)", "no well-formed RLRE came back")
    load = next((o for o in survey.objects.values() if o.obis == Obis(1, 0, 99, 1, 0, 255)), None)
    listed = load.selectors if load is not None else ()
    range_default, entry_default = (1 in listed, 2 in listed) if listed else (True, True)
    refused = "refused"
    tried(
        "supports_range_access",
        b.range_access,
        range_default,
        "load profile by time range",
        refused,
    )
    if b.range_access is False and b.entry_access is False:
        refused = "refused; so is range access: collection reads whole buffers"
    tried(
        "supports_entry_access", b.entry_access, entry_default, "load profile by entries", refused
    )
    what = "GET with list of three attributes"
    if b.list_with_a_missing_item is False:
        what += (
            "; a list holding an object the meter lacks came back garbled (headend then "
            "reads item by item)"
        )
    tried("supports_get_with_list", b.get_with_list, True, what, "garbled or refused")
    if b.list_offered is False:
        said = "found: the meter's conformance (in its AARE) offers no GET with list"
        draft.item_notes[("quirks", len(quirks) - 1)] = said
    quirks["max_pdu_size"] = max(64, min(65535, b.server_max_pdu))
    draft.item_notes[("quirks", len(quirks) - 1)] = "found: the meter's max receive PDU in its AARE"
    quirks["oversized_pdu_tolerance"], said = pdu_tolerance(b)
    draft.item_notes[("quirks", len(quirks) - 1)] = said
    if b.hdlc_max_info is not None:
        quirks["hdlc_max_info_field"] = max(32, min(2030, b.hdlc_max_info))
        draft.item_notes[("quirks", len(quirks) - 1)] = "found: negotiated in the UA"
        quirks["hdlc_window"] = max(1, min(7, b.hdlc_window or 1))
        draft.item_notes[("quirks", len(quirks) - 1)] = "found: negotiated in the UA"
    else:
        quirks["hdlc_max_info_field"] = 128
        draft.item_notes[("quirks", len(quirks) - 1)] = "default: discovered over the TCP wrapper"
        quirks["hdlc_window"] = 1
        draft.item_notes[("quirks", len(quirks) - 1)] = "default: discovered over the TCP wrapper"
    draft.doc["quirks"] = quirks


def _tariffs(draft: Draft) -> None:
    found = [o["tariff"] for o in draft.doc["objects"] if "tariff" in o]
    if not found:
        return
    draft.doc["tariffs"] = {
        "calendar": "evn_tou_2014",
        "registers": {t: _DEFAULT_TARIFFS[t] for t in sorted(found)},
    }
    draft.note(
        "tariffs",
        "guessed: the periods of the tariff registers cannot be read here; T1 normal, T2 peak, "
        "T3 off-peak on the EVN calendar as the shipped profiles; check the meter's activity "
        "calendar",
    )
