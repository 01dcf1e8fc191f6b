"""The circuit breaker per gateway, on an injected clock: the times are given, never waited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from headend.scheduling.breaker import CircuitBreaker

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAUSE = timedelta(minutes=5)
GATEWAY = 7


def tripped(threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold=threshold, pause=PAUSE)
    for _ in range(threshold):
        breaker.record_failure(GATEWAY, NOW)
    return breaker


def test_a_gateway_never_seen_is_allowed() -> None:
    assert CircuitBreaker().allows(GATEWAY, NOW)


def test_failures_below_the_threshold_leave_the_gateway_allowed() -> None:
    breaker = CircuitBreaker(threshold=3, pause=PAUSE)
    assert [breaker.record_failure(GATEWAY, NOW) for _ in range(2)] == [False, False]
    assert breaker.allows(GATEWAY, NOW)
    assert breaker.paused(NOW) == {}


def test_the_failure_that_reaches_the_threshold_opens_the_breaker_for_its_pause() -> None:
    breaker = CircuitBreaker(threshold=3, pause=PAUSE)
    assert [breaker.record_failure(GATEWAY, NOW) for _ in range(3)] == [False, False, True]
    assert not breaker.allows(GATEWAY, NOW)
    assert not breaker.allows(GATEWAY, NOW + PAUSE - timedelta(seconds=1))
    assert breaker.paused(NOW) == {GATEWAY: NOW + PAUSE}
    assert breaker.gateways[GATEWAY].trips == 1


def test_an_open_breaker_holds_back_only_its_own_gateway() -> None:
    breaker = tripped()
    assert breaker.allows(GATEWAY + 1, NOW)


def test_after_its_pause_the_breaker_is_half_open_and_lets_a_probe_through() -> None:
    breaker = tripped()
    later = NOW + PAUSE
    assert breaker.allows(GATEWAY, later)
    assert breaker.paused(later) == {}


def test_a_failed_probe_opens_the_breaker_again_at_once() -> None:
    breaker = tripped()
    later = NOW + PAUSE
    assert breaker.record_failure(GATEWAY, later) is True
    assert not breaker.allows(GATEWAY, later)
    assert breaker.paused(later) == {GATEWAY: later + PAUSE}
    assert breaker.gateways[GATEWAY].trips == 2


def test_a_successful_probe_closes_the_breaker_and_forgets_the_failures() -> None:
    breaker = tripped(threshold=3)
    later = NOW + PAUSE
    breaker.record_success(GATEWAY)
    assert breaker.allows(GATEWAY, later)
    assert GATEWAY not in breaker.gateways
    assert [breaker.record_failure(GATEWAY, later) for _ in range(3)] == [False, False, True]


def test_a_success_before_the_threshold_starts_the_count_again() -> None:
    breaker = CircuitBreaker(threshold=3, pause=PAUSE)
    breaker.record_failure(GATEWAY, NOW)
    breaker.record_failure(GATEWAY, NOW)
    breaker.record_success(GATEWAY)
    assert [breaker.record_failure(GATEWAY, NOW) for _ in range(3)] == [False, False, True]
