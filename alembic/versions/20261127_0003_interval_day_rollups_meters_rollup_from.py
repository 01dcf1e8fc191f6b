"""interval day rollups, meters rollup_from

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 19:40:56.257963

The rollups start empty and ``rollup_basis`` has no row, so billing reads intervals until the
first rollup pass (``headend collect``, ``headend serve``) finds no basis stored, marks every
meter and builds them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUALITIES = (
    "RAW",
    "VALID",
    "VERIFIED",
    "SUSPECT",
    "MISSING",
    "EST_LINEAR",
    "EST_LIKEDAY",
    "EST_AVG_LIKEDAY",
    "EST_SCALED_TO_REGISTER",
    "EST_PREV_YEAR",
    "EST_PROFILE",
    "EST_ZERO",
    "EDITED",
    "FORWARD_EST",
)


def upgrade() -> None:
    op.create_table(
        "rollup_basis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=160), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_basis")),
    )
    op.create_table(
        "interval_days",
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "quality",
            sa.Enum(*QUALITIES, name="quality", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("intervals", sa.Integer(), nullable=False),
        sa.Column("with_value", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.BigInteger(), nullable=False),
        sa.Column("version_sum", sa.BigInteger(), nullable=False),
        sa.Column("normal_sum", sa.BigInteger(), nullable=False),
        sa.Column("peak_sum", sa.BigInteger(), nullable=False),
        sa.Column("off_peak_sum", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_interval_days_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint(
            "meter_id", "channel", "day", "quality", name=op.f("pk_interval_days")
        ),
    )
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rollup_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_meters_rollup_from"), ["rollup_from"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meters_rollup_from"))
        batch_op.drop_column("rollup_from")

    op.drop_table("interval_days")
    op.drop_table("rollup_basis")
