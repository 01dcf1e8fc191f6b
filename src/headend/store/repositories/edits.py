"""Statements behind operator edits: interval versions of a range, edit rows, findings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from headend.store.blocks import StoredInterval
from headend.store.models import Edit, Meter, VeeFinding
from headend.store.repositories.intervals import IntervalRepository


class EditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def meter_pk(self, meter_id: str) -> int | None:
        return self.session.scalar(select(Meter.id).where(Meter.meter_id == meter_id))

    def meter_ids(self, meter_pks: Sequence[int]) -> dict[int, str]:
        rows = self.session.execute(
            select(Meter.id, Meter.meter_id).where(Meter.id.in_(list(meter_pks)))
        )
        return {pk: meter_id for pk, meter_id in rows}

    def has_channel(self, meter_pk: int, channel: str) -> bool:
        return channel in IntervalRepository(self.session).channels_of(meter_pk)

    def channels(self, meter_pk: int) -> list[str]:
        return IntervalRepository(self.session).channels_of(meter_pk)

    def versions(
        self, meter_pk: int, channel: str, start: datetime, end: datetime
    ) -> list[StoredInterval]:
        """Every version of the intervals ending in ``(start, end]``, by time then version."""
        return IntervalRepository(self.session).versions([meter_pk], start, end, [channel])

    def add_versions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add new interval versions; a version number taken meanwhile raises
        ``VersionTaken`` (the blocks are locked while they are rewritten)."""
        IntervalRepository(self.session).add_versions(rows)

    def add_edit(self, values: dict[str, Any]) -> int:
        return int(self.session.scalars(insert(Edit).returning(Edit.id), [values]).one())

    def edit(self, edit_id: int) -> tuple[Edit, str] | None:
        row = self.session.execute(
            select(Edit, Meter.meter_id)
            .join(Meter, Edit.meter_id == Meter.id)
            .where(Edit.id == edit_id)
        ).one_or_none()
        return (row[0], row[1]) if row is not None else None

    def edits(
        self, meter_pk: int | None, limit: int, after_id: int | None
    ) -> list[tuple[Edit, str]]:
        stmt = select(Edit, Meter.meter_id).join(Meter, Edit.meter_id == Meter.id)
        if meter_pk is not None:
            stmt = stmt.where(Edit.meter_id == meter_pk)
        if after_id is not None:
            stmt = stmt.where(Edit.id > after_id)
        rows = self.session.execute(stmt.order_by(Edit.id).limit(limit))
        return [(edit, meter_id) for edit, meter_id in rows]

    def mark_reverted(self, edit_id: int, user: str, at: datetime) -> bool:
        """False when the edit was reverted meanwhile."""
        result = self.session.execute(
            update(Edit)
            .where(Edit.id == edit_id, Edit.reverted_at.is_(None))
            .values(reverted_by=user, reverted_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def findings(self, finding_ids: Sequence[int]) -> list[tuple[VeeFinding, str]]:
        rows = self.session.execute(
            select(VeeFinding, Meter.meter_id)
            .join(Meter, VeeFinding.meter_id == Meter.id)
            .where(VeeFinding.id.in_(list(finding_ids)))
            .order_by(VeeFinding.id)
        )
        return [(finding, meter_id) for finding, meter_id in rows]

    def resolve(
        self, finding_id: int, user: str, at: datetime, params: dict[str, Any] | None
    ) -> bool:
        """Mark an open finding resolved; False when it is no longer open."""
        values: dict[str, Any] = {"status": "resolved", "resolved_by": user, "resolved_at": at}
        if params is not None:
            values["params"] = params
        result = self.session.execute(
            update(VeeFinding)
            .where(VeeFinding.id == finding_id, VeeFinding.status == "open")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
