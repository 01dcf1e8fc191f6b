"""DLMS unit codes (IEC 62056-6-2, ``unit`` enumeration) and their symbols."""

from __future__ import annotations

UNIT_SYMBOLS: dict[int, str] = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "°",
    9: "°C",
    10: "currency",
    11: "m",
    12: "m/s",
    13: "m3",
    14: "m3",
    15: "m3/h",
    16: "m3/h",
    17: "m3/d",
    18: "m3/d",
    19: "l",
    20: "kg",
    21: "N",
    22: "Nm",
    23: "Pa",
    24: "bar",
    25: "J",
    26: "J/h",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    36: "V/m",
    37: "F",
    38: "Ω",
    39: "Ωm2/m",
    40: "Wb",
    41: "T",
    42: "A/m",
    43: "H",
    44: "Hz",
    45: "1/(Wh)",
    46: "1/(varh)",
    47: "1/(VAh)",
    48: "V2h",
    49: "A2h",
    50: "kg/s",
    51: "S",
    52: "K",
    56: "%",
    57: "Ah",
}
NO_UNIT = frozenset({0, 254, 255})  # other unit, count, unitless


def unit_symbol(code: int) -> str | None:
    if code in NO_UNIT:
        return None
    return UNIT_SYMBOLS.get(code, f"unit {code}")
