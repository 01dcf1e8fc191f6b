"""Job ends announced through PostgreSQL's NOTIFY reach a listener when, and only when, the
transaction that ended the jobs commits."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from headend.store.notices import MAX_PAYLOAD, EndsListener, announce
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="NOTIFY is PostgreSQL's")


def test_ends_are_heard_after_the_commit_and_never_after_a_rollback(
    store: sessionmaker[Session], database_url: str
) -> None:
    listener = EndsListener(database_url)
    try:
        listener.connect()
        with store.begin() as session:
            announce(session, [(1, "succeeded", None), (2, "retry_wait", "response_timeout")])
        assert listener.wait(5.0) == [(1, "succeeded", None), (2, "retry_wait", "response_timeout")]
        with store() as session:
            session.begin()
            announce(session, [(3, "failed", "decode_error")])
            session.rollback()
        assert listener.wait(0.5) == []
    finally:
        listener.close()


def test_many_ends_are_split_into_notices_postgresql_accepts_and_all_are_heard(
    store: sessionmaker[Session], database_url: str
) -> None:
    listener = EndsListener(database_url)
    ends = [(i, "succeeded", None) for i in range(2000)]
    try:
        listener.connect()
        with store.begin() as session:
            announce(session, ends)
        heard: list[tuple[int, str, str | None]] = []
        while len(heard) < len(ends):
            more = listener.wait(5.0)
            assert more, f"heard {len(heard)} of {len(ends)}"
            heard += more
        assert heard == ends
        assert len(ends) * len('[1999,"succeeded",null],') > MAX_PAYLOAD  # more than one notice
    finally:
        listener.close()
