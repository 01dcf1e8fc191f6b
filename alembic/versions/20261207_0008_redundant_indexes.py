"""redundant indexes

Revision ID: 0008_redundant_indexes
Revises: 0007_raw_payloads_packed
Create Date: 2026-12-07 15:30:00

Two indexes repeated the first columns of a unique key's own index: register reads by
(meter, OBIS code, time) and raw reads by meter. Every query they served uses the unique
key's index, which begins with the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_redundant_indexes"
down_revision: str | None = "0007_raw_payloads_packed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGISTERS = "ix_register_readings_meter_id_register_readings_obis_register_readings_read_at"


def upgrade() -> None:
    with op.batch_alter_table("register_readings") as batch:
        batch.drop_index(batch.f(REGISTERS))
    with op.batch_alter_table("raw_reads") as batch:
        batch.drop_index(batch.f("ix_raw_reads_meter_id"))


def downgrade() -> None:
    with op.batch_alter_table("raw_reads") as batch:
        batch.create_index(batch.f("ix_raw_reads_meter_id"), ["meter_id"], unique=False)
    with op.batch_alter_table("register_readings") as batch:
        batch.create_index(batch.f(REGISTERS), ["meter_id", "obis", "read_at"], unique=False)
