from __future__ import annotations

import pytest

from headend.domain.obis import Obis, ObisError


@pytest.mark.parametrize("text", ["1.0.1.8.0.255", "1-0:1.8.0.255", "1-0:1.8.0", "1-0:1.8.0*255"])
def test_the_usual_spellings_of_an_obis_code_parse_to_the_same_code(text: str) -> None:
    assert Obis.parse(text) == Obis(1, 0, 1, 8, 0, 255)


def test_an_obis_code_round_trips_through_its_six_bytes() -> None:
    code = Obis.parse("0.0.96.1.0.255")
    assert code.to_bytes() == bytes.fromhex("0000600100ff")
    assert Obis.from_bytes(code.to_bytes()) == code
    assert str(code) == "0.0.96.1.0.255"


@pytest.mark.parametrize("text", ["1.0.1.8", "1.0.1.8.0.256", "a.b.c.d.e.f", ""])
def test_a_malformed_obis_code_is_refused(text: str) -> None:
    with pytest.raises(ObisError):
        Obis.parse(text)
