"""From a device profile (YAML) to what the protocol layer reads: the ``ReadSpec``.

``protocol`` knows nothing of the profile schema; this translation lives here so that the
probe, the dispatcher and the benchmarks share it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from headend.profiles import DeviationSemantics, DeviceProfile, Quirks
from headend.protocol.cosem_time import BLUE_BOOK, INVERTED, TimePolicy
from headend.protocol.plan import CaptureSpec, ObjectRead, ProfileRead, ReadSpec
from headend.protocol.target import MeterTarget


def proposed_by(target: MeterTarget, quirks: Quirks) -> MeterTarget:
    """``target`` proposing what a meter of the model takes: a PDU no larger than the
    model's (nor than the target's), the model's HDLC information field and window, and the
    overrun of the PDU the model is known for. Collection, probe and the live profile check
    propose the same."""
    return replace(
        target,
        max_pdu=min(target.max_pdu, quirks.max_pdu_size),
        pdu_tolerance=quirks.oversized_pdu_tolerance,
        hdlc_max_info=quirks.hdlc_max_info_field,
        hdlc_window=quirks.hdlc_window,
    )


def _profile_read(spec: Any) -> ProfileRead:
    return ProfileRead(
        obis=spec.obis,
        capture_objects=tuple(
            CaptureSpec(c.class_id, c.obis, c.attribute, c.data_index) for c in spec.capture_objects
        ),
        capture_period_s=spec.capture_period_s,
    )


def read_spec_from_profile(profile: DeviceProfile) -> ReadSpec:
    """The protocol layer's view of a device profile: what to read and the model's quirks."""
    convention = (
        INVERTED if profile.clock.deviation is DeviationSemantics.MINUTES_FROM_UTC else BLUE_BOOK
    )
    registers = []
    for obis in profile.reads.registers:
        obj = profile.object_by_obis(obis)
        registers.append(ObjectRead(obis, obj.class_id if obj is not None else 3))
    serial = next((o.obis for o in profile.objects if o.quantity.value == "serial_number"), None)
    firmware = next((o.obis for o in profile.objects if o.quantity.value == "firmware"), None)
    events = []
    for obis in profile.reads.events:
        if profile.event_log is not None and profile.event_log.obis == obis:
            events.append(_profile_read(profile.event_log))
    quirks = profile.quirks
    return ReadSpec(
        clock=profile.reads.clock,
        serial_number=serial,
        firmware=firmware,
        registers=tuple(registers),
        load_profile=_profile_read(profile.load_profile),
        billing_profile=_profile_read(profile.billing_profile) if profile.billing_profile else None,
        event_logs=tuple(events),
        time=TimePolicy(unspecified_zone=profile.clock.time_zone, deviation_convention=convention),
        supports_release=quirks.supports_release,
        supports_range_access=quirks.supports_range_access,
        supports_entry_access=quirks.supports_entry_access,
        supports_get_with_list=quirks.supports_get_with_list,
        model=profile.name,
    )
