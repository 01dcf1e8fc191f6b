"""The API's tests run against ``served`` (``tests/served.py``): a real server over HTTP on a
store filled by collection from simulated meters, a copy of it for each test module.

``five_workers`` writes the heartbeats of the Celery executor's workers that ``/health`` and
the dashboard's workers page are tested with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from headend.services.collection.workers import Workers

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # when the tests read the heartbeats
# the order /health and the page list them in: the alive ones by name, then the lost one
LISTED = ["hanoi-1:101", "spare:102", "a-lost:103"]


def five_workers(store: sessionmaker[Session], now: datetime = NOW) -> Workers:
    """Heartbeats as seen at ``now``: ``hanoi-1:101`` alive (sites hanoi and haiphong, 3 of
    20 sessions running, 41 finished), ``spare:102`` alive (gateways of no site),
    ``a-lost:103`` last heard from 11 s ago (past 5 beats of 2 s), ``done:104`` stopped a
    minute ago and ``gone:105`` last heard from 25 hours ago. Returns the ``Workers`` that
    reads them at ``now``."""

    def at(moment: datetime) -> Workers:
        return Workers(store, clock=lambda: moment)

    at(now - timedelta(seconds=1)).beat("hanoi-1:101", ["hanoi", "haiphong"], 20, 3, 41)
    at(now).beat("spare:102", [], 8, 0, 0)
    at(now - timedelta(seconds=11)).beat("a-lost:103", ["hanoi"], 20, 5, 7)
    stopping = at(now - timedelta(minutes=1))
    stopping.beat("done:104", ["hue"], 10, 2, 9)
    stopping.stopped("done:104")
    at(now - timedelta(hours=25)).beat("gone:105", ["hue"], 10, 0, 3)
    return at(now)
