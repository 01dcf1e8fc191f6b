"""Reading the interval and register CSV files of ``headend vee run`` (from text, no I/O).

Every malformed cell is reported with its line and column; a file with any error yields no
reads at all.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from headend.domain.obis import Obis, ObisError
from headend.vee.model import IntervalRead, RegisterRead

INTERVAL_COLUMNS = ("meter_id", "channel", "interval_end", "value", "status")
REGISTER_COLUMNS = ("meter_id", "obis", "read_at", "value")
MAX_PLACES = 6
MAX_ERRORS = 20

T = TypeVar("T")


class CsvError(ValueError):
    """One or more rows are malformed; ``problems`` lists them, one per line and column."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        shown = problems[:MAX_ERRORS]
        more = len(problems) - len(shown)
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(f"{source}: " + "\n  ".join(["nothing was processed:", *shown]) + tail)


class _Cell(ValueError):
    pass


def _text(raw: str) -> str:
    if not raw.strip():
        raise _Cell("is empty")
    return raw.strip()


def _time(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(raw))
    except ValueError:
        raise _Cell(
            f"{raw!r} is not an ISO 8601 timestamp such as 2026-11-02T10:15:00+07:00"
        ) from None
    if moment.tzinfo is None:
        raise _Cell(f"{raw!r} has no UTC offset; write it as e.g. {raw.strip()}+07:00")
    return moment


def _decimal(raw: str) -> Decimal:
    try:
        value = Decimal(_text(raw))
    except InvalidOperation:
        raise _Cell(f"{raw!r} is not a decimal number such as 0.125") from None
    if not value.is_finite():
        raise _Cell(f"{raw!r} is not a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise _Cell(f"{raw!r} has more than {MAX_PLACES} decimal places")
    return value


def _status(raw: str) -> int:
    text = _text(raw)
    if not text.isdigit() or int(text) > 255:
        raise _Cell(f"{raw!r} is not an AMR status byte (an integer 0 to 255)")
    return int(text)


def _obis(raw: str) -> Obis:
    try:
        return Obis.parse(_text(raw))
    except ObisError as exc:
        raise _Cell(str(exc)) from exc


Parser = Callable[[str], Any]


def _cached(parse: Parser) -> Parser:
    """Memoise a parser within one file: timestamps and ids repeat across meters."""
    seen: dict[str, Any] = {}

    def cached(raw: str) -> Any:
        hit = seen.get(raw)
        if hit is None:
            hit = seen[raw] = parse(raw)
        return hit

    return cached


def _rows(
    lines: Iterable[str],
    source: str,
    spec: tuple[tuple[str, Parser], ...],
    make: Callable[..., T],
) -> list[T]:
    columns = tuple(name for name, _ in spec)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise CsvError(
            source, [f"line 1: the file is empty; expected a header {','.join(columns)}"]
        )
    names = [h.strip() for h in header]
    if sorted(names) != sorted(columns):
        raise CsvError(
            source,
            [f"line 1: header is {','.join(names)!r}; expected the columns {','.join(columns)}"],
        )
    plan = [(names.index(name), name, parse) for name, parse in spec]
    width = len(names)
    problems: list[str] = []
    out: list[T] = []
    for cells in reader:
        if len(cells) != width:
            if cells and any(c.strip() for c in cells):
                problems.append(f"line {reader.line_num}: {len(cells)} fields, expected {width}")
            continue
        parts: list[Any] = []
        for index, name, parse in plan:
            try:
                parts.append(parse(cells[index]))
            except _Cell as exc:
                problems.append(f"line {reader.line_num}, column {name}: {exc}")
        if len(parts) == width and not problems:
            out.append(make(*parts))
    if problems:
        raise CsvError(source, problems)
    return out


def parse_intervals(lines: Iterable[str], source: str = "intervals") -> list[IntervalRead]:
    spec = (
        ("meter_id", _cached(_text)),
        ("channel", _cached(_text)),
        ("interval_end", _cached(_time)),
        ("value", _cached(_decimal)),
        ("status", _cached(_status)),
    )
    return _rows(lines, source, spec, IntervalRead)


def parse_registers(lines: Iterable[str], source: str = "registers") -> list[RegisterRead]:
    spec = (
        ("meter_id", _cached(_text)),
        ("obis", _cached(_obis)),
        ("read_at", _cached(_time)),
        ("value", _decimal),
    )
    return _rows(lines, source, spec, RegisterRead)
