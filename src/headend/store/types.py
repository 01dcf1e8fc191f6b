"""Column types that keep time in UTC and quantities exact on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, LargeBinary
from sqlalchemy.types import TypeDecorator

from headend.store.payloads import decode, encode


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; times are stored in UTC")
        value = value.astimezone(UTC)
        # SQLite keeps the text as given: store naive UTC there so comparisons sort correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact decimal kept as an integer count of 10**-scale units (SUM works everywhere).

    With the default scale of 6 a kWh value is stored in micro-kWh (milli-Wh), exact for any
    meter resolution, up to 9.2 million million kWh.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 6, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale = scale

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale)


class PackedJson(TypeDecorator[Any]):
    """A JSON value kept deflated, load-profile rows by column (``headend.store.payloads``);
    read back equal to what was written, key order included."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else encode(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> Any:
        return None if value is None else decode(bytes(value))
