"""Named quirks a simulated meter plays, as real meters do: pinned to the bytes it answers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headend.domain.obis import Obis
from headend.protocol.cosem_time import TimePolicy
from headend.protocol.xdlms import (
    AttributeRef,
    entry_access,
    get_request,
    get_request_with_list,
    range_access,
)
from headend.simulator import cosem
from headend.simulator.fleet import FleetError, load_fleet, save_fleet
from headend.simulator.server import AssociationSession
from headend.simulator.spec import PDU_OVERRUN, Quirk

from .server_support import make_client, make_meter, make_spec

A_PLUS = AttributeRef(3, Obis.parse("1.0.1.8.0.255"), 2)
MAX_DEMAND = AttributeRef(4, Obis.parse("1.0.1.6.0.255"), 2)
SERIAL = AttributeRef(1, Obis.parse("0.0.96.1.0.255"), 2)
WITHOUT_MAX_DEMAND = ("1.0.1.6.0.255",)


def associated(*quirks: Quirk) -> AssociationSession:
    meter = make_meter(make_spec(quirks=quirks, missing_objects=WITHOUT_MAX_DEMAND))
    client, transport = make_client(meter)
    client.associate()
    return transport.session


def test_a_meter_without_maximum_demand_answers_object_undefined_for_it() -> None:
    session = associated()
    assert session.device.find(MAX_DEMAND.obis) is None
    assert session.handle(get_request(0xC1, MAX_DEMAND)) == bytes.fromhex("c401c10104")


def test_a_meter_with_hardware_fault_for_missing_answers_hardware_fault() -> None:
    session = associated(Quirk.HARDWARE_FAULT_FOR_MISSING)
    assert session.handle(get_request(0xC1, MAX_DEMAND)) == bytes.fromhex("c401c10101")


def test_a_meter_with_wrong_invoke_id_on_error_answers_errors_with_another_invoke_id() -> None:
    session = associated(Quirk.WRONG_INVOKE_ID_ON_ERROR)
    assert session.handle(get_request(0xC1, MAX_DEMAND)) == bytes.fromhex("c401c20104")
    assert session.handle(get_request(0xC5, MAX_DEMAND)) == bytes.fromhex("c401c10104")
    value = session.handle(get_request(0xC3, A_PLUS))
    assert value is not None and value[:4] == bytes.fromhex("c401c300")


def test_a_short_list_meter_declares_every_result_and_stops_before_the_first_failure() -> None:
    session = associated(Quirk.SHORT_LIST_AFTER_FAILURE)
    answer = session.handle(
        get_request_with_list(0xC1, [(A_PLUS, None), (MAX_DEMAND, None), (SERIAL, None)])
    )
    assert answer is not None and answer[:5] == bytes.fromhex("c403c10300")
    _, end = cosem.decode(answer, 5)
    assert end == len(answer)  # one result carried of the three declared


def test_a_short_list_meter_answers_a_list_without_failures_whole() -> None:
    session = associated(Quirk.SHORT_LIST_AFTER_FAILURE)
    answer = session.handle(get_request_with_list(0xC1, [(A_PLUS, None), (SERIAL, None)]))
    assert answer is not None and answer[:5] == bytes.fromhex("c403c10200")
    _, end = cosem.decode(answer, 5)
    assert answer[end] == 0 and cosem.decode(answer, end + 1)[1] == len(answer)


def test_a_meter_refusing_its_object_list_answers_read_write_denied_for_it_alone() -> None:
    association = Obis.parse("0.0.40.0.0.255")
    object_list = AttributeRef(15, association, 2)
    plain = associated().handle(get_request(0xC1, object_list))
    # the list is longer than the PDU: its first block, not an error
    assert plain is not None and plain[:4] == bytes.fromhex("c402c100")
    session = associated(Quirk.OBJECT_LIST_REFUSED)
    assert session.handle(get_request(0xC1, object_list)) == bytes.fromhex("c401c10103")
    name = session.handle(get_request(0xC2, AttributeRef(15, association, 1)))
    assert name == bytes.fromhex("c401c200090600002800 00ff".replace(" ", ""))


def test_a_meter_with_release_never_answered_stays_silent_on_release() -> None:
    session = associated(Quirk.RELEASE_NEVER_ANSWERED)
    assert session.handle(bytes.fromhex("6200")) is None
    assert session.released


def test_a_meter_with_rlre_wrong_length_declares_one_octet_too_many() -> None:
    session = associated(Quirk.RLRE_WRONG_LENGTH)
    assert session.handle(bytes.fromhex("6200")) == bytes.fromhex("6304800100")


def test_quirks_and_missing_objects_are_saved_in_the_fleet_file_and_loaded_back(
    tmp_path: Path,
) -> None:
    spec = replace(
        make_spec(),
        quirks=(Quirk.SHORT_LIST_AFTER_FAILURE, Quirk.WRONG_INVOKE_ID_ON_ERROR),
        missing_objects=WITHOUT_MAX_DEMAND,
    )
    save_fleet(tmp_path / "fleet.json", [spec])
    document = json.loads((tmp_path / "fleet.json").read_text())
    assert document["meters"][0]["quirks"] == [
        "short_list_after_failure",
        "wrong_invoke_id_on_error",
    ]
    assert document["meters"][0]["missing_objects"] == ["1.0.1.6.0.255"]
    assert load_fleet(tmp_path / "fleet.json") == [spec]


@pytest.mark.parametrize(
    ("field", "value"), [("quirks", ["answers_in_latin"]), ("missing_objects", ["1.0.1"])]
)
def test_an_unknown_quirk_or_a_bad_missing_object_is_refused_naming_the_meter(
    tmp_path: Path, field: str, value: list[str]
) -> None:
    save_fleet(tmp_path / "fleet.json", [make_spec()])
    document = json.loads((tmp_path / "fleet.json").read_text())
    document["meters"][0][field] = value
    (tmp_path / "fleet.json").write_text(json.dumps(document))
    with pytest.raises(FleetError, match="SIM00000042"):
        load_fleet(tmp_path / "fleet.json")


LOAD_PROFILE = AttributeRef(7, Obis.parse("1.0.99.1.0.255"), 2)
CLOCK = AttributeRef(8, Obis.parse("0.0.1.0.0.255"), 2)


def test_a_meter_ignoring_the_pdu_size_sends_blocks_past_it_by_a_bounded_amount() -> None:
    session = associated(Quirk.PDU_IGNORED)
    pdu = session.negotiated_max_pdu
    answer = session.handle(get_request(0xC1, LOAD_PROFILE))
    assert answer is not None and answer[:2] == bytes.fromhex("c402")  # the first block
    assert pdu < len(answer) <= pdu + PDU_OVERRUN


def test_a_meter_keeping_its_pdu_size_sends_blocks_within_it() -> None:
    session = associated()
    answer = session.handle(get_request(0xC1, LOAD_PROFILE))
    assert answer is not None and answer[:2] == bytes.fromhex("c402")
    assert len(answer) <= session.negotiated_max_pdu


def test_a_meter_with_deviation_unspecified_sends_its_clock_with_deviation_8000() -> None:
    answer = associated(Quirk.DEVIATION_UNSPECIFIED).handle(get_request(0xC1, CLOCK))
    # c4 01 c1 00, then an octet string of 12: 09 0c, then the date-time
    assert answer is not None and answer[:6] == bytes.fromhex("c401c100090c")
    assert answer[6 + 9 : 6 + 11] == bytes.fromhex("8000")
    plain = associated().handle(get_request(0xC1, CLOCK))
    assert plain is not None and plain[6 + 9 : 6 + 11] == (-420).to_bytes(2, "big", signed=True)


def test_a_meter_without_selective_access_refuses_range_and_entry_access_to_its_buffers() -> None:
    session = associated(Quirk.NO_SELECTIVE_ACCESS)
    now = datetime.now(UTC)
    by_range = range_access(CLOCK, now - timedelta(hours=2), now, TimePolicy())
    for access in (by_range, entry_access(1, 2)):
        assert session.handle(get_request(0xC1, LOAD_PROFILE, access)) == bytes.fromhex(
            "c401c101fa"
        )
    whole = session.handle(get_request(0xC2, LOAD_PROFILE))
    assert whole is not None and whole[:2] in (bytes.fromhex("c401"), bytes.fromhex("c402"))
    assert whole[3] == 0  # a value (or its first block), not an error
