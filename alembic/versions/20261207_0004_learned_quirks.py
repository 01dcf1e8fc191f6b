"""learned quirks per device profile and firmware

Revision ID: 0004_learned_quirks
Revises: 0003
Create Date: 2026-12-07 06:45:00

What collection sessions learned about a meter model (a GET-with-list it garbles, selective
access it refuses), kept per device profile and firmware so the next session starts knowing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004_learned_quirks"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learned_quirks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_profile", sa.String(length=64), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=False),
        sa.Column("quirk", sa.String(length=48), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_meter_id", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_meter_id"], ["meters.id"], name=op.f("fk_learned_quirks_first_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learned_quirks")),
        sa.UniqueConstraint(
            "device_profile",
            "firmware",
            "quirk",
            name=op.f("uq_learned_quirks_device_profile_firmware_quirk"),
        ),
    )


def downgrade() -> None:
    op.drop_table("learned_quirks")
