"""Every quality state has its codes in the export vocabularies."""

from __future__ import annotations

from headend.domain.quality import Quality
from headend.vee.external import external_codes


def test_every_quality_state_maps_to_the_export_vocabularies() -> None:
    for quality in Quality:
        assert external_codes(quality).iec.count(".") == 2


def test_substitutes_carry_their_nem12_method() -> None:
    assert external_codes(Quality.EST_LINEAR).nem12 == "S17"
    assert external_codes(Quality.EST_LIKEDAY).nem12 == "S14"
    assert external_codes(Quality.EST_ZERO).espi == 11
