"""Alembic environment: the target metadata is headend's models."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

import headend.store.models  # noqa: F401  (registers every table)
from headend.store import partitions
from headend.store.base import Base
from headend.store.engine import make_engine
from headend.store.types import PackedJson, ScaledDecimal, UtcDateTime

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("url")
        or os.environ.get("HEADEND_DATABASE_URL")
        or "sqlite:///headend.db"
    )


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write headend's column types as their plain SQL types, so migrations stand alone."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, ScaledDecimal):
        return "sa.BigInteger()"
    if type_ == "type" and isinstance(obj, PackedJson):
        return "sa.LargeBinary()"
    return False


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """The monthly partitions of interval_blocks are made by headend, not by the models."""
    return not (type_ == "table" and partitions.is_partition(name))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
