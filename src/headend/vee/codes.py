"""Compact integer codes for arrays: rule bits, quality codes, method codes, status flags."""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from headend.domain.quality import Flag, Quality, flags_from_amr_status

VALIDATION_RULES: tuple[str, ...] = (
    "V01", "V02", "V03", "V04", "V05", "V06", "V07",
    "V08", "V09", "V10", "V11", "V12", "V13", "V14",
)  # fmt: skip
ESTIMATION_METHODS: tuple[str, ...] = ("E0", "E2", "E3", "E4", "E5", "E9")
EDIT_METHOD = "E10"

# One bit per validation rule in the per-interval ``rules`` bit set.
RULE_BIT: dict[str, int] = {rule: 1 << i for i, rule in enumerate(VALIDATION_RULES)}

QUALITIES: tuple[Quality, ...] = tuple(Quality)
QUALITY_CODE: dict[Quality, int] = {q: i for i, q in enumerate(QUALITIES)}
Q_VALID = QUALITY_CODE[Quality.VALID]
Q_SUSPECT = QUALITY_CODE[Quality.SUSPECT]
Q_MISSING = QUALITY_CODE[Quality.MISSING]

# Method codes in the per-interval ``method`` array; 0 means "not estimated".
METHOD_NONE = 0
METHOD_CODE: dict[str, int] = {"E2": 2, "E3": 3, "E4": 4, "E5": 5, "E9": 9}
METHOD_NAME: dict[int, str] = {code: name for name, code in METHOD_CODE.items()}
METHOD_QUALITY: dict[str, Quality] = {
    "E2": Quality.EST_SCALED_TO_REGISTER,
    "E3": Quality.EST_LINEAR,
    "E4": Quality.EST_LIKEDAY,
    "E5": Quality.EST_AVG_LIKEDAY,
    "E9": Quality.EST_ZERO,
    EDIT_METHOD: Quality.EDITED,
}


@cache
def rule_ids(bits: int) -> tuple[str, ...]:
    """The rule ids whose bits are set, in catalogue order."""
    return tuple(rule for rule, bit in RULE_BIT.items() if bits & bit)


def _flag_table() -> NDArray[np.uint16]:
    table = np.zeros(256, dtype=np.uint16)
    for status in range(256):
        table[status] = int(flags_from_amr_status(status))
    return table


# AMR status byte -> informational flag bits, for vectorised lookup.
FLAG_TABLE: NDArray[np.uint16] = _flag_table()

F_POWER_FAIL = int(Flag.POWER_FAIL)
F_CLOCK_ADJUSTED = int(Flag.CLOCK_ADJUSTED)
F_CLOCK_INVALID = int(Flag.CLOCK_INVALID)
F_DATA_NOT_VALID = int(Flag.DATA_NOT_VALID)
F_CRITICAL_ERROR = int(Flag.CRITICAL_ERROR)
F_PARTIAL = int(Flag.PARTIAL)
