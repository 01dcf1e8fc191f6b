"""interval day ends

Revision ID: 0010_interval_day_ends
Revises: 0009_distributed_collection
Create Date: 2026-12-07 21:30:00

The register capture as read at the end of each local day, kept by the rollup pass with the
day rollups: billing's captures at a period's boundaries come from there instead of the
interval blocks. The table starts empty; the rollup rules changed with it, so the first rollup
pass after the upgrade finds another basis stored, marks every meter and rebuilds both, and
billing reads the intervals until then. Going down drops the table; the older pass then
rebuilds its rollups for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010_interval_day_ends"
down_revision: str | None = "0009_distributed_collection"
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
        "interval_day_ends",
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("capture", sa.BigInteger(), nullable=False),
        sa.Column(
            "quality",
            sa.Enum(*QUALITIES, name="quality", native_enum=False, length=32),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_interval_day_ends_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("meter_id", "channel", "day", name=op.f("pk_interval_day_ends")),
    )
    # the rollups are rebuilt with their captures by the next pass
    op.execute(sa.text("DELETE FROM rollup_basis"))


def downgrade() -> None:
    op.drop_table("interval_day_ends")
    op.execute(sa.text("DELETE FROM rollup_basis"))
