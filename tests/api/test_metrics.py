"""What the collection side shows to Prometheus."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import generate_latest

from headend.api.metrics import make_registry


def test_sessions_that_ended_on_a_bug_of_ours_have_a_counter_of_their_own() -> None:
    runtime = SimpleNamespace(
        sessions_in_flight=lambda: 0,
        outcomes=lambda: {"succeeded": 7, "internal": 2, "response_timeout": 1},
        scheduler_running=lambda: True,
    )
    jobs = SimpleNamespace(queue_depth=lambda: {})
    context: Any = SimpleNamespace(runtime=runtime, jobs=jobs)
    registry, _ = make_registry(context)
    text = generate_latest(registry).decode()
    assert "headend_internal_errors_total 2.0" in text
    assert 'headend_sessions_total{outcome="internal"} 2.0' in text
