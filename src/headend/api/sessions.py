"""Browser sessions of the dashboard: an opaque random token in a cookie, the rest here.

A person logs in with an API key; the key is checked once (``KeyService.authenticate``) and
never stored: the session keeps the key's *prefix* (its public id, shown in key listings),
name and role, and each request looks the key up by prefix again, so a revoked key ends its
sessions at once. The cookie holds 32 random bytes and nothing else, so a stolen cookie does
not reveal the key; the server keeps only a SHA-256 of the token, so this table does not
reveal live cookies either. Sessions end after ``idle_s`` without a request, after ``max_s``
in all, at logout, or when the process restarts (people then log in again).

Each session has its own CSRF token, which every form that changes data carries, and which
the page script sends as ``X-CSRF-Token`` when it calls the JSON API with the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from headend.domain.enums import Role

COOKIE = "headend_session"
LOGIN_CSRF_COOKIE = "headend_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebSession:
    key_prefix: str
    name: str
    role: Role
    csrf: str
    opened_at: float
    seen_at: float

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf, token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Sessions of one process, by the digest of their token."""

    def __init__(
        self,
        idle_s: float = 8 * 3600.0,
        max_s: float = 24 * 3600.0,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_s, self.max_s, self.limit, self.clock = idle_s, max_s, limit, clock
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def open(self, key_prefix: str, name: str, role: Role) -> tuple[str, WebSession]:
        """A new session; returns the token for the cookie (shown this once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = WebSession(key_prefix, name, role, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sweep(now)
            if len(self._sessions) >= self.limit:  # drop the longest idle one
                oldest = min(self._sessions, key=lambda k: self._sessions[k].seen_at)
                del self._sessions[oldest]
            self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> WebSession | None:
        """The live session of a cookie's token, or None; a request keeps it from idling out."""
        if not token or len(token) > 128:
            return None
        now = self.clock()
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.seen_at > self.idle_s or now - session.opened_at > self.max_s:
                del self._sessions[key]
                return None
            session.seen_at = now
            return session

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _sweep(self, now: float) -> None:
        stale = [
            k
            for k, s in self._sessions.items()
            if now - s.seen_at > self.idle_s or now - s.opened_at > self.max_s
        ]
        for key in stale:
            del self._sessions[key]
