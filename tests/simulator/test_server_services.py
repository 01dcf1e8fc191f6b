"""GET, SET and ACTION on the simulated meter's objects, read by dlms-cosem's own client and
compared with what the consumption model says."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dlms_cosem import cosem as dlms_cosem_objects
from dlms_cosem import enumerations, exceptions
from dlms_cosem.client import ActionError, DataResultError
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.protocol import xdlms

from headend.domain.enums import AuthLevel
from headend.simulator import cosem
from headend.simulator.cosem import EntrySelector
from headend.simulator.spec import Fault, FaultKind

from .server_support import (
    NOW,
    attribute,
    drift,
    make_client,
    make_meter,
    make_spec,
    method,
    scaled,
    value,
)

pytestmark = pytest.mark.timeout(60)

CLOCK = "0.0.1.0.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
BILLING_PROFILE = "0.0.98.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"
PROFILES = ["single_phase_residential", "three_phase_tou"]


@pytest.mark.parametrize("profile", PROFILES)
def test_the_clock_reads_as_the_meters_time_with_its_drift(profile: str) -> None:
    meter = make_meter(make_spec(profile, faults=(drift(300),)))
    client, _ = make_client(meter)
    client.associate()

    raw = value(client.get(attribute(8, CLOCK, 2))).as_bytes()

    context = meter.device.context(2)
    assert context.decode_time(raw) == meter.data.meter_time(NOW) == NOW + timedelta(seconds=300)
    assert raw[9:11] == (b"\xfe\x5c" if profile == PROFILES[0] else b"\x80\x00")


@pytest.mark.parametrize("profile", PROFILES)
def test_registers_and_their_scalers_give_the_models_energy(profile: str) -> None:
    meter = make_meter(make_spec(profile))
    client, _ = make_client(meter)
    client.associate()
    truth = meter.data.registers(NOW)

    for spec in meter.profile.objects:
        if spec.class_id != 3:
            continue
        raw = client.get(attribute(3, str(spec.obis), 2))
        scaler, unit = (
            v.as_int() for v in value(client.get(attribute(3, str(spec.obis), 3))).items()
        )
        assert (scaler, unit) == (spec.scaler, spec.unit)
        assert scaled(value(raw), scaler) == truth[spec.quantity.value], spec.name


def test_the_three_phase_meter_counts_tens_of_wh() -> None:
    meter = make_meter(make_spec("three_phase_tou"))
    client, _ = make_client(meter)
    client.associate()

    raw = value(client.get(attribute(3, "1.0.1.8.0.255", 2))).as_int()

    assert raw * 10 == meter.data.registers(NOW)["A+"]
    assert meter.data.registers(NOW)["A+"] % 10 == 0


def test_maximum_demand_has_its_capture_time() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    demand = value(client.get(attribute(4, "1.0.1.6.0.255", 2))).as_int()
    when = value(client.get(attribute(4, "1.0.1.6.0.255", 5))).as_bytes()

    assert (demand, meter.device.context(2).decode_time(when)) == meter.data.max_demand(NOW)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_load_profile_by_time_range_is_the_models_intervals(profile: str) -> None:
    meter = make_meter(make_spec(profile))
    client, _ = make_client(meter)
    client.associate()
    start, end = NOW - timedelta(days=1), NOW
    clock = CaptureObject(attribute(8, CLOCK, 2))
    selection = RangeDescriptor(restricting_object=clock, from_value=start, to_value=end)

    rows = value(client.get(attribute(7, LOAD_PROFILE, 2), selection)).items()

    context = meter.device.context(2)
    truth = [row for row in meter.data.intervals(start - timedelta(microseconds=1), end)]
    period = meter.spec.capture_period_s
    assert len(rows) == len(truth) == 86400 // period
    scaler = meter.profile.objects[3].scaler or 0
    for row, expected in zip(rows, truth, strict=True):
        cells = row.items()
        assert context.decode_time(cells[0].as_bytes()) == expected.end
        assert cells[1].as_int() == expected.status
        assert scaled(cells[2], scaler) == expected.registers["A+"]
        assert scaled(cells[3], scaler) == expected.registers["A-"]
    assert len(rows[0].items()) == len(meter.profile.load_profile.capture_objects)


def test_the_load_profile_by_entry_counts_from_the_oldest_entry() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()
    in_use = value(client.get(attribute(7, LOAD_PROFILE, 7))).as_int()

    selection = EntrySelector(in_use - 3, 0, 1, 3)
    rows = value(client.get(attribute(7, LOAD_PROFILE, 2), selection)).items()

    buffer = meter.data.intervals(meter.data.first_interval_end(NOW) - timedelta(seconds=1), NOW)
    assert in_use == len(buffer)
    assert len(rows) == 4
    assert [len(row.items()) for row in rows] == [3, 3, 3, 3]
    context = meter.device.context(2)
    assert [context.decode_time(row.items()[0].as_bytes()) for row in rows] == [
        row.end for row in buffer[-4:]
    ]


def test_the_load_profile_describes_its_columns_and_period() -> None:
    meter = make_meter(make_spec("three_phase_tou"))
    client, _ = make_client(meter)
    client.associate()

    columns = value(client.get(attribute(7, LOAD_PROFILE, 3))).items()
    period = value(client.get(attribute(7, LOAD_PROFILE, 4))).as_int()
    capacity = value(client.get(attribute(7, LOAD_PROFILE, 8))).as_int()

    assert [cosem.CaptureRef.from_value(column).obis.c for column in columns] == [1, 96, 1, 2, 3]
    assert period == 1800
    assert capacity == meter.profile.load_profile.profile_entries


def test_the_billing_profile_is_the_models_daily_snapshots() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    rows = value(client.get(attribute(7, BILLING_PROFILE, 2))).items()

    truth = meter.data.billing_rows(NOW - timedelta(days=63), NOW)
    context = meter.device.context(2)
    assert len(rows) == len(truth) > 0
    last, expected = rows[-1].items(), truth[-1]
    assert context.decode_time(last[0].as_bytes()) == expected.time
    assert [cell.as_int() for cell in last[1:6]] == [
        expected.registers[name] for name in ("A+", "A+T1", "A+T2", "A+T3", "A-")
    ]
    assert last[6].as_int() == expected.max_demand_w
    assert context.decode_time(last[7].as_bytes()) == expected.max_demand_time


def test_a_response_longer_than_the_pdu_comes_in_blocks_the_client_reassembles() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.HLS_GMAC))
    client, transport = make_client(meter, max_pdu_size=128)
    client.associate()

    raw = client.get(attribute(7, LOAD_PROFILE, 2))

    blocks = [r for r in transport.received if len(r) > 20]
    assert len(blocks) > 100
    assert max(len(r) for r in transport.received) <= 128
    assert len(value(raw).items()) == value(client.get(attribute(7, LOAD_PROFILE, 7))).as_int()


def test_get_with_list_answers_each_item_even_an_unknown_one() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()
    items = [
        dlms_cosem_objects.CosemAttributeWithSelection(attribute(3, "1.0.1.8.0.255", 2), None),
        dlms_cosem_objects.CosemAttributeWithSelection(attribute(3, "1.0.9.8.0.255", 2), None),
        dlms_cosem_objects.CosemAttributeWithSelection(attribute(1, "0.0.96.1.0.255", 2), None),
    ]

    response = client.get_many(items)

    assert isinstance(response, xdlms.GetResponseWithList)
    assert response.result == [
        meter.data.registers(NOW)["A+"],
        enumerations.DataAccessResult.OBJECT_UNDEFINED,
        b"SIM00000042",
    ]


def test_a_model_without_get_with_list_refuses_it() -> None:
    meter = make_meter(make_spec("three_phase_tou"))
    client, _ = make_client(meter)
    client.associate()
    items = [dlms_cosem_objects.CosemAttributeWithSelection(attribute(8, CLOCK, 2), None)]

    with pytest.raises(exceptions.DlmsClientException):
        client.get_many(items)


def test_setting_the_clock_moves_the_meters_time() -> None:
    meter = make_meter(make_spec(faults=(drift(-120),)))
    client, _ = make_client(meter)
    client.associate()
    context = meter.device.context(2)

    response = client.set(attribute(8, CLOCK, 2), context.encode_time(NOW))
    meter.clock[0] = NOW + timedelta(seconds=10)
    after = context.decode_time(value(client.get(attribute(8, CLOCK, 2))).as_bytes())

    assert response.result is enumerations.DataAccessResult.SUCCESS
    assert after == NOW + timedelta(seconds=10)


def test_shifting_the_clock_adds_seconds() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    client.action(method(8, CLOCK, 6), cosem.long(-30))

    raw = value(client.get(attribute(8, CLOCK, 2))).as_bytes()
    assert meter.device.context(2).decode_time(raw) == NOW - timedelta(seconds=30)


def test_remote_disconnect_and_reconnect_switch_the_output() -> None:
    meter = make_meter(make_spec(auth=AuthLevel.LLS))
    client, _ = make_client(meter)
    client.associate()
    control = "0.0.96.3.10.255"

    client.action(method(70, control, 1), cosem.integer(0))
    after_disconnect = client.get(attribute(70, control, 2)), client.get(attribute(70, control, 3))
    client.action(method(70, control, 2), cosem.integer(0))
    after_reconnect = client.get(attribute(70, control, 2))

    assert after_disconnect == (cosem.boolean(False), cosem.enum(0))
    assert after_reconnect == cosem.boolean(True)


def test_an_unknown_object_answers_object_undefined() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    with pytest.raises(DataResultError, match="OBJECT_UNDEFINED"):
        client.get(attribute(3, "1.0.31.7.0.255", 2))


@pytest.mark.parametrize(
    ("class_id", "obis", "index", "result"),
    [
        (3, "1.0.1.8.0.255", 9, "OBJECT_UNDEFINED"),
        (1, "1.0.1.8.0.255", 2, "OBJECT_CLASS_INCONSISTENT"),
        (15, "0.0.40.0.0.255", 7, "READ_WRITE_DENIED"),
    ],
)
def test_a_bad_attribute_answers_a_data_access_result(
    class_id: int, obis: str, index: int, result: str
) -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    with pytest.raises(DataResultError, match=result):
        client.get(attribute(class_id, obis, index))


def test_writing_a_register_is_denied() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    response = client.set(attribute(3, "1.0.1.8.0.255", 2), cosem.double_long_unsigned(0))

    assert response.result is enumerations.DataAccessResult.READ_WRITE_DENIED


def test_a_model_that_refuses_range_access_answers_other_reason() -> None:
    meter = make_meter()
    quirks = meter.profile.quirks.model_copy(update={"supports_range_access": False})
    profile = meter.profile.model_copy(update={"quirks": quirks})
    meter = make_meter(meter.spec)
    from headend.simulator.server import LogicalDevice

    meter.device = LogicalDevice(meter.spec, meter.data, profile, lambda: NOW)
    client, _ = make_client(meter)
    client.associate()
    clock = CaptureObject(attribute(8, CLOCK, 2))
    start = NOW - timedelta(hours=2)
    selection = RangeDescriptor(restricting_object=clock, from_value=start, to_value=NOW)

    with pytest.raises(DataResultError, match="OTHER_REASON"):
        client.get(attribute(7, LOAD_PROFILE, 2), selection)
    rows = client.get(attribute(7, LOAD_PROFILE, 2), EntrySelector(1, 2))
    assert len(value(rows).items()) == 2


def test_an_outage_leaves_a_gap_a_power_down_status_and_two_events() -> None:
    outage = Fault(FaultKind.OUTAGE, {"hours": 6, "days_ago": 2, "hour": 10})
    meter = make_meter(make_spec(faults=(outage,)))
    client, _ = make_client(meter)
    client.associate()
    context = meter.device.context(2)

    rows = value(client.get(attribute(7, LOAD_PROFILE, 2))).items()
    events = value(client.get(attribute(7, EVENT_LOG, 2))).items()

    ends = [context.decode_time(row.items()[0].as_bytes()) for row in rows]
    gaps = [b - a for a, b in itertools.pairwise(ends) if b - a > timedelta(minutes=15)]
    assert gaps == [timedelta(hours=6, minutes=15)]
    flagged = [row.items()[1].as_int() for row in rows if row.items()[1].as_int()]
    assert flagged == [0x80]
    truth = meter.data.events(NOW - timedelta(days=12), NOW)
    assert [
        (context.decode_time(e.items()[0].as_bytes()), e.items()[1].as_int()) for e in events
    ] == [(row.time, row.code) for row in truth]
    assert [row.code for row in truth] == [1, 2]


def test_adjusting_to_the_nearest_quarter_hour_rounds_the_clock() -> None:
    meter = make_meter(make_spec(faults=(drift(200),)))
    client, _ = make_client(meter)
    client.associate()

    client.action(method(8, CLOCK, 1), cosem.integer(0))

    raw = value(client.get(attribute(8, CLOCK, 2))).as_bytes()
    assert meter.device.context(2).decode_time(raw) == NOW.replace(minute=15, second=0)


def test_an_unknown_method_answers_object_undefined() -> None:
    meter = make_meter()
    client, _ = make_client(meter)
    client.associate()

    with pytest.raises(ActionError, match="OBJECT_UNDEFINED"):
        client.action(method(70, "0.0.96.3.10.255", 9), cosem.integer(0))


def test_a_range_without_deviation_is_read_as_the_meters_local_time() -> None:
    meter = make_meter(make_spec("three_phase_tou"))
    client, _ = make_client(meter)
    client.associate()
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    start = datetime(2026, 11, 27, 0, 0)  # local midnight, sent with deviation 0x8000
    clock = CaptureObject(attribute(8, CLOCK, 2))
    selection = RangeDescriptor(restricting_object=clock, from_value=start, to_value=start)

    rows = value(client.get(attribute(7, LOAD_PROFILE, 2), selection)).items()

    assert len(rows) == 1
    cell = rows[0].items()[0].as_bytes()
    assert cell[5:7] == b"\x00\x00" and cell[9:11] == b"\x80\x00"
    expected = start.replace(tzinfo=local).astimezone(UTC)
    assert meter.device.context(2).decode_time(cell) == expected


def test_asking_for_the_wrong_block_aborts_the_transfer() -> None:
    meter = make_meter()
    client, transport = make_client(meter, max_pdu_size=128)
    client.associate()
    session = transport.session
    request = xdlms.GetRequestNormal(cosem_attribute=attribute(7, LOAD_PROFILE, 2)).to_bytes()

    first = session.handle(request)
    wrong = session.handle(xdlms.GetRequestNext(block_number=5).to_bytes())
    after = session.handle(xdlms.GetRequestNext(block_number=1).to_bytes())

    assert isinstance(xdlms.GetResponseFactory.from_bytes(first), xdlms.GetResponseWithBlock)
    for answer, error in ((wrong, "DATA_BLOCK_NUMBER_INVALID"), (after, "NO_LONG_GET_IN_PROGRESS")):
        decoded = xdlms.GetResponseFactory.from_bytes(answer)
        assert isinstance(decoded, xdlms.GetResponseLastBlockWithError)
        assert decoded.error.name == error
