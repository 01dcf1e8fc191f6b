"""The lifecycle of a read job as a transition table, and the retry policy by failure category.

::

                            ┌─────requeue──────┐
                            ▼  (after restart) │
      cancelled ◄─cancel─ queued ──start──► running ──succeed──► succeeded
          ▲                 ▲                │ ▲ │
          │                 │          retry │ │ └──fail──► failed
          │                 │                ▼ │ start        ▲
          │                 └─────due──── retry_wait ──fail───┘
          │                                  │
          └──────────────cancel──────────────┘

An event not listed for a state raises ``IllegalTransition`` and leaves the state as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from headend.domain.enums import FailureCategory, JobState


class JobEvent(StrEnum):
    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETRY = "retry"
    DUE = "due"
    REQUEUE = "requeue"  # a job found running after a restart goes back to the queue
    CANCEL = "cancel"


TRANSITIONS: dict[JobState, dict[JobEvent, JobState]] = {
    JobState.QUEUED: {JobEvent.START: JobState.RUNNING, JobEvent.CANCEL: JobState.CANCELLED},
    JobState.RUNNING: {
        JobEvent.SUCCEED: JobState.SUCCEEDED,
        JobEvent.FAIL: JobState.FAILED,
        JobEvent.RETRY: JobState.RETRY_WAIT,
        JobEvent.REQUEUE: JobState.QUEUED,
    },
    JobState.RETRY_WAIT: {
        JobEvent.DUE: JobState.QUEUED,
        JobEvent.START: JobState.RUNNING,
        JobEvent.CANCEL: JobState.CANCELLED,
        JobEvent.FAIL: JobState.FAILED,
    },
    JobState.SUCCEEDED: {},
    JobState.FAILED: {},
    JobState.CANCELLED: {},
}

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.RETRY_WAIT)  # not yet ended
TERMINAL = frozenset(state for state, events in TRANSITIONS.items() if not events)


class IllegalTransition(Exception):
    def __init__(self, state: JobState, event: JobEvent) -> None:
        allowed = ", ".join(TRANSITIONS[state]) or "none (final state)"
        super().__init__(f"a {state} job cannot take '{event}'; allowed: {allowed}")
        self.state, self.event = state, event


def next_state(state: JobState, event: JobEvent) -> JobState:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None


@dataclass(frozen=True)
class RetryRule:
    retry: bool
    base_delay_s: float = 30.0
    max_attempts: int = 5
    counts_against_gateway: bool = False  # feeds the gateway's circuit breaker


# What to do after each kind of failure. Link-level failures back off and count against the
# gateway; a meter that refuses our credentials is not hammered; our own faults (the registry's,
# a profile's or a bug of ours) never retry; a landing the store refused is tried again.
# This is the only table of retry rules: nothing else decides whether a failed read is retried.
RETRY_RULES: dict[FailureCategory, RetryRule] = {
    FailureCategory.UNREACHABLE: RetryRule(True, 60, 5, counts_against_gateway=True),
    FailureCategory.CONNECT_TIMEOUT: RetryRule(True, 60, 5, counts_against_gateway=True),
    FailureCategory.LINK_SETUP_FAILED: RetryRule(True, 30, 4),
    FailureCategory.RESPONSE_TIMEOUT: RetryRule(True, 30, 4),
    FailureCategory.MALFORMED_FRAME: RetryRule(True, 15, 4),
    FailureCategory.SESSION_DROPPED: RetryRule(True, 15, 4),
    FailureCategory.DECODE_ERROR: RetryRule(True, 60, 2),
    FailureCategory.ASSOCIATION_REJECTED: RetryRule(True, 300, 2),
    FailureCategory.INVOCATION_COUNTER: RetryRule(True, 60, 2),
    FailureCategory.AUTHENTICATION_FAILED: RetryRule(False),
    FailureCategory.OBJECT_UNAVAILABLE: RetryRule(False),
    FailureCategory.ACCESS_DENIED: RetryRule(False),
    FailureCategory.CONFIGURATION: RetryRule(False),
    FailureCategory.INTERNAL: RetryRule(False),
    FailureCategory.STORE_REFUSED: RetryRule(True, 60, 5),
}


def retry_at(
    category: FailureCategory,
    attempts: int,
    now: datetime,
    deadline: datetime | None,
    jitter: float,
    delay_scale: float = 1.0,
) -> datetime | None:
    """When to try again after ``attempts`` failed tries, or None to give up.

    The delay doubles with each attempt; ``jitter`` in [0, 1) spreads retries of many meters
    over up to half the delay again, so a gateway that comes back is not hit by all at once.
    """
    rule = RETRY_RULES[category]
    if not rule.retry or attempts >= rule.max_attempts:
        return None
    delay = rule.base_delay_s * delay_scale * (2 ** (attempts - 1)) * (1 + 0.5 * jitter)
    when = now + timedelta(seconds=delay)
    if deadline is not None and when >= deadline:
        return None
    return when
