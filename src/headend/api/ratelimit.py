"""On-demand reads per meter, limited so that one stuck caller cannot flood a bus."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class MeterRateLimit:
    """At most ``limit`` requests per meter in any ``window_s`` seconds (a sliding window)."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, meter_id: str) -> float | None:
        """Count a request; None if it is allowed, else the seconds until one will be."""
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(meter_id, deque())
            while seen and seen[0] <= now - self.window_s:
                seen.popleft()
            if len(seen) >= self.limit:
                return seen[0] + self.window_s - now
            seen.append(now)
            if len(self._seen) > 100_000:  # forget meters with nothing in the window
                for key in [k for k, v in self._seen.items() if not v]:
                    del self._seen[key]
            return None
