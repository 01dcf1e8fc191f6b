"""Factories the sub-commands share: built from the settings, never at import time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from headend.config import Settings
from headend.profiles import profiles_dir
from headend.protocol.transports import Timeouts
from headend.scheduling.dispatcher import Dispatcher, DispatcherLimits
from headend.services.collection.jobs import JobService
from headend.services.collection.runner import CollectionService, CollectionSettings
from headend.services.validation.rollups import RollupService
from headend.services.validation.vee import ValidationService
from headend.store.engine import make_engine, make_session_factory
from headend.store.secrets import SecretBox


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url, settings.db_pool_size))


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.encryption_secret())


def known_profiles() -> frozenset[str]:
    """Names of the device profiles in the profiles folder (``protocols/`` by default)."""
    return frozenset(p.stem for p in profiles_dir().glob("*.yaml"))


def collection_stack(
    settings: Settings, factory: sessionmaker[Session]
) -> tuple[JobService, CollectionService, Dispatcher]:
    """The job service, the read runner and the dispatcher, wired from the settings."""
    jobs = JobService(factory, retry_delay_scale=settings.retry_delay_scale)
    collection = CollectionService(
        factory,
        secret_box(settings),
        CollectionSettings(
            client_system_title=settings.client_system_title,
            clock_sync_threshold_s=settings.clock_sync_threshold_s,
            backfill=timedelta(days=settings.backfill_days),
            timeouts=Timeouts(
                connect=settings.connect_timeout_s,
                link=settings.response_timeout_s,
                response=settings.response_timeout_s,
            ),
        ),
    )
    dispatcher = Dispatcher(
        jobs, collection.run, DispatcherLimits(max_sessions=settings.max_sessions)
    )
    return jobs, collection, dispatcher


def validation_service(settings: Settings, factory: sessionmaker[Session]) -> ValidationService:
    """The VEE pass, ending with the rollup pass in the utility's time zone."""
    return ValidationService(factory, rollups=RollupService(factory, settings.tz))
