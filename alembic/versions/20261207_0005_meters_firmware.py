"""meters firmware

Revision ID: 0005_meters_firmware
Revises: 0004_learned_quirks
Create Date: 2026-12-07 07:00:00

The firmware identifier each meter reported in its last read (NULL until a read reports one):
it keys the definitions a collection caches and the quirks learned of the meter's model.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005_meters_firmware"
down_revision: str | None = "0004_learned_quirks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        batch.add_column(sa.Column("firmware", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        batch.drop_column("firmware")
