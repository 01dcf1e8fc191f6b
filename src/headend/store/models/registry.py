"""The meter registry: gateways, meters and their secrets."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from headend.domain.enums import AuthLevel, GatewayKind, MeterStatus, SerialFraming, Transport
from headend.store.base import Base, Timestamped
from headend.store.models._columns import enum_type
from headend.store.types import UtcDateTime


class Gateway(Timestamped, Base):
    """Where meters are reached: a TCP endpoint, a TCP-to-RS485 converter or a serial port."""

    __tablename__ = "gateways"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[GatewayKind] = mapped_column(enum_type(GatewayKind))
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(255))
    baud_rate: Mapped[int | None] = mapped_column(Integer)
    framing: Mapped[SerialFraming | None] = mapped_column(enum_type(SerialFraming))
    max_sessions: Mapped[int] = mapped_column(Integer, default=1)
    # the collector site whose workers reach it (HEADEND_EXECUTOR=celery); None: any worker
    # started without --site
    site: Mapped[str | None] = mapped_column(String(64))

    meters: Mapped[list[Meter]] = relationship(back_populates="gateway")

    def __repr__(self) -> str:
        return f"Gateway(name={self.name!r}, kind={self.kind!s})"


class MeterSecret(Timestamped, Base):
    """LLS password and/or HLS keys, encrypted with the settings' secret key (never in clear)."""

    __tablename__ = "meter_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"MeterSecret(name={self.name!r})"


class Meter(Timestamped, Base):
    __tablename__ = "meters"
    __table_args__ = (
        UniqueConstraint("gateway_id", "server_physical", "server_logical", "client_sap"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[str] = mapped_column(String(32), unique=True)
    service_point: Mapped[str | None] = mapped_column(String(64))
    customer_ref: Mapped[str | None] = mapped_column(String(64))
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), index=True)
    transport: Mapped[Transport] = mapped_column(enum_type(Transport))
    client_sap: Mapped[int] = mapped_column(Integer, default=16)
    server_logical: Mapped[int] = mapped_column(Integer, default=1)
    server_physical: Mapped[int | None] = mapped_column(Integer)
    auth: Mapped[AuthLevel] = mapped_column(enum_type(AuthLevel), default=AuthLevel.NONE)
    secret_id: Mapped[int | None] = mapped_column(ForeignKey("meter_secrets.id"))
    device_profile: Mapped[str] = mapped_column(String(64), index=True)
    extra_obis: Mapped[str | None] = mapped_column(String(512))
    # the firmware identifier the meter reported in its last read; None until one reports it
    firmware: Mapped[str | None] = mapped_column(String(64))
    ct_ratio: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(1))
    vt_ratio: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(1))
    install_date: Mapped[date | None] = mapped_column(Date)
    removal_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[MeterStatus] = mapped_column(
        enum_type(MeterStatus), default=MeterStatus.ACTIVE, index=True
    )
    tags: Mapped[str | None] = mapped_column(String(255))
    # The next HLS invocation counter the head-end may use; reserved before each session.
    invocation_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    # Interval data from this instant on awaits (re-)validation; cleared by the VEE pass.
    vee_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # The earliest interval end changed since the rollup pass last ran: the meter's day
    # rollups (interval_days) from that instant's local day on are stale. Set by every writer
    # of interval versions, cleared by the rollup pass (headend.services.validation.rollups).
    rollup_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)

    gateway: Mapped[Gateway] = relationship(back_populates="meters")
    secret: Mapped[MeterSecret | None] = relationship()

    @property
    def multiplier(self) -> Decimal:
        return self.ct_ratio * self.vt_ratio

    def __repr__(self) -> str:
        return f"Meter(meter_id={self.meter_id!r}, profile={self.device_profile!r})"
