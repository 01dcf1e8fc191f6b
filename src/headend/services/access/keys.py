"""API keys: created once and shown once, stored as a hash, revocable.

A key reads ``hk_<prefix>_<secret>``. The prefix finds the stored row (and names the key in
listings); the secret is 32 random bytes, so a single SHA-256 of the whole key is as safe
to store as a slow password hash and costs microseconds per request.

A key found valid is remembered by the process for ``CACHE_S`` seconds, so a busy API client
costs one lookup in the store per key every few seconds, not one per request. A key revoked
in this process (the API, the dashboard) stops working at once; one revoked by another
process (``headend keys revoke``) within ``CACHE_S`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import Role
from headend.services.access import audit
from headend.services.access.audit import Actor
from headend.services.clock import Clock, utcnow
from headend.services.errors import Conflict, Invalid, NotFound
from headend.store.models import ApiKey
from headend.store.repositories.access import AccessRepository

ROLE_ORDER = (Role.BILLING, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN)
_KEY = re.compile(r"hk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
LAST_USED_EVERY = timedelta(minutes=10)  # how stale a key's last_used_at may get
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}")
CACHE_S = 5.0  # how long a key found valid is taken as valid without asking the store
_CACHE_LIMIT = 10_000


def allows(role: Role, needed: Role) -> bool:
    """Each role includes the rights of the ones before it."""
    return ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role."""

    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return allows(self.role, needed)

    @property
    def actor(self) -> Actor:
        """The caller as the audit trail names it."""
        return Actor(self.name, self.role)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.name, row.prefix, row.role, row.created_at, row.revoked_at, row.last_used_at)


class _ValidKeys:
    """Keys found valid lately, by digest: shared by every ``KeyService`` of the process, so
    a revocation through any of them reaches the API at once."""

    def __init__(self) -> None:
        self._until: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: float) -> Principal | None:
        found = self._until.get(digest)
        if found is None or found[1] <= now:
            return None
        return found[0]

    def put(self, digest: str, principal: Principal, until: float) -> None:
        with self._lock:
            if len(self._until) >= _CACHE_LIMIT:
                self._until.clear()
            self._until[digest] = (principal, until)

    def forget(self, name: str) -> None:
        with self._lock:
            for digest in [d for d, (p, _) in self._until.items() if p.name == name]:
                del self._until[digest]


_VALID = _ValidKeys()


class KeyService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.monotonic = monotonic

    def create(self, name: str, role: Role, *, actor: Actor) -> tuple[KeyInfo, str]:
        """A new key; the key itself is returned here and never again. Audited as
        ``key.create``."""
        if not _NAME.fullmatch(name):
            raise Invalid(
                f"key name {name!r}: use 1 to 64 letters, digits, spaces or . _ @ -, "
                "starting with a letter or digit",
                "name",
            )
        prefix = secrets.token_hex(6)
        key = f"hk_{prefix}_{secrets.token_urlsafe(32)}"
        with self.session_factory() as session, session.begin():
            if AccessRepository(session).key_exists(name):
                raise Conflict(f"a key named {name!r} exists already; revoke it or pick another")
            now = self.clock()
            row = ApiKey(name=name, prefix=prefix, key_hash=_digest(key), role=role, created_at=now)
            session.add(row)
            audit.write(session, now, actor, "key.create", f"key:{name}", {"role": str(role)})
            session.flush()
            return _info(row), key

    def revoke(self, name: str, *, actor: Actor) -> KeyInfo:
        """Revoke a key (again: no change); audited as ``key.revoke``."""
        with self.session_factory() as session, session.begin():
            row = AccessRepository(session).key(name)
            if row is None:
                raise NotFound(f"no key named {name!r}")
            now = self.clock()
            if row.revoked_at is None:
                row.revoked_at = now
            audit.write(session, now, actor, "key.revoke", f"key:{name}")
            _VALID.forget(name)
            return _info(row)

    def list(self) -> list[KeyInfo]:
        with self.session_factory() as session:
            return [_info(r) for r in AccessRepository(session).all_keys()]

    def remembered(self, key: str) -> Principal | None:
        """The key's owner if the key was found valid less than ``CACHE_S`` seconds ago;
        None means: ask ``authenticate``. Never touches the store."""
        return _VALID.get(_digest(key), self.monotonic())

    def authenticate(self, key: str) -> Principal | None:
        """The key's owner, or None for a malformed, unknown or revoked key."""
        found = self.remembered(key)
        if found is not None:
            return found
        match = _KEY.fullmatch(key)
        if match is None:
            return None
        with self.session_factory() as session:
            repo = AccessRepository(session)
            row = repo.key_by_prefix(match.group(1))
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.key_hash, _digest(key)):
                return None
            now = self.clock()
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
                repo.mark_used(row.id, now)
                session.commit()
        principal = Principal(row.name, row.role)
        _VALID.put(_digest(key), principal, self.monotonic() + CACHE_S)
        return principal
