from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from headend.store import migrations, partitions
from headend.store.base import Base
from headend.store.engine import make_engine


def test_upgrade_brings_an_empty_database_to_head_and_the_models_agree(
    fresh_database_url: str,
) -> None:
    migrations.upgrade(fresh_database_url)
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    # the monthly partitions of interval_blocks are made by headend
                    "include_name": lambda name, kind, _: (
                        not (kind == "table" and partitions.is_partition(name))
                    ),
                },
            )
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() is not None
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_every_table(fresh_database_url: str) -> None:
    migrations.upgrade(fresh_database_url)
    migrations.downgrade(fresh_database_url, "base")
    engine = make_engine(fresh_database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrations.current_revision(fresh_database_url) is None
    finally:
        engine.dispose()
    migrations.upgrade(fresh_database_url)  # and back up again
    assert migrations.current_revision(fresh_database_url) is not None
