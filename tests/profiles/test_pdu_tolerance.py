"""The ``oversized_pdu_tolerance`` a draft writes from what a survey saw of the answers'
length against the PDU the meter took."""

from __future__ import annotations

from headend.domain.survey import Behaviour
from headend.profiles.tolerance import pdu_tolerance


def test_an_answer_past_the_pdu_is_written_as_the_tolerance_with_what_was_seen() -> None:
    seen = Behaviour(server_max_pdu=512, pdu_taken=512, largest_answer=576, answer_in_blocks=True)
    tolerance, said = pdu_tolerance(seen)
    assert tolerance == 64
    assert said.startswith("found: the meter's answers run 64 bytes past the 512-byte PDU")
    assert "(its longest was 576 bytes)" in said


def test_blocks_that_keep_to_the_pdu_give_no_tolerance_and_say_it_was_seen() -> None:
    seen = Behaviour(server_max_pdu=512, pdu_taken=512, largest_answer=512, answer_in_blocks=True)
    assert pdu_tolerance(seen) == (
        0,
        "found: the meter keeps to the 512-byte PDU it took (its longest answer, in blocks, "
        "was 512 bytes)",
    )


def test_answers_that_never_needed_blocks_give_no_tolerance_and_say_nothing_was_seen() -> None:
    seen = Behaviour(server_max_pdu=512, pdu_taken=512, largest_answer=300, answer_in_blocks=False)
    tolerance, said = pdu_tolerance(seen)
    assert tolerance == 0
    assert said.startswith("guessed: no answer needed blocks (the longest was 300 bytes of 512)")


def test_an_unmeasured_survey_gives_no_tolerance_and_says_so() -> None:
    assert pdu_tolerance(Behaviour(server_max_pdu=512)) == (
        0,
        "guessed: the answers' length against the PDU was not measured",
    )
