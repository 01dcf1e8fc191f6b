"""Whether a meter keeps to the PDU size it took, and by how many bytes it runs past it.

A session refuses an answer longer than the PDU it proposed (plus the device profile's
``oversized_pdu_tolerance``) as a malformed frame. Some firmware counts the PDU size without
its own headers and runs past it. A discovery session therefore accepts answers up to
``DISCOVERY_TOLERANCE`` bytes past the PDU, and afterwards compares the longest answer APDU
the meter sent with the PDU it took (the smaller of ours and the one in its AARE). That
comparison says something only when an answer was long enough to need blocks: a meter fills
its blocks to the limit it really keeps. When nothing read so far needed blocks,
``fill_a_pdu`` reads something long: the load profile's last entries, by entry or range
access as the meter allows, else the whole buffer of the smallest profile.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from headend.domain.survey import FoundProfile, Survey
from headend.protocol.cosem_time import TimePolicy
from headend.protocol.errors import DataAccessError, DecodeError
from headend.protocol.plan import CLOCK_CLASS, PROFILE_GENERIC_CLASS
from headend.protocol.session import MeterSession
from headend.protocol.xdlms import AttributeRef, entry_access, range_access

# bytes past our PDU a discovery session takes, to see by how much a meter runs over; an
# answer longer still is refused as a malformed frame, as at collection
DISCOVERY_TOLERANCE = 1024
MAX_FILL_BYTES = 1024 * 1024  # one read made to fill a PDU gathers at most this


def pdu_taken(session: MeterSession) -> int:
    """The PDU size the meter took: the smaller of ours and its own."""
    return min(session.target.max_pdu, session.association.server_max_pdu)


def _rows_for(pdu: int) -> int:
    """Entries enough that rows of 16 bytes (a date-time and a value) fill two PDUs."""
    return max(2, pdu // 8)


def _long_reads(out: Survey, pdu: int) -> list[tuple[str, AttributeRef, bytes | None]]:
    """Reads likely to need blocks, most economical first."""
    b = out.behaviour
    reads: list[tuple[str, AttributeRef, bytes | None]] = []
    load = _load_profile(out)
    if load is not None:
        ref = AttributeRef(PROFILE_GENERIC_CLASS, load.obis, 2)
        rows = _rows_for(pdu)
        last = load.entries_in_use or rows
        if b.entry_access:
            first = max(1, last - rows + 1)
            reads.append(("its last entries", ref, entry_access(first, last)))
        clock = next((c for c in load.capture_objects if c.class_id == CLOCK_CLASS), None)
        if b.range_access and clock is not None and out.clock is not None:
            now = out.clock.system_utc
            span = timedelta(seconds=(load.capture_period_s or 900) * rows)
            restricting = AttributeRef(clock.class_id, clock.obis, clock.attribute)
            sent = out.clock.deviation
            east = TimePolicy().east_minutes(sent) if sent is not None else None
            access = range_access(restricting, now - span, now, TimePolicy(), east_minutes=east)
            reads.append(("its entries of a time range", ref, access))
    smallest = sorted(
        (p for p in out.profiles.values() if p.entries_in_use),
        key=lambda p: (p.entries_in_use or 0) * max(1, len(p.capture_objects)),
    )
    for profile in smallest[:1]:
        whole = AttributeRef(PROFILE_GENERIC_CLASS, profile.obis, 2)
        reads.append(("its whole buffer", whole, None))
    return reads


def _load_profile(out: Survey) -> FoundProfile | None:
    periodic = [p for p in out.profiles.values() if p.capture_period_s and p.entries_in_use]
    periodic.sort(key=lambda p: (str(p.obis) != "1.0.99.1.0.255", str(p.obis)))
    return periodic[0] if periodic else None


async def fill_a_pdu(session: MeterSession, out: Survey) -> None:
    """Read something long when nothing read so far needed blocks (see the module)."""
    if session.block_transfers or session.largest_answer > pdu_taken(session):
        return
    for what, ref, access in _long_reads(out, pdu_taken(session)):
        try:
            with session.expecting(MAX_FILL_BYTES):
                await session.get(ref, access)
        except (DataAccessError, DecodeError) as exc:
            out.notes.append(f"{ref.obis} by {what}, read to fill a PDU: {exc}")
            continue
        if session.block_transfers:
            return


def measure(session: MeterSession, out: Survey) -> None:
    """Note in ``out.behaviour`` the PDU taken and the longest answer the meter sent."""
    out.behaviour = replace(
        out.behaviour,
        pdu_taken=pdu_taken(session),
        largest_answer=session.largest_answer,
        answer_in_blocks=session.block_transfers > 0,
    )
