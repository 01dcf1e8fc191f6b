"""Statements behind the VEE pass: the meters landing marked, their interval versions, the
new versions and findings a pass writes or closes, and clearing the marks it handled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session

from headend.store.base import table_of
from headend.store.blocks import StoredInterval
from headend.store.models import Meter, RegisterReading, VeeFinding
from headend.store.repositories.intervals import IntervalRepository


class VeeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def marked_meters(self, limit: int) -> Sequence[Any]:
        """The first ``limit`` meters marked for validation: (pk, meter id, vee_from,
        device profile), by pk."""
        return self.session.execute(
            select(Meter.id, Meter.meter_id, Meter.vee_from, Meter.device_profile)
            .where(Meter.vee_from.is_not(None))
            .order_by(Meter.id)
            .limit(limit)
        ).all()

    def interval_versions(self, meter_pks: list[int], after: datetime) -> list[StoredInterval]:
        """Every version of the meters' intervals ending after ``after``, by meter, channel,
        interval end and version."""
        return IntervalRepository(self.session).versions(meter_pks, after)

    def add_versions(self, rows: list[dict[str, Any]]) -> None:
        IntervalRepository(self.session).add_versions(rows)

    def register_versions(self, meter_pks: list[int], after: datetime) -> Sequence[Any]:
        """Every version of the meters' register reads taken after ``after``: (meter pk,
        obis, read_at, version, value, unit, capture_time, quality), by meter, OBIS, time
        and version."""
        r = RegisterReading
        return self.session.execute(
            select(
                r.meter_id, r.obis, r.read_at, r.version, r.value, r.unit, r.capture_time,
                r.quality,
            )
            .where(r.meter_id.in_(meter_pks), r.read_at > after)
            .order_by(r.meter_id, r.obis, r.read_at, r.version)
        ).all()  # fmt: skip

    def add_register_versions(self, rows: list[dict[str, Any]]) -> None:
        self.session.execute(insert(table_of(RegisterReading)), rows)

    def open_findings(self, meter_pks: list[int]) -> Sequence[Any]:
        """The meters' open findings: (id, meter pk, channel, rule, start, end, params), by
        id."""
        return self.session.execute(
            select(
                VeeFinding.id,
                VeeFinding.meter_id,
                VeeFinding.channel,
                VeeFinding.rule,
                VeeFinding.start,
                VeeFinding.end,
                VeeFinding.params,
            )
            .where(VeeFinding.meter_id.in_(meter_pks), VeeFinding.status == "open")
            .order_by(VeeFinding.id)
        ).all()

    def update_finding(self, finding_id: int, **values: Any) -> None:
        self.session.execute(
            update(VeeFinding)
            .where(VeeFinding.id == finding_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def close_findings(self, finding_ids: list[int], at: datetime, by: str) -> None:
        """Mark the findings resolved, if still open."""
        if finding_ids:
            self.session.execute(
                update(VeeFinding)
                .where(VeeFinding.id.in_(finding_ids), VeeFinding.status == "open")
                .values(status="resolved", resolved_at=at, resolved_by=by)
                .execution_options(synchronize_session=False)
            )

    def add_findings(self, rows: list[dict[str, Any]]) -> None:
        self.session.execute(insert(table_of(VeeFinding)), rows)

    def clear_mark(self, meter_pk: int, seen: datetime) -> None:
        """Clear the meter's validation mark if it still holds ``seen``."""
        self.session.execute(
            update(Meter)
            .where(and_(Meter.id == meter_pk, Meter.vee_from == seen))
            .values(vee_from=None)
        )
