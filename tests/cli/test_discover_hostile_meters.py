"""``headend profiles discover`` against meters that answer with hostile data, over the TCP
wrapper and HDLC: one line naming ``decode_error``, exit 1, nothing on stdout, no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.protocol import axdr
from tests.cli.test_profiles_discover import run
from tests.protocol.hostile_values import Answer, hostile_meter

pytestmark = pytest.mark.timeout(60)
ASSOCIATION = Obis.parse("0.0.40.0.0.255")
LOAD_PROFILE = Obis.parse("1.0.99.1.0.255")
A_PLUS = Obis.parse("1.0.1.8.0.255")

HOSTILE: dict[str, dict[tuple[Obis, int], Answer]] = {
    "an object list of 10,000 nested arrays": {(ASSOCIATION, 2): b"\x01\x01" * 10_000 + b"\x00"},
    "an object list claiming 4 billion entries": {
        (ASSOCIATION, 2): b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 16
    },
    "an object list entry with a 5-byte logical name": {
        (ASSOCIATION, 2): axdr.array(
            axdr.structure(axdr.long_unsigned(3), axdr.unsigned(0), axdr.octet_string(b"12345"))
        )
    },
    "capture objects that are no array": {(LOAD_PROFILE, 3): axdr.unsigned(7)},
    "a capture period of ten days": {(LOAD_PROFILE, 4): axdr.double_long_unsigned(864_000)},
    "a scaler of 2^62": {
        (A_PLUS, 3): axdr.structure(
            bytes((axdr.LONG64,)) + (2**62).to_bytes(8, "big"), axdr.enum(30)
        )
    },
}


@pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC], ids=lambda t: t.value)
@pytest.mark.parametrize("answers", list(HOSTILE.values()), ids=list(HOSTILE))
def test_discover_of_a_meter_sending_hostile_data_ends_in_one_decode_error_line(
    tmp_path: Path, transport: Transport, answers: dict[tuple[Obis, int], Answer]
) -> None:
    path = tmp_path / "hostile.yaml"
    with hostile_meter(transport, answers) as fleet:
        port = fleet.sim.endpoint_of("X1").address.rpartition(":")[2]
        code, out, err = run(
            "discover", "--host", "127.0.0.1", "--port", port, "--transport", transport.value,
            "--name", "hostile", "-o", str(path), "--timeout", "3",
        )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith("headend profiles discover: decode_error: ")
    assert len(err.splitlines()) == 1
    assert not path.exists()
