"""Factories the sub-commands share: built from the settings, never at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from headend.config import Settings
from headend.store.engine import make_engine, make_session_factory
from headend.store.secrets import SecretBox

_PROTOCOLS = Path(__file__).resolve().parents[3] / "protocols"


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url))


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.encryption_secret())


def known_profiles() -> frozenset[str]:
    """Names of the device profiles in ``protocols/``."""
    return frozenset(p.stem for p in _PROTOCOLS.glob("*.yaml"))
