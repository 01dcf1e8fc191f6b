"""The on-demand read limit per meter, on an injected clock: the times are given, never waited."""

from __future__ import annotations

from headend.api.ratelimit import MeterRateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit(clock: Clock) -> MeterRateLimit:
    return MeterRateLimit(limit=3, window_s=60.0, clock=clock)


def test_a_burst_up_to_the_limit_is_allowed() -> None:
    limiter = limit(Clock())
    assert [limiter.take("m1") for _ in range(3)] == [None, None, None]


def test_the_request_past_the_limit_is_refused_with_the_seconds_to_wait() -> None:
    clock = Clock()
    limiter = limit(clock)
    limiter.take("m1")
    clock.now += 10
    limiter.take("m1")
    limiter.take("m1")
    clock.now += 5
    assert limiter.take("m1") == 45.0  # the first request leaves the window in 45 s
    assert limiter.take("m1") == 45.0  # a refused request does not count


def test_each_meter_has_its_own_limit() -> None:
    limiter = limit(Clock())
    for _ in range(3):
        limiter.take("m1")
    assert limiter.take("m1") is not None
    assert limiter.take("m2") is None


def test_a_request_is_allowed_again_once_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    limiter = limit(clock)
    limiter.take("m1")
    clock.now += 10
    limiter.take("m1")
    limiter.take("m1")
    clock.now += 49.5
    assert limiter.take("m1") is not None
    clock.now += 0.5  # 60 s after the first request
    assert limiter.take("m1") is None
    assert limiter.take("m1") is not None  # the two at +10 s are still in the window


def test_after_a_quiet_window_the_whole_burst_is_allowed_again() -> None:
    clock = Clock()
    limiter = limit(clock)
    for _ in range(3):
        limiter.take("m1")
    clock.now += 60
    assert [limiter.take("m1") for _ in range(3)] == [None, None, None]
    assert limiter.take("m1") == 60.0
