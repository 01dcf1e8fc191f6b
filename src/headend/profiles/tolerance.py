"""The ``oversized_pdu_tolerance`` a survey's measurement of the meter's answers calls for.

A survey notes the PDU size the meter took, the longest answer APDU it sent and whether an
answer needed blocks (``headend.protocol.overrun``). An answer longer than the PDU says by how
much the meter runs past it; blocks that keep to it say it does not. When no answer needed
blocks nothing was seen, and the draft says so.
"""

from __future__ import annotations

from headend.domain.survey import Behaviour

MAX_TOLERANCE = 65535  # the profile's bound


def pdu_tolerance(b: Behaviour) -> tuple[int, str]:
    """The tolerance to write, and the comment saying what was seen."""
    taken, longest = b.pdu_taken, b.largest_answer
    if taken is None or longest is None:
        return 0, "guessed: the answers' length against the PDU was not measured"
    if longest > taken:
        over = min(MAX_TOLERANCE, longest - taken)
        return over, (
            f"found: the meter's answers run {over} bytes past the {taken}-byte PDU it took "
            f"(its longest was {longest} bytes); without this, headend refuses them as "
            "malformed_frame"
        )
    if b.answer_in_blocks:
        return 0, (
            f"found: the meter keeps to the {taken}-byte PDU it took (its longest answer, in "
            f"blocks, was {longest} bytes)"
        )
    return 0, (
        f"guessed: no answer needed blocks (the longest was {longest} bytes of {taken}); "
        "whether the meter runs past its PDU was not seen"
    )
