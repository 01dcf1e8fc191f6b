"""Prometheus metrics: sessions, outcomes by category (internal errors apart), queue depth,
API latency.

Each app has its own registry, so several apps (tests) never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headend.api.context import ApiContext
from headend.domain.enums import FailureCategory

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Collection(Collector):
    """What the collection side reports, read when Prometheus scrapes."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context

    def collect(self) -> Iterator[Any]:
        runtime = self.context.runtime
        sessions = GaugeMetricFamily("headend_sessions_in_flight", "Meter sessions open now")
        sessions.add_metric([], runtime.sessions_in_flight())
        yield sessions
        outcomes = CounterMetricFamily(
            "headend_sessions", "Meter sessions ended, by outcome", labels=["outcome"]
        )
        ended = runtime.outcomes()
        for outcome, count in sorted(ended.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        internal = CounterMetricFamily(
            "headend_internal_errors",
            "Meter sessions that ended on a bug of headend's (category internal)",
        )
        internal.add_metric([], ended.get(str(FailureCategory.INTERNAL), 0))
        yield internal
        queue = GaugeMetricFamily(
            "headend_read_jobs", "Read jobs not yet ended, by state", labels=["state"]
        )
        try:
            depth = self.context.jobs.queue_depth()
        except Exception:  # the store is down: say so through the health check, not here
            depth = {}
        for state, count in sorted(depth.items()):
            queue.add_metric([str(state)], count)
        yield queue
        up = GaugeMetricFamily("headend_scheduler_running", "1 when read plans are scheduled")
        up.add_metric([], 1.0 if runtime.scheduler_running() else 0.0)
        yield up


def make_registry(context: ApiContext) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    latency = Histogram(
        "headend_api_request_seconds",
        "API request latency, by route template and status",
        ["method", "route", "status"],
        registry=registry,
        buckets=BUCKETS,
    )
    registry.register(_Collection(context))
    return registry, latency


class LatencyMiddleware:
    """Times each HTTP request up to its first response byte, labelled by route template."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("route")
                self.latency.labels(
                    scope["method"], getattr(route, "path", "unmatched"), str(status)
                ).observe(time.perf_counter() - began)
            await send(message)

        await self.app(scope, receive, sending)
