"""Generating, saving and loading fleets; the fault language; the registry CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from headend.domain.enums import AuthLevel, Transport
from headend.simulator.faultspec import FaultRequest, FaultSpecError, parse_faults
from headend.simulator.fleet import (
    FleetError,
    FleetOptions,
    generate_fleet,
    load_fleet,
    save_fleet,
)
from headend.simulator.registry import COLUMNS, registry_csv
from headend.simulator.spec import FaultKind

HEADER = (
    "meter_id,service_point,customer_ref,gateway,gateway_kind,gateway_host,gateway_port,"
    "gateway_device,gateway_baud_rate,gateway_framing,gateway_max_sessions,gateway_site,"
    "transport,client_sap,server_logical,server_physical,auth,secret_ref,lls_password,"
    "hls_encryption_key,hls_authentication_key,device_profile,ct_ratio,vt_ratio,install_date,"
    "removal_date,status,tags"
)
TODAY = date(2026, 11, 27)


def fleet(meters: int = 20, **kw: object) -> FleetOptions:
    return FleetOptions(meters=meters, today=TODAY, **kw)  # type: ignore[arg-type]


def test_the_fault_language_reads_counts_percentages_and_parameters() -> None:
    requests = parse_faults("no_answer=2, slow=10%:delay_s=20,clock_drift=1:seconds=-90")
    assert requests == [
        FaultRequest(FaultKind.NO_ANSWER, count=2),
        FaultRequest(FaultKind.SLOW, percent=10.0, params={"delay_s": 20.0}),
        FaultRequest(FaultKind.CLOCK_DRIFT, count=1, params={"seconds": -90.0}),
    ]
    assert requests[1].meters(25) == 3  # a percentage rounds up to whole meters
    assert str(requests[1]) == "slow=10%:delay_s=20"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fire=1", "unknown fault"),
        ("slow", "expected slow=COUNT"),
        ("slow=many", "neither a count"),
        ("slow=1:seconds=3", "not a parameter of slow"),
        ("drop=1,drop=2", "given twice"),
        ("spike=150%", "neither a count"),
    ],
)
def test_a_bad_fault_text_is_refused_naming_the_item(text: str, problem: str) -> None:
    with pytest.raises(FaultSpecError, match=problem):
        parse_faults(text)


def test_the_same_seed_and_options_give_the_same_fleet() -> None:
    options = fleet(30, seed=7, transport="mixed", auth="mixed", faults=parse_faults("drop=3"))
    assert generate_fleet(options) == generate_fleet(options)
    assert generate_fleet(options) != generate_fleet(fleet(30, seed=8, transport="mixed"))


def test_faults_go_to_distinct_meters_and_wrong_ic_to_meters_with_hls() -> None:
    specs = generate_fleet(fleet(10, faults=parse_faults("no_answer=2,wrong_ic=3,outage=50%")))
    faulty = [s for s in specs if s.faults]
    assert len(faulty) == 10 and all(len(s.faults) == 1 for s in faulty)
    wrong_ic = [s for s in specs if s.fault(FaultKind.WRONG_IC)]
    assert len(wrong_ic) == 3
    assert all(s.auth is AuthLevel.HLS_GMAC and s.encryption_key for s in wrong_ic)


def test_a_fleet_cannot_ask_for_more_faulty_meters_than_it_has() -> None:
    with pytest.raises(FleetError, match="ask for 6 meters"):
        generate_fleet(fleet(5, faults=parse_faults("drop=3,slow=3")))


def test_wrapper_meters_get_a_port_each_or_share_one_by_wport() -> None:
    alone = generate_fleet(fleet(3, base_port=30000))
    assert [(s.port, s.server_logical) for s in alone] == [(30000, 1), (30001, 1), (30002, 1)]
    shared = generate_fleet(fleet(5, base_port=30000, per_port=3))
    assert [(s.port, s.server_logical) for s in shared] == [
        (30000, 16), (30000, 17), (30000, 18), (30001, 16), (30001, 17),
    ]  # fmt: skip


def test_hdlc_meters_share_a_bus_by_physical_address_and_serial_ones_a_pty_line() -> None:
    specs = generate_fleet(fleet(10, transport="mixed", bus_size=2, base_port=30000))
    kinds = [("serial" if s.serial_device else s.transport.value) for s in specs]
    assert kinds == ["wrapper"] * 6 + ["hdlc"] * 3 + ["serial"]
    hdlc = [(s.port, s.server_physical) for s in specs if s.transport is Transport.HDLC]
    assert hdlc[:3] == [(30006, 17), (30006, 18), (30007, 17)]
    assert specs[-1].serial_device and specs[-1].serial_device.endswith("line-0000")


def test_a_saved_fleet_loads_back_equal(tmp_path: Path) -> None:
    options = fleet(12, transport="mixed", auth="mixed", faults=parse_faults("slow=1,spike=2"))
    specs = generate_fleet(options)
    save_fleet(tmp_path / "fleet.json", specs, seed=1)
    assert load_fleet(tmp_path / "fleet.json") == specs


def test_a_meters_firmware_is_saved_and_loaded_back_and_an_older_file_gets_the_default(
    tmp_path: Path,
) -> None:
    specs = generate_fleet(fleet(2))
    upgraded = [replace(specs[0], firmware="2.4.1-rc"), specs[1]]
    save_fleet(tmp_path / "fleet.json", upgraded)
    assert [s.firmware for s in load_fleet(tmp_path / "fleet.json")] == ["2.4.1-rc", "1.0.0"]
    document = json.loads((tmp_path / "fleet.json").read_text())
    for meter in document["meters"]:
        del meter["firmware"]
    (tmp_path / "older.json").write_text(json.dumps(document))
    assert [s.firmware for s in load_fleet(tmp_path / "older.json")] == ["1.0.0", "1.0.0"]
    document["meters"][0]["firmware"] = 2
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(FleetError, match="firmware 2 is not a string"):
        load_fleet(tmp_path / "bad.json")


def test_a_file_that_is_not_a_fleet_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"format": 9}')
    with pytest.raises(FleetError, match=r"other\.json"):
        load_fleet(path)


def test_history_starts_at_local_midnight_history_days_before_the_fleet_was_made() -> None:
    [spec] = generate_fleet(fleet(1, history_days=40))
    assert spec.epoch is not None and spec.epoch.isoformat() == "2026-10-17T17:00:00+00:00"


def test_the_registry_has_the_importers_header_and_one_row_per_meter() -> None:
    specs = generate_fleet(fleet(10, transport="mixed", auth="mixed", bus_size=2))
    text = registry_csv(specs)
    assert text.splitlines()[0] == HEADER and ",".join(COLUMNS) == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["meter_id"] for r in rows] == [s.meter_id for s in specs]
    wrapper, bus, serial = rows[0], rows[6], rows[9]
    assert (wrapper["gateway_kind"], wrapper["transport"], wrapper["server_physical"]) == (
        "tcp", "wrapper", "",
    )  # fmt: skip
    assert (bus["gateway_kind"], bus["gateway_max_sessions"], bus["server_physical"]) == (
        "tcp_serial", "1", "17",
    )  # fmt: skip
    assert rows[6]["gateway"] == rows[7]["gateway"]
    assert serial["gateway_kind"] == "serial" and serial["gateway_framing"] == "8N1"
    assert serial["gateway_device"].endswith("line-0000") and serial["gateway_baud_rate"] == "9600"
    assert serial["gateway_host"] == "" and serial["gateway_port"] == ""
    assert {r["gateway_site"] for r in rows} == {""}  # a simulated gateway belongs to no site


def test_registry_rows_carry_each_meters_secret_for_its_authentication() -> None:
    specs = generate_fleet(fleet(3, auth="mixed"))
    rows = list(csv.DictReader(io.StringIO(registry_csv(specs))))
    none, lls, hls = rows
    assert none["auth"] == "none" and none["lls_password"] == none["hls_encryption_key"] == ""
    assert lls["auth"] == "lls" and lls["lls_password"] == specs[1].password
    assert hls["auth"] == "hls_gmac" and len(hls["hls_encryption_key"]) == 32
    assert len(hls["hls_authentication_key"]) == 32 and hls["secret_ref"] == ""
    assert all(r["ct_ratio"] == "1" and r["status"] == "active" for r in rows)
    assert rows[0]["install_date"] == "2026-10-18" and rows[0]["tags"] == "simulated;wrapper"
