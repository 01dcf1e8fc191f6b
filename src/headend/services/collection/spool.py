"""A durable local spool for reads the store did not take.

A read that came off a meter exists nowhere else until the store has landed it. When landing
fails, the read is written here, one file per read, and landed again by a later pass once the
store takes writes; its file is removed only after that landing committed.

A file is written under a temporary name (``.tmp-…``), flushed and fsync'd, then renamed into
place and the folder fsync'd: a file with a final name is always whole, and a temporary file
left by a crash is ignored (and cleared by ``clear_torn``).

The read is kept as JSON that names every type it holds (``Decimal``, aware ``datetime``,
``bytes``, ``Obis``, tuples, enums and the dataclasses of ``headend.domain.readings``), so it
reads back equal to what was written, and encodes again to the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from headend.domain import readings
from headend.domain.enums import ReadKind
from headend.domain.obis import Obis
from headend.domain.readings import MeterRead

FORMAT = 1
SUFFIX = ".read.json"
TEMPORARY = ".tmp-"
TORN_AFTER_S = 3600.0  # a temporary file this old was left by a crash

# The types a spooled read may hold, by name: nothing else is built when reading one back.
_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in vars(readings).values()
    if isinstance(cls, type) and cls.__module__ == readings.__name__
}
_DATACLASSES = {name: cls for name, cls in _CLASSES.items() if dataclasses.is_dataclass(cls)}
_ENUMS = {name: cls for name, cls in _CLASSES.items() if issubclass(cls, Enum)}


class SpoolError(Exception):
    """A spool file that cannot be read back."""


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data naming each type JSON does not have."""
    if isinstance(value, Enum):
        return {"$enum": type(value).__name__, "v": value.value}
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        encoded: dict[str, Any] = {"$dt": value.isoformat()}
        if isinstance(value.tzinfo, ZoneInfo):
            encoded["tz"] = value.tzinfo.key
        return encoded
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, Obis):
        return {"$obis": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _DATACLASSES:
        return {
            "$dc": type(value).__name__,
            "f": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    raise TypeError(f"cannot spool a {type(value).__name__}")


def decode(data: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$dec" in data:
        return Decimal(data["$dec"])
    if "$dt" in data:
        at = datetime.fromisoformat(data["$dt"])
        return at.astimezone(ZoneInfo(data["tz"])) if "tz" in data else at
    if "$bytes" in data:
        return bytes.fromhex(data["$bytes"])
    if "$obis" in data:
        return Obis.parse(data["$obis"])
    if "$enum" in data:
        return _ENUMS[data["$enum"]](data["v"])
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$dict" in data:
        return {decode(k): decode(v) for k, v in data["$dict"]}
    if "$dc" in data:
        cls = _DATACLASSES[data["$dc"]]
        return cls(**{name: decode(v) for name, v in data["f"].items()})
    raise SpoolError(f"unknown spooled value {sorted(data)}")


@dataclass(frozen=True)
class Spooled:
    """A read waiting to be landed, with what landing it needs."""

    job_id: int | None
    meter_pk: int
    kind: ReadKind
    read_at: datetime
    read: MeterRead

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "job_id": self.job_id,
            "meter_pk": self.meter_pk,
            "kind": str(self.kind),
            "read_at": encode(self.read_at),
            "read": encode(self.read),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Spooled:
        try:
            document = json.loads(raw)
            if document.get("format") != FORMAT:
                raise SpoolError(f"spool format {document.get('format')!r} is not {FORMAT}")
            read = decode(document["read"])
            if not isinstance(read, MeterRead):
                raise SpoolError("the spooled value is not a meter read")
            return cls(
                job_id=document["job_id"],
                meter_pk=document["meter_pk"],
                kind=ReadKind(document["kind"]),
                read_at=decode(document["read_at"]),
                read=read,
            )
        except SpoolError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SpoolError(f"unreadable spool file: {exc}") from exc


class Spool:
    """The spool folder: ``keep`` a read, list what waits, ``load`` and ``remove`` it."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def keep(self, entry: Spooled) -> Path:
        """Write ``entry`` durably; returns its file. Raises ``OSError`` if it cannot."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{entry.job_id or 0:012d}-{uuid.uuid4().hex}{SUFFIX}"
        temporary = self.directory / f"{TEMPORARY}{name}"
        final = self.directory / name
        try:
            with open(temporary, "wb") as file:
                file.write(entry.to_bytes())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._sync_directory()
        return final

    def waiting(self) -> list[Path]:
        """The spooled reads, oldest job first; temporary files are not reads."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.name.endswith(SUFFIX) and not p.name.startswith(TEMPORARY)
        )

    def __iter__(self) -> Iterator[Path]:
        return iter(self.waiting())

    def __len__(self) -> int:
        return len(self.waiting())

    @staticmethod
    def load(path: Path) -> Spooled:
        return Spooled.from_bytes(path.read_bytes())

    def remove(self, path: Path) -> None:
        """Forget a read; call only once its landing committed."""
        path.unlink(missing_ok=True)
        self._sync_directory()

    def clear_torn(self, older_than_s: float = TORN_AFTER_S) -> int:
        """Delete temporary files a crash left mid-write (not those another process may be
        writing now: only files older than ``older_than_s``); returns how many."""
        if not self.directory.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        torn = [
            p
            for p in self.directory.iterdir()
            if p.name.startswith(TEMPORARY) and p.stat().st_mtime < cutoff
        ]
        for path in torn:
            path.unlink(missing_ok=True)
        return len(torn)

    def _sync_directory(self) -> None:
        if os.name != "posix":
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
