"""API keys: a key found valid is remembered for a few seconds, a revocation is not."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import Role
from headend.services.access.keys import CACHE_S, KeyService, Principal
from headend.store.models import ApiKey
from tests.conftest import TEST_ACTOR


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _revoke_behind_its_back(store: sessionmaker[Session], name: str) -> None:
    """As ``headend keys revoke`` in another process would: the row changes, no cache hears."""
    with store() as session, session.begin():
        session.execute(
            update(ApiKey).where(ApiKey.name == name).values(revoked_at=ApiKey.created_at)
        )


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    store: sessionmaker[Session],
) -> None:
    ticks = Ticks()
    keys = KeyService(store, monotonic=ticks)
    _, key = keys.create("cached-billing", Role.BILLING, actor=TEST_ACTOR)
    expected = Principal("cached-billing", Role.BILLING)
    assert keys.authenticate(key) == expected
    _revoke_behind_its_back(store, "cached-billing")
    ticks.now += CACHE_S / 2
    assert keys.remembered(key) == expected  # still remembered: no trip to the store
    ticks.now += CACHE_S
    assert keys.remembered(key) is None
    assert keys.authenticate(key) is None


def test_a_key_revoked_in_this_process_stops_working_at_once(
    store: sessionmaker[Session],
) -> None:
    ticks = Ticks()
    serving, admin = KeyService(store, monotonic=ticks), KeyService(store, monotonic=ticks)
    _, key = serving.create("revoked-here", Role.OPERATOR, actor=TEST_ACTOR)
    assert serving.authenticate(key) is not None
    admin.revoke("revoked-here", actor=TEST_ACTOR)
    assert serving.remembered(key) is None
    assert serving.authenticate(key) is None


def test_a_wrong_key_is_never_remembered(store: sessionmaker[Session]) -> None:
    keys = KeyService(store)
    _, key = keys.create("never-wrong", Role.BILLING, actor=TEST_ACTOR)
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert keys.authenticate(forged) is None
    assert keys.remembered(forged) is None
    assert keys.remembered(key) is None  # not asked for yet
