"""``headend profiles discover`` against simulated meters that overrun the PDU they took, send
every date-time with an unspecified deviation, or refuse selective access to their profiles,
over the TCP wrapper and HDLC: the profile written says so (in its settings and its comments)
and ``headend profiles check`` takes it offline and live.

Collection with these profiles is tested in
tests/scheduling/test_collecting_quirky_meters_with_discovered_profiles.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from headend.domain.enums import Transport
from headend.profiles import load_profile
from headend.profiles.loader import parse_profile, profiles_dir
from headend.profiles.model import ClockSpec, DeviationSemantics
from headend.simulator.spec import PDU_OVERRUN, MeterSpec, Quirk
from tests.cli.test_profiles_discover import (
    SINGLE,
    Served,
    _meter,
    assert_same_model,
    discover,
    run,
)
from tests.ports import free_port
from tests.protocol.simfleet import serving

pytestmark = pytest.mark.timeout(180)

QUIRKS = (Quirk.PDU_IGNORED, Quirk.DEVIATION_UNSPECIFIED, Quirk.NO_SELECTIVE_ACCESS)
TRANSPORTS = (Transport.WRAPPER, Transport.HDLC)
UNSPECIFIED = ClockSpec(time_zone="Asia/Ho_Chi_Minh", deviation=DeviationSemantics.UNSPECIFIED)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    ports = {t: free_port() for t in TRANSPORTS}
    specs: list[MeterSpec] = []
    for transport in TRANSPORTS:
        code = transport.value[0].upper()
        for n, quirk in enumerate(QUIRKS):
            meter_id = f"{quirk.value}-{code}"
            specs.append(_meter(meter_id, SINGLE, transport, n, ports[transport], quirks=(quirk,)))
        # without its object list, nothing a survey reads needs blocks on its own
        refused = (Quirk.OBJECT_LIST_REFUSED, Quirk.PDU_IGNORED)
        n = len(QUIRKS)
        specs.append(
            _meter(f"refused-{code}", SINGLE, transport, n, ports[transport], quirks=refused)
        )
    # the meters' clocks run on ours: a discovered time zone is read against the real time
    with serving(specs, now=None):
        yield Served(ports, {s.meter_id: s for s in specs})


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("HEADEND_"):
            monkeypatch.delenv(key)


def _discovered(served: Served, quirk: Quirk, transport: Transport, folder: Path) -> Path:
    meter_id = f"{quirk.value}-{transport.value[0].upper()}"
    path = discover(served, meter_id, folder, "quirky")
    assert run("check", str(path))[:2] == (0, f"{path}: ok\n")
    live = run("check", str(path), *served.options(meter_id))
    assert live[:2] == (0, f"{path}: ok\n"), live[1]
    return path


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_measures_by_how_much_a_meter_overruns_its_pdu_and_writes_that_tolerance(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    path = _discovered(served, Quirk.PDU_IGNORED, transport, tmp_path)
    assert_same_model(
        parse_profile(path), load_profile(SINGLE), oversized_pdu_tolerance=PDU_OVERRUN
    )
    assert (
        f"oversized_pdu_tolerance: {PDU_OVERRUN}  # found: the meter's answers run {PDU_OVERRUN} "
        f"bytes past the 512-byte PDU it took (its longest was {512 + PDU_OVERRUN} bytes)"
    ) in path.read_text()


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_reads_a_long_answer_to_measure_an_overrun_when_the_object_list_is_refused(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    meter_id = f"refused-{transport.value[0].upper()}"
    path = discover(served, meter_id, tmp_path, "refused")
    assert parse_profile(path).quirks.oversized_pdu_tolerance == PDU_OVERRUN
    assert "The meter refused its object list" in path.read_text()
    live = run("check", str(path), *served.options(meter_id))
    assert live[:2] == (0, f"{path}: ok\n"), live[1]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_live_check_of_a_profile_without_the_tolerance_names_the_overrun_answer(
    served: Served, transport: Transport
) -> None:
    shipped = profiles_dir() / f"{SINGLE}.yaml"
    meter_id = f"{Quirk.PDU_IGNORED.value}-{transport.value[0].upper()}"
    code, out, _ = run("check", str(shipped), *served.options(meter_id))
    assert code == 1
    assert out.startswith(f"{shipped}: live: malformed_frame: ")
    assert "512" in out
    assert len(out.splitlines()) == 1


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_a_meter_that_keeps_to_its_pdu_gets_no_tolerance_and_the_draft_says_it_was_seen(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    path = _discovered(served, Quirk.NO_SELECTIVE_ACCESS, transport, tmp_path)
    assert parse_profile(path).quirks.oversized_pdu_tolerance == 0
    assert "oversized_pdu_tolerance: 0  # found: the meter keeps to the 512-byte PDU" in (
        path.read_text()
    )


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_writes_local_time_in_the_utility_zone_for_a_clock_with_unspecified_deviation(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    path = _discovered(served, Quirk.DEVIATION_UNSPECIFIED, transport, tmp_path)
    found = parse_profile(path)
    assert found.clock == UNSPECIFIED
    assert_same_model(
        found.model_copy(update={"clock": load_profile(SINGLE).clock}), load_profile(SINGLE)
    )
    text = path.read_text()
    assert (
        "# found: the clock's deviation is 0x8000 (unspecified): its times are local time" in text
    )
    assert "# time_zone guessed: its time_zone attribute (3), -420, says UTC+07:00" in text


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
def test_discover_finds_a_meter_refusing_selective_access_and_still_reads_its_profiles(
    served: Served, tmp_path: Path, transport: Transport
) -> None:
    path = _discovered(served, Quirk.NO_SELECTIVE_ACCESS, transport, tmp_path)
    found = parse_profile(path)
    assert_same_model(
        found, load_profile(SINGLE), supports_range_access=False, supports_entry_access=False
    )
    text = path.read_text()
    assert "supports_range_access: false  # tried: load profile by time range: refused" in text
    assert (
        "supports_entry_access: false  # tried: load profile by entries: refused; so is range "
        "access: collection reads whole buffers"
    ) in text
