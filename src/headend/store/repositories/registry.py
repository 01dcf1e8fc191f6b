"""Statements over gateways, meters and meter secrets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from headend.domain.enums import MeterStatus
from headend.store.base import table_of
from headend.store.models import Gateway, Meter, MeterSecret

# Meter columns carried by the registry CSV, in a fixed order (used to compare rows).
METER_FIELDS: tuple[str, ...] = (
    "service_point",
    "customer_ref",
    "gateway_id",
    "transport",
    "client_sap",
    "server_logical",
    "server_physical",
    "auth",
    "secret_id",
    "device_profile",
    "extra_obis",
    "ct_ratio",
    "vt_ratio",
    "install_date",
    "removal_date",
    "status",
    "tags",
)
GATEWAY_FIELDS: tuple[str, ...] = (
    "kind",
    "host",
    "port",
    "device",
    "baud_rate",
    "framing",
    "max_sessions",
    "site",
)


class RegistryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def gateways(self) -> list[Gateway]:
        return list(self.session.scalars(select(Gateway).order_by(Gateway.name)))

    def secrets(self) -> list[MeterSecret]:
        return list(self.session.scalars(select(MeterSecret)))

    def meter_rows(self) -> dict[str, tuple[int, tuple[Any, ...]]]:
        """Every meter as ``meter_id -> (primary key, values of METER_FIELDS)``."""
        columns = [getattr(Meter, name) for name in METER_FIELDS]
        result: dict[str, tuple[int, tuple[Any, ...]]] = {}
        for row in self.session.execute(select(Meter.meter_id, Meter.id, *columns)):
            result[row[0]] = (row[1], tuple(row[2:]))
        return result

    def add_gateways(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(table_of(Gateway)), list(rows))

    def update_gateways(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(update(Gateway), list(rows))

    def add_secrets(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(table_of(MeterSecret)), list(rows))

    def update_secrets(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(update(MeterSecret), list(rows))

    def add_meters(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(table_of(Meter)), list(rows))

    def update_meters(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(update(Meter), list(rows))

    def iter_meters_for_export(
        self, batch: int = 5000
    ) -> Iterator[tuple[Meter, Gateway, str | None]]:
        stmt = (
            select(Meter, Gateway, MeterSecret.name)
            .join(Gateway, Meter.gateway_id == Gateway.id)
            .outerjoin(MeterSecret, Meter.secret_id == MeterSecret.id)
            .order_by(Meter.meter_id)
            .execution_options(yield_per=batch)
        )
        for row in self.session.execute(stmt):
            yield row[0], row[1], row[2]

    def _listing(self) -> Any:
        return (
            select(Meter, Gateway, MeterSecret.name)
            .join(Gateway, Meter.gateway_id == Gateway.id)
            .outerjoin(MeterSecret, Meter.secret_id == MeterSecret.id)
        )

    def listed_meters(
        self,
        after: str | None,
        limit: int,
        gateway: str | None,
        device_profile: str | None,
        status: MeterStatus | None,
    ) -> list[tuple[Meter, Gateway, str | None]]:
        """Meters in meter-id order after ``after``, at most ``limit``, each with its gateway
        and the name of its secret."""
        stmt = self._listing().order_by(Meter.meter_id).limit(limit)
        if after is not None:
            stmt = stmt.where(Meter.meter_id > after)
        if gateway is not None:
            stmt = stmt.where(Gateway.name == gateway)
        if device_profile is not None:
            stmt = stmt.where(Meter.device_profile == device_profile)
        if status is not None:
            stmt = stmt.where(Meter.status == status)
        return [(m, g, s) for m, g, s in self.session.execute(stmt)]

    def listed_meter(self, meter_id: str) -> list[tuple[Meter, Gateway, str | None]]:
        stmt = self._listing().where(Meter.meter_id == meter_id)
        return [(m, g, s) for m, g, s in self.session.execute(stmt)]

    def set_status(self, meter_id: str, status: MeterStatus) -> bool:
        """False when there is no such meter."""
        done = self.session.execute(
            update(Meter).where(Meter.meter_id == meter_id).values(status=status)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def gateways_by_name(self) -> list[Gateway]:
        return list(self.session.execute(select(Gateway).order_by(Gateway.name)).scalars())

    def meters_with_gateways(
        self, meter_pks: Sequence[int]
    ) -> list[tuple[Meter, Gateway, MeterSecret | None]]:
        """Each of these meters with its gateway and its secret (None if it has none)."""
        rows = self.session.execute(
            select(Meter, Gateway, MeterSecret)
            .join(Gateway, Meter.gateway_id == Gateway.id)
            .outerjoin(MeterSecret, Meter.secret_id == MeterSecret.id)
            .where(Meter.id.in_(set(meter_pks)))
        ).all()
        return [(meter, gateway, secret) for meter, gateway, secret in rows]

    def note_firmware(self, meter_pk: int, reported: str | None) -> str:
        """Keep the firmware a read of the meter reported (``None``: the read did not say);
        the firmware now stored for it, ``""`` while none was ever reported."""
        if reported is None:
            stored = self.session.scalar(select(Meter.firmware).where(Meter.id == meter_pk))
            return stored or ""
        self.session.execute(
            update(Meter)
            .where(Meter.id == meter_pk)
            .where(Meter.firmware.is_distinct_from(reported))
            .values(firmware=reported)
        )
        return reported

    def reserve_invocation_counters(self, meter_pk: int, count: int) -> int:
        """Advance the meter's stored HLS invocation counter by ``count`` and return the first
        value of the reserved block. The block is committed before any of it is used."""
        stmt = (
            update(Meter)
            .where(Meter.id == meter_pk)
            .values(invocation_counter=Meter.invocation_counter + count)
            .returning(Meter.invocation_counter)
        )
        after = self.session.execute(stmt).scalar_one()
        return int(after) - count

    def counts(self) -> dict[str, Any]:
        """Meters by status, by gateway kind and by device profile; gateways in all."""
        by_status = dict(
            self.session.execute(select(Meter.status, func.count()).group_by(Meter.status)).all()
        )
        by_kind = dict(
            self.session.execute(
                select(Gateway.kind, func.count(Meter.id))
                .join(Meter, Meter.gateway_id == Gateway.id)
                .group_by(Gateway.kind)
            ).all()
        )
        by_profile = dict(
            self.session.execute(
                select(Meter.device_profile, func.count()).group_by(Meter.device_profile)
            ).all()
        )
        gateways = self.session.scalar(select(func.count()).select_from(Gateway)) or 0
        return {
            "meters": sum(by_status.values()),
            "gateways": gateways,
            "by_status": {str(k): v for k, v in by_status.items()},
            "by_gateway_kind": {str(k): v for k, v in by_kind.items()},
            "by_device_profile": by_profile,
        }
