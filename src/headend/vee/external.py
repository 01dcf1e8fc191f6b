"""Quality states in the vocabularies of the export formats (catalogue section c).

NEM12 gives a quality flag plus a two-digit method for substitutes (``S17``); ``None`` means the
state is not exported as such (a SUSPECT value is held back, a MISSING one is ``N`` with no
value). ESPI / Green Button ``QualityOfReading`` is a small integer; ``None`` there means the
reading is left out. IEC 61968-9 ReadingQuality codes are ``system.category.index``, system 3
(the MDM) for VEE outcomes and 2 (the head-end) for collection facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from headend.domain.quality import Quality


@dataclass(frozen=True, slots=True)
class ExternalCodes:
    nem12: str | None
    espi: int | None
    iec: str


EXTERNAL_CODES: dict[Quality, ExternalCodes] = {
    Quality.RAW: ExternalCodes(None, 14, "2.0.0"),
    Quality.VALID: ExternalCodes("A", 0, "3.0.1"),
    Quality.VERIFIED: ExternalCodes("A", 18, "3.10.1"),
    Quality.SUSPECT: ExternalCodes(None, 10, "3.5.258"),
    Quality.MISSING: ExternalCodes("N", None, "2.5.259"),
    Quality.EST_LINEAR: ExternalCodes("S17", 9, "3.8.0"),
    Quality.EST_LIKEDAY: ExternalCodes("S14", 8, "3.8.0"),
    Quality.EST_AVG_LIKEDAY: ExternalCodes("S15", 8, "3.8.0"),
    Quality.EST_SCALED_TO_REGISTER: ExternalCodes("S24", 11, "3.11.0"),
    Quality.EST_PREV_YEAR: ExternalCodes("S23", 8, "3.8.0"),
    Quality.EST_PROFILE: ExternalCodes("S25", 16, "3.8.0"),
    Quality.EST_ZERO: ExternalCodes("S19", 11, "3.8.0"),
    Quality.EDITED: ExternalCodes("S", 7, "3.7.0"),  # NEM12 adds the agreed method and reason
    Quality.FORWARD_EST: ExternalCodes("E", 12, "3.12.0"),  # NEM12 adds the method, e.g. E52
}

# IEC 61968-9 codes of the validation rules that map to a specific category-6 index.
RULE_IEC: dict[str, str] = {
    "V12": "3.6.1",  # zero usage
    "V13": "3.6.2",  # usage on an inactive meter
    "V14": "3.6.9",  # TOU sum check
}


def external_codes(quality: Quality) -> ExternalCodes:
    return EXTERNAL_CODES[quality]
