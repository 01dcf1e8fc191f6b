"""distributed collection

Revision ID: 0009_distributed_collection
Revises: 0008_redundant_indexes
Create Date: 2026-12-07 18:00:00

What meter sessions on Celery workers need: the site a gateway belongs to (a worker started
with --site reads only its site's gateways), the worker running a job and the lease it holds
on it, and one row per worker process with its heartbeat.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009_distributed_collection"
down_revision: str | None = "0008_redundant_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("site", sa.String(length=64), nullable=True))
    with op.batch_alter_table("read_jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=128), primary_key=True),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("workers")
    for table, column in (
        ("read_jobs", "lease_until"),
        ("read_jobs", "worker"),
        ("gateways", "site"),
    ):
        _drop_column(table, column)


def _drop_column(table: str, column: str) -> None:
    """SQLite drops a plain column in place (3.35 and newer): copying the table instead, as
    batch mode does, cannot drop the old one while other tables' rows refer to it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
    else:
        op.drop_column(table, column)
