"""A collection checks the device profile against the meter: the capture objects and capture
period of the load and billing profiles that the meter reports must be the profile's, or the
read fails as ``configuration`` naming both values. A meter capturing every 900 s read with a
profile saying 1800 s would bill 48 intervals a day for 96: that never reaches a record. The
meter's definitions are kept per meter, model and firmware and compared again each session
without reading them again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from headend.domain.enums import FailureCategory, Transport
from headend.domain.readings import MeterRead
from headend.protocol import transports
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import ConfigurationError
from headend.protocol.plan import ReadSpec
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import MeterSession
from headend.protocol.target import build_transport
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)

# the load profile's capture objects (3) and capture period (4), as a request names them
LOAD_DEFINITION = [bytes.fromhex("00070100630100ff" + attribute) for attribute in ("03", "04")]
SIX_HOURS = Collection(start=NOW - timedelta(hours=6), end=NOW)


class Recording:
    """A transport that keeps the request APDUs it carries."""

    def __init__(self, inner: transports.Transport) -> None:
        self.inner = inner
        self.requests: list[bytes] = []

    async def open(self) -> None:
        await self.inner.open()

    async def exchange(self, apdu: bytes) -> bytes:
        self.requests.append(apdu)
        return await self.inner.exchange(apdu)

    async def close(self) -> None:
        await self.inner.close()

    def asked_for_the_load_profile_definition(self) -> bool:
        return any(ref in apdu for apdu in self.requests for ref in LOAD_DEFINITION)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    wrapper, hdlc, tou = free_port(), free_port(), "three_phase_tou"
    specs = [  # capturing every 1800 s, as their profile says
        meter("TOU-wrapper", Transport.WRAPPER, wrapper, profile=tou, logical=1),
        meter("TOU-hdlc", Transport.HDLC, hdlc, profile=tou, physical=17),
    ]
    specs += [  # capturing every 900 s
        meter("TOU900-wrapper", Transport.WRAPPER, wrapper, profile=tou, logical=2),
        meter("TOU900-hdlc", Transport.HDLC, hdlc, profile=tou, physical=18),
    ]
    specs[2:] = [replace(spec, capture_period_s=900) for spec in specs[2:]]
    with serving(specs) as served:
        yield served


def read(
    fleet: Fleet,
    meter_id: str,
    spec: ReadSpec | None = None,
    cache: DefinitionCache | None = None,
    what: Collection = SIX_HOURS,
) -> tuple[MeterRead | ConfigurationError, Recording]:
    spec = spec or fleet.read_spec(meter_id)
    target = fleet.target(meter_id)
    wire = Recording(build_transport(target))

    async def go() -> MeterRead | ConfigurationError:
        try:
            async with MeterSession(target, transport=wire) as session:
                return await collect(session, spec, what, cache or DefinitionCache())
        except ConfigurationError as exc:
            return exc

    return run(go()), wire


@pytest.mark.parametrize("link", ["wrapper", "hdlc"])
def test_a_meter_capturing_every_900_s_read_with_a_profile_saying_1800_s_fails_naming_both(
    fleet: Fleet, link: str
) -> None:
    got, _ = read(fleet, f"TOU900-{link}")
    assert isinstance(got, ConfigurationError)
    assert got.category is FailureCategory.CONFIGURATION
    assert got.one_line() == (
        "configuration: load profile 1.0.99.1.0.255: capture period 900 s on the meter, "
        "1800 s in profile three_phase_tou"
    )


@pytest.mark.parametrize("link", ["wrapper", "hdlc"])
def test_a_meter_capturing_other_objects_than_its_profile_fails_naming_both_lists(
    fleet: Fleet, link: str
) -> None:
    # a profile whose load profile lacks the meter's reactive import
    spec = fleet.read_spec(f"TOU-{link}")
    assert spec.load_profile is not None
    fewer = replace(spec.load_profile, capture_objects=spec.load_profile.capture_objects[:-1])
    got, _ = read(fleet, f"TOU-{link}", replace(spec, load_profile=fewer))
    assert isinstance(got, ConfigurationError)
    columns = "0.0.1.0.0.255/2, 0.0.96.10.1.255/2, 1.0.1.8.0.255/2, 1.0.2.8.0.255/2"
    assert str(got) == (
        f"load profile 1.0.99.1.0.255: capture objects [{columns}, 1.0.3.8.0.255/2] on the "
        f"meter, [{columns}] in profile three_phase_tou"
    )


def test_a_billing_profile_whose_capture_period_differs_fails_naming_both(fleet: Fleet) -> None:
    spec = fleet.read_spec("TOU-wrapper")
    assert spec.billing_profile is not None
    on_reset = replace(spec.billing_profile, capture_period_s=0)
    got, _ = read(
        fleet,
        "TOU-wrapper",
        replace(spec, billing_profile=on_reset),
        what=replace(SIX_HOURS, billing=True),
    )
    assert isinstance(got, ConfigurationError)
    assert str(got) == (
        "billing profile 0.0.98.1.0.255: capture period 86400 s on the meter, "
        "0 s in profile three_phase_tou"
    )


@pytest.mark.parametrize("link", ["wrapper", "hdlc"])
def test_a_meter_matching_its_profile_collects_every_interval_as_before(
    fleet: Fleet, link: str
) -> None:
    meter_id = f"TOU-{link}"
    got, _ = read(fleet, meter_id, what=replace(SIX_HOURS, billing=True))
    assert isinstance(got, MeterRead)
    assert got.load_profile is not None and got.load_profile.capture_period_s == 1800
    truth = fleet.data(meter_id).intervals(NOW - timedelta(hours=6), NOW, now=NOW)
    assert [row.interval_end for row in got.load_profile.rows] == [t.end for t in truth]
    assert len(truth) == 12
    assert got.billing is not None


def test_a_cached_definition_is_compared_again_without_asking_the_meter(fleet: Fleet) -> None:
    cache = DefinitionCache()
    spec = fleet.read_spec("TOU-wrapper")
    assert spec.load_profile is not None
    healthy, first = read(fleet, "TOU-wrapper", spec, cache)
    assert isinstance(healthy, MeterRead) and first.asked_for_the_load_profile_definition()
    # the profile is edited to say 900 s: the next session fails on what the cache holds
    edited = replace(spec, load_profile=replace(spec.load_profile, capture_period_s=900))
    failed, second = read(fleet, "TOU-wrapper", edited, cache)
    assert isinstance(failed, ConfigurationError)
    assert "capture period 1800 s on the meter, 900 s in profile three_phase_tou" in str(failed)
    assert not second.asked_for_the_load_profile_definition()
    # a healthy session again reads nothing it has not read before
    again, third = read(fleet, "TOU-wrapper", spec, cache)
    assert isinstance(again, MeterRead)
    assert not third.asked_for_the_load_profile_definition()
    assert len(third.requests) < len(first.requests)


def test_a_definition_that_differed_is_read_from_the_meter_again_next_session(
    fleet: Fleet,
) -> None:
    cache = DefinitionCache()
    failed, first = read(fleet, "TOU900-wrapper", cache=cache)
    assert isinstance(failed, ConfigurationError) and first.asked_for_the_load_profile_definition()
    # the meter may have been set to the profile's period since: it is asked again
    failed_again, second = read(fleet, "TOU900-wrapper", cache=cache)
    assert isinstance(failed_again, ConfigurationError)
    assert second.asked_for_the_load_profile_definition()
