"""The stored form of a raw read's payload: the JSON a meter's answer was landed as, deflated,
with its load-profile rows laid out by column first.

A payload is mostly its load profile: per row an ISO timestamp, a status byte and each
channel's register as a decimal string, which repeat almost entirely from one row to the next.
``encode`` lays those rows out as columns of small numbers (seconds since the previous row,
the UTC offset, the status, and per channel the difference of the register's digits from
the previous row's, with its exponent) and deflates the whole. ``decode`` rebuilds the JSON
value exactly: ``encode`` checks that it does, and where a payload does not fit the layout (a
timestamp that is not an ISO instant, a value that is not a decimal, rows with channels in
another order), it deflates the JSON as it is. Either way what is read back is equal, key
order included, to what was landed.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

PLAIN, COLUMNS = 1, 2  # the first byte: the JSON deflated as it is, or with rows as columns
_LEVEL = 9
_NAIVE_EPOCH = datetime(1970, 1, 1)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode(payload: Any) -> bytes:
    """The stored form of a JSON value."""
    laid_out = _columns_of(payload)
    if laid_out is not None:
        packed = bytes([COLUMNS]) + zlib.compress(_dumps(laid_out), _LEVEL)
        try:
            same = decode(packed) == payload
        except (ValueError, TypeError, KeyError, InvalidOperation, OverflowError, OSError):
            same = False
        if same:
            return packed
    return bytes([PLAIN]) + zlib.compress(_dumps(payload), _LEVEL)


def decode(data: bytes) -> Any:
    """The JSON value ``encode`` stored; anything else raises ``ValueError``."""
    if not data or data[0] not in (PLAIN, COLUMNS):
        raise ValueError("not a stored payload of a known format")
    try:
        value = json.loads(zlib.decompress(data[1:]))
    except (zlib.error, json.JSONDecodeError) as exc:
        raise ValueError(f"a stored payload does not decode: {exc}") from exc
    if data[0] == PLAIN:
        return value
    return _rows_of(value)


# -- the load profile's rows as columns ---------------------------------------------------------


def _columns_of(payload: Any) -> Any:
    """``payload`` with its load-profile rows as columns, or None if they do not fit."""
    if not isinstance(payload, dict):
        return None
    profile = payload.get("load_profile")
    if not isinstance(profile, dict) or not isinstance(profile.get("rows"), list):
        return None
    rows = profile["rows"]
    if not rows:
        return None
    try:
        return {**payload, "load_profile": {**profile, "rows": _laid_out(rows)}}
    except (ValueError, TypeError, KeyError, InvalidOperation, OverflowError, OSError):
        return None


def _split(text: str) -> tuple[int, int]:
    """A decimal's text as its whole number of digits and exponent: ``"-12.50"`` is
    (-1250, -2). Plain notation is split as text; anything else goes through ``Decimal``."""
    if not isinstance(text, str):
        raise TypeError("a value that is not a decimal's text")
    head, dot, tail = text.partition(".")
    if head.removeprefix("-").isdecimal() and (not dot or tail.isdecimal()):
        return int(head + tail), -len(tail)
    number = Decimal(text)
    if str(number) != text or not number.is_finite():
        raise ValueError("a value that is not a plain decimal")
    sign, coefficient, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    whole = int("".join(map(str, coefficient)) or "0")
    return (-whole if sign else whole), exponent


def _text(whole: int, exponent: int, negative: bool) -> str:
    """The text ``str(Decimal)`` gives a decimal of these digits, exponent and sign."""
    digits = str(abs(whole))
    if exponent == 0:
        text = digits
    elif exponent < 0 and len(digits) - 1 + exponent >= -6:  # Decimal's plain notation
        places = -exponent
        if len(digits) <= places:
            digits = "0" * (places - len(digits) + 1) + digits
        text = f"{digits[:-places]}.{digits[-places:]}"
    else:
        return str(Decimal((int(negative), tuple(map(int, digits)), exponent)))
    return f"-{text}" if negative else text


def _laid_out(rows: list[Any]) -> dict[str, Any]:
    first = rows[0]
    names = list(first[2])
    steps, offsets, statuses = [], [], []
    digits: dict[str, list[int]] = {name: [] for name in names}
    exponents: dict[str, list[int]] = {name: [] for name in names}
    previous_second = 0
    previous_digits = dict.fromkeys(names, 0)
    for end, status, values in rows:
        if not isinstance(end, str) or list(values) != names:
            raise ValueError("a row that does not fit the layout")
        at = datetime.fromisoformat(end)
        offset = at.utcoffset()
        if offset is None or at.microsecond:
            raise ValueError("a timestamp that is not an ISO instant of whole seconds")
        second = int(at.timestamp())  # what does not come back as it was, encode refuses
        steps.append(second - previous_second)
        previous_second = second
        offsets.append(int(offset.total_seconds()))
        statuses.append(status)
        for name in names:
            whole, exponent = _split(values[name])
            digits[name].append(whole - previous_digits[name])
            previous_digits[name] = whole
            exponents[name].append(exponent)
    return {
        "step": steps,
        "offset": _runs(offsets),
        "status": _runs(statuses),
        "names": names,
        "digits": [digits[name] for name in names],
        "exponent": [_runs(exponents[name]) for name in names],
        "negative_zero": [
            [i for i, (_, _, v) in enumerate(rows) if v[name].startswith("-0")] for name in names
        ],
    }


def _runs(values: list[Any]) -> list[list[Any]]:
    """[value, count] runs."""
    out: list[list[Any]] = []
    for value in values:
        if out and out[-1][0] == value:
            out[-1][1] += 1
        else:
            out.append([value, 1])
    return out


def _expanded(runs: list[list[Any]]) -> list[Any]:
    return [value for value, count in runs for _ in range(count)]


def _rows_of(value: dict[str, Any]) -> Any:
    profile = value["load_profile"]
    laid = profile["rows"]
    offsets = _expanded(laid["offset"])
    statuses = _expanded(laid["status"])
    names = laid["names"]
    exponents = [_expanded(runs) for runs in laid["exponent"]]
    negative_zero = [set(rows) for rows in laid["negative_zero"]]
    zones: dict[int, timezone] = {}
    rows: list[Any] = []
    second = 0
    wholes = [0] * len(names)
    for i, step in enumerate(laid["step"]):
        second += step
        offset = offsets[i]
        zone = zones.get(offset)
        if zone is None:
            zone = zones[offset] = timezone(timedelta(seconds=offset))
        try:
            at = datetime.fromtimestamp(second, zone)
        except (ValueError, OverflowError, OSError):  # far from now: the slower arithmetic
            at = (_NAIVE_EPOCH + timedelta(seconds=second + offset)).replace(tzinfo=zone)
        values: dict[str, str] = {}
        for k, name in enumerate(names):
            wholes[k] += laid["digits"][k][i]
            values[name] = _text(wholes[k], exponents[k][i], wholes[k] < 0 or i in negative_zero[k])
        rows.append([at.isoformat(), statuses[i], values])
    return {**value, "load_profile": {**profile, "rows": rows}}
