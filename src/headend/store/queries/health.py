"""The statement that tells whether the database answers."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ping(session: Session) -> None:
    """A round trip to the database; raises what the driver raises if it does not answer."""
    session.execute(text("SELECT 1"))
