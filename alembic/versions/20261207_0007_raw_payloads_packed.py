"""raw payloads packed

Revision ID: 0007_raw_payloads_packed
Revises: 0006_interval_blocks
Create Date: 2026-12-07 15:00:00

A raw read's payload is kept deflated, its load-profile rows laid out by column
(``headend.store.payloads``), instead of as JSON; read back it is the same JSON value. Both
ways convert every stored payload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from headend.store.payloads import decode, encode

revision: str = "0007_raw_payloads_packed"
down_revision: str | None = "0006_interval_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROWS_PER_STEP = 500


def _convert(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any],
             change: Callable[[Any], Any]) -> None:  # fmt: skip
    """Move every payload to a column of the new type, then put it in the old one's place."""
    bind = op.get_bind()
    with op.batch_alter_table("raw_reads") as batch:
        batch.add_column(sa.Column("payload_new", new, nullable=True))
    table = sa.table(
        "raw_reads", sa.column("id", sa.BigInteger()), sa.column("payload", old),
        sa.column("payload_new", new),
    )  # fmt: skip
    last = 0
    while True:
        rows = bind.execute(
            sa.select(table.c.id, table.c.payload)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(ROWS_PER_STEP)
        ).all()
        if not rows:
            break
        for pk, payload in rows:
            bind.execute(table.update().where(table.c.id == pk).values(payload_new=change(payload)))
        last = rows[-1][0]
    with op.batch_alter_table("raw_reads") as batch:
        batch.drop_column("payload")
    with op.batch_alter_table("raw_reads") as batch:
        batch.alter_column("payload_new", new_column_name="payload", nullable=False)


def upgrade() -> None:
    _convert(sa.JSON(), sa.LargeBinary(), encode)


def downgrade() -> None:
    _convert(sa.LargeBinary(), sa.JSON(), lambda data: decode(bytes(data)))
