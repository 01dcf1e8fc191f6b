"""The read job's transition table and the retry policy by failure category."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from headend.domain.enums import FailureCategory, JobState
from headend.domain.jobs import (
    RETRY_RULES,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    JobEvent,
    next_state,
    retry_at,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# every transition a job may take, written out here rather than read from the table
LISTED = [
    (JobState.QUEUED, JobEvent.START, JobState.RUNNING),
    (JobState.QUEUED, JobEvent.CANCEL, JobState.CANCELLED),
    (JobState.RUNNING, JobEvent.SUCCEED, JobState.SUCCEEDED),
    (JobState.RUNNING, JobEvent.FAIL, JobState.FAILED),
    (JobState.RUNNING, JobEvent.RETRY, JobState.RETRY_WAIT),
    (JobState.RUNNING, JobEvent.REQUEUE, JobState.QUEUED),
    (JobState.RETRY_WAIT, JobEvent.DUE, JobState.QUEUED),
    (JobState.RETRY_WAIT, JobEvent.START, JobState.RUNNING),
    (JobState.RETRY_WAIT, JobEvent.CANCEL, JobState.CANCELLED),
    (JobState.RETRY_WAIT, JobEvent.FAIL, JobState.FAILED),
]
UNLISTED = [
    (state, event)
    for state in JobState
    for event in JobEvent
    if (state, event) not in {(s, e) for s, e, _ in LISTED}
]


@pytest.mark.parametrize(("state", "event", "target"), LISTED)
def test_each_listed_event_moves_a_job_to_its_next_state(
    state: JobState, event: JobEvent, target: JobState
) -> None:
    assert next_state(state, event) is target


def test_the_table_lists_exactly_these_transitions() -> None:
    table = [(s, e, t) for s, events in TRANSITIONS.items() for e, t in events.items()]
    assert sorted(table) == sorted(LISTED)


def test_succeeded_failed_and_cancelled_are_the_final_states() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL


@pytest.mark.parametrize(("state", "event"), UNLISTED)
def test_an_unlisted_event_raises_and_leaves_the_state_as_it_was(
    state: JobState, event: JobEvent
) -> None:
    current = state
    with pytest.raises(IllegalTransition) as info:
        current = next_state(current, event)
    assert current is state
    assert (info.value.state, info.value.event) == (state, event)
    assert f"cannot take '{event}'" in str(info.value)


def test_a_final_state_says_it_allows_no_event() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed: none \(final state\)"):
        next_state(JobState.SUCCEEDED, JobEvent.START)


# --- retry_at ---------------------------------------------------------------------------------

RETRIED = [c for c, rule in RETRY_RULES.items() if rule.retry]
NOT_RETRIED = [c for c, rule in RETRY_RULES.items() if not rule.retry]


def test_every_failure_category_has_a_retry_rule() -> None:
    assert set(RETRY_RULES) == set(FailureCategory)


def test_a_landing_the_store_refused_is_retried() -> None:
    assert RETRY_RULES[FailureCategory.STORE_REFUSED].retry


def test_our_faults_and_refusals_are_never_retried() -> None:
    assert set(NOT_RETRIED) == {
        FailureCategory.AUTHENTICATION_FAILED,
        FailureCategory.OBJECT_UNAVAILABLE,
        FailureCategory.ACCESS_DENIED,
        FailureCategory.CONFIGURATION,
        FailureCategory.INTERNAL,
    }


@pytest.mark.parametrize("category", NOT_RETRIED)
def test_a_category_without_retry_gives_up_after_the_first_failure(
    category: FailureCategory,
) -> None:
    assert retry_at(category, 1, NOW, None, jitter=0.0) is None


@pytest.mark.parametrize("category", RETRIED)
def test_without_jitter_the_delay_doubles_with_each_attempt_from_the_base_delay(
    category: FailureCategory,
) -> None:
    rule = RETRY_RULES[category]
    for attempts in range(1, rule.max_attempts):
        when = retry_at(category, attempts, NOW, None, jitter=0.0)
        assert when == NOW + timedelta(seconds=rule.base_delay_s * 2 ** (attempts - 1))


@pytest.mark.parametrize("category", RETRIED)
def test_jitter_adds_at_most_half_the_delay_again(category: FailureCategory) -> None:
    rule = RETRY_RULES[category]
    jitters = random.Random(20260301)
    for attempts in range(1, rule.max_attempts):
        delay = rule.base_delay_s * 2 ** (attempts - 1)
        for _ in range(50):
            when = retry_at(category, attempts, NOW, None, jitter=jitters.random())
            assert when is not None
            assert delay <= (when - NOW).total_seconds() < 1.5 * delay


@pytest.mark.parametrize("category", RETRIED)
def test_a_category_gives_up_once_its_attempts_are_spent(category: FailureCategory) -> None:
    rule = RETRY_RULES[category]
    assert retry_at(category, rule.max_attempts - 1, NOW, None, jitter=0.5) is not None
    assert retry_at(category, rule.max_attempts, NOW, None, jitter=0.5) is None


def test_the_delay_scale_multiplies_the_delay() -> None:
    base = RETRY_RULES[FailureCategory.RESPONSE_TIMEOUT].base_delay_s
    when = retry_at(FailureCategory.RESPONSE_TIMEOUT, 2, NOW, None, jitter=0.0, delay_scale=0.1)
    assert when == NOW + timedelta(seconds=base * 2 * 0.1)


def test_no_retry_is_planned_at_or_after_the_deadline() -> None:
    base = RETRY_RULES[FailureCategory.UNREACHABLE].base_delay_s
    due = NOW + timedelta(seconds=base)
    category = FailureCategory.UNREACHABLE
    assert retry_at(category, 1, NOW, due + timedelta(seconds=1), jitter=0.0) == due
    assert retry_at(category, 1, NOW, due, jitter=0.0) is None
