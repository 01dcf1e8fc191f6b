"""OBIS codes (IEC 62056-61): six value groups A-B:C.D.E*F, each 0..255."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[.\-:*]")


class ObisError(ValueError):
    """A string or byte sequence is not an OBIS code."""


@dataclass(frozen=True, order=True, slots=True)
class Obis:
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for group in (self.a, self.b, self.c, self.d, self.e, self.f):
            if not 0 <= group <= 255:
                raise ObisError(f"OBIS value group {group} is outside 0..255")

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse ``1.0.1.8.0.255``, ``1-0:1.8.0.255`` or ``1-0:1.8.0`` (F defaults to 255)."""
        parts = [p for p in _SEPARATORS.split(text.strip())]
        if len(parts) not in (5, 6) or not all(p.isdigit() for p in parts):
            raise ObisError(
                f"{text!r} is not an OBIS code; expected six numbers such as 1.0.1.8.0.255"
            )
        return cls(*(int(p) for p in parts))

    @classmethod
    def from_bytes(cls, data: bytes) -> Obis:
        if len(data) != 6:
            raise ObisError(f"an OBIS code is 6 bytes, got {len(data)}")
        return cls(*data)

    def to_bytes(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def __str__(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"
