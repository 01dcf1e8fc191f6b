"""A circuit breaker per gateway: a gateway that keeps failing is left alone for a while."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class GatewayState:
    consecutive_failures: int = 0
    paused_until: datetime | None = None
    trips: int = 0


@dataclass
class CircuitBreaker:
    threshold: int = 5  # consecutive link failures that pause a gateway
    pause: timedelta = timedelta(minutes=5)
    gateways: dict[int, GatewayState] = field(default_factory=dict)

    def allows(self, gateway_id: int, now: datetime) -> bool:
        state = self.gateways.get(gateway_id)
        return state is None or state.paused_until is None or now >= state.paused_until

    def record_success(self, gateway_id: int) -> None:
        self.gateways.pop(gateway_id, None)

    def record_failure(self, gateway_id: int, now: datetime) -> bool:
        """Count a link failure; True when this one pauses the gateway."""
        state = self.gateways.setdefault(gateway_id, GatewayState())
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.threshold:
            # after a pause one probe goes through; if it fails too, pause again at once
            state.consecutive_failures = self.threshold - 1
            state.paused_until = now + self.pause
            state.trips += 1
            return True
        return False

    def paused(self, now: datetime) -> dict[int, datetime]:
        return {
            gid: s.paused_until
            for gid, s in self.gateways.items()
            if s.paused_until is not None and s.paused_until > now
        }
