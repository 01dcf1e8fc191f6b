"""Meters that do not follow the standard, read over the wire: a short GET-with-list answer,
error answers with another invoke id, hardware-fault for an object the meter lacks. The read
lands, the missing object is reported unavailable with its reason, every other value equals
the simulator's truth, and what the session learned about the meter is reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.domain.readings import MeterRead
from headend.protocol import transports
from headend.protocol.collect import Collection, collect
from headend.protocol.plan import ReadSpec
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR, MeterSession
from headend.protocol.streams import Traffic
from headend.protocol.target import build_transport
from headend.services.collection import spool
from headend.simulator.spec import MeterSpec, Quirk
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, expected_register, meter, quantity_of, serving
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)

MAX_DEMAND = Obis.parse("1.0.1.6.0.255")
SHORT, INVOKE, FAULT = (
    Quirk.SHORT_LIST_AFTER_FAILURE,
    Quirk.WRONG_INVOKE_ID_ON_ERROR,
    Quirk.HARDWARE_FAULT_FOR_MISSING,
)
# meter id prefix -> quirks of a meter without maximum demand
MODELS: dict[str, tuple[Quirk, ...]] = {
    "SHORT": (SHORT,),
    "INVOKE": (INVOKE,),
    "FAULT": (FAULT,),
    "ALL": (SHORT, INVOKE, FAULT),
}


def lacking_max_demand(spec: MeterSpec, quirks: tuple[Quirk, ...]) -> MeterSpec:
    return replace(spec, quirks=quirks, missing_objects=(str(MAX_DEMAND),))


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    wrapper_port, hdlc_port = free_port(), free_port()
    specs = []
    for n, (name, quirks) in enumerate(MODELS.items()):
        wrapped = meter(f"{name}-W", Transport.WRAPPER, wrapper_port, logical=n + 1, seed=n)
        on_bus = meter(f"{name}-H", Transport.HDLC, hdlc_port, physical=17 + n, seed=10 + n)
        specs += [lacking_max_demand(wrapped, quirks), lacking_max_demand(on_bus, quirks)]
    specs.append(meter("PLAIN-W", Transport.WRAPPER, wrapper_port, logical=9, seed=9))
    for n, quirk in enumerate((Quirk.RELEASE_NEVER_ANSWERED, Quirk.RLRE_WRONG_LENGTH)):
        wrapped = meter(f"{quirk}-W", Transport.WRAPPER, wrapper_port, logical=10 + n, seed=n)
        on_bus = meter(f"{quirk}-H", Transport.HDLC, hdlc_port, physical=30 + n, seed=n)
        specs += [replace(wrapped, quirks=(quirk,)), replace(on_bus, quirks=(quirk,))]
    with serving(specs) as served:
        yield served


def read(fleet: Fleet, meter_id: str, spec: ReadSpec | None = None) -> MeterRead:
    spec = spec or fleet.read_spec(meter_id)

    async def go() -> MeterRead:
        async with MeterSession(fleet.target(meter_id), release=spec.supports_release) as session:
            return await collect(
                session,
                spec,
                Collection(start=NOW - timedelta(hours=6), end=NOW),
                DefinitionCache(),
            )

    return run(go())


def check_all_but_max_demand(fleet: Fleet, meter_id: str, got: MeterRead, reason: str) -> None:
    assert set(got.unavailable) == {MAX_DEMAND}
    assert got.unavailable[MAX_DEMAND].reason == "object_unavailable"
    assert reason in got.unavailable[MAX_DEMAND].detail
    check_the_rest(fleet, meter_id, got, lacking={MAX_DEMAND})


def check_the_rest(fleet: Fleet, meter_id: str, got: MeterRead, lacking: set[Obis]) -> None:
    profile = fleet.specs[meter_id].profile
    data = fleet.data(meter_id)
    spec = fleet.read_spec(meter_id)
    assert got.serial_number == meter_id
    assert got.clock is not None and got.clock.meter_time == data.meter_time(NOW)
    assert set(got.registers) == {r.obis for r in spec.registers} - lacking
    for obis, value in got.registers.items():
        assert value.value == expected_register(profile, data, obis, NOW), obis
    assert got.load_profile is not None
    truth = data.intervals(NOW - timedelta(hours=6), NOW, now=NOW)
    assert [row.interval_end for row in got.load_profile.rows] == [t.end for t in truth]
    for row, want in zip(got.load_profile.rows, truth, strict=True):
        for obis, value in row.values.items():
            assert value == Decimal(want.registers[quantity_of(profile, obis)]), (row, obis)


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
def test_a_short_list_answer_is_read_again_one_by_one_and_the_rest_of_the_read_lands(
    fleet: Fleet, link: str
) -> None:
    got = read(fleet, f"SHORT-{link}")
    check_all_but_max_demand(fleet, f"SHORT-{link}", got, "object-undefined")
    assert got.learned == (LIST_UNRELIABLE,)


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
def test_error_answers_with_another_invoke_id_are_taken_as_the_answer_to_the_request(
    fleet: Fleet, link: str
) -> None:
    no_lists = replace(fleet.read_spec(f"INVOKE-{link}"), supports_get_with_list=False)
    got = read(fleet, f"INVOKE-{link}", no_lists)
    check_all_but_max_demand(fleet, f"INVOKE-{link}", got, "object-undefined")
    assert got.learned == (WRONG_INVOKE_ON_ERROR,)


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
def test_a_missing_object_answering_hardware_fault_is_unavailable_within_a_good_list(
    fleet: Fleet, link: str
) -> None:
    got = read(fleet, f"FAULT-{link}")
    check_all_but_max_demand(fleet, f"FAULT-{link}", got, "hardware-fault")
    assert got.learned == ()


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
def test_a_meter_with_every_quirk_is_read_and_what_it_does_wrong_is_learned(
    fleet: Fleet, link: str
) -> None:
    got = read(fleet, f"ALL-{link}")
    check_all_but_max_demand(fleet, f"ALL-{link}", got, "hardware-fault")
    assert got.learned == (LIST_UNRELIABLE, WRONG_INVOKE_ON_ERROR)
    assert spool.decode(spool.encode(got)) == got  # what was learned survives a spooled read


def is_list_request(apdu: bytes) -> bool:
    return apdu[:2] == b"\xc0\x03"


class Recording:
    """A transport that keeps the request APDUs it carries; ``garble`` changes the answers to
    GET-with-list requests."""

    def __init__(
        self, inner: transports.Transport, garble: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.inner = inner
        self.garble = garble
        self.requests: list[bytes] = []

    async def open(self) -> None:
        await self.inner.open()

    async def exchange(self, apdu: bytes) -> bytes:
        self.requests.append(apdu)
        answer = await self.inner.exchange(apdu)
        if self.garble is not None and is_list_request(apdu):
            return self.garble(answer)
        return answer

    async def close(self) -> None:
        await self.inner.close()


def test_once_get_with_list_failed_the_rest_of_the_session_reads_one_by_one(
    fleet: Fleet,
) -> None:
    spec = fleet.read_spec("SHORT-W")
    first = tuple(r for r in spec.registers if r.obis == MAX_DEMAND)
    rest = tuple(r for r in spec.registers if r.obis != MAX_DEMAND)
    # maximum demand first: the first list fails and every other value is still to read
    spec = replace(spec, registers=first + rest, list_batch=4)
    target = fleet.target("SHORT-W")
    wire = Recording(build_transport(target, Traffic()))

    async def go() -> MeterRead:
        async with MeterSession(target, transport=wire) as session:
            return await collect(session, spec, Collection(), DefinitionCache())

    got = run(go())
    with_list = [apdu for apdu in wire.requests if is_list_request(apdu)]
    assert len(with_list) == 1
    assert set(got.unavailable) == {MAX_DEMAND}
    assert set(got.registers) == {r.obis for r in rest}
    assert got.learned == (LIST_UNRELIABLE,)


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
def test_a_session_knowing_the_model_garbles_lists_never_asks_for_one_and_learns_nothing(
    fleet: Fleet, link: str
) -> None:
    meter_id = f"SHORT-{link}"
    spec = fleet.read_spec(meter_id)
    target = fleet.target(meter_id, known_quirks=frozenset({LIST_UNRELIABLE}))
    wire = Recording(build_transport(target, Traffic()))

    async def go() -> MeterRead:
        async with MeterSession(target, transport=wire) as session:
            what = Collection(start=NOW - timedelta(hours=6), end=NOW)
            return await collect(session, spec, what, DefinitionCache())

    got = run(go())
    assert [apdu for apdu in wire.requests if is_list_request(apdu)] == []
    check_all_but_max_demand(fleet, meter_id, got, "object-undefined")
    assert got.learned == ()


GARBLINGS: dict[str, Callable[[bytes], bytes]] = {
    "another invoke id": lambda answer: answer[:2] + bytes((answer[2] ^ 0x03,)) + answer[3:],
    "trailing bytes": lambda answer: answer + b"\x00\x00",
    "a count larger than its results": lambda answer: answer[:3] + b"\x7f" + answer[4:],
    "an exception-response": lambda answer: bytes.fromhex("d80102"),
    "a confirmed-service-error": lambda answer: bytes.fromhex("0e050601"),
}


@pytest.mark.parametrize("garbling", list(GARBLINGS))
def test_a_list_answer_with_another_defect_costs_one_retry_one_by_one_and_nothing_else(
    fleet: Fleet, garbling: str
) -> None:
    spec = replace(fleet.read_spec("PLAIN-W"), list_batch=4)
    target = fleet.target("PLAIN-W")
    wire = Recording(build_transport(target, Traffic()), GARBLINGS[garbling])
    what = Collection(start=NOW - timedelta(hours=6), end=NOW)

    async def go() -> MeterRead:
        async with MeterSession(target, transport=wire) as session:
            return await collect(session, spec, what, DefinitionCache())

    got = run(go())
    assert not got.unavailable
    check_the_rest(fleet, "PLAIN-W", got, lacking=set())
    assert got.learned == (LIST_UNRELIABLE,)
    assert len([apdu for apdu in wire.requests if is_list_request(apdu)]) == 1


def test_a_meter_that_answers_lists_well_teaches_the_session_nothing(fleet: Fleet) -> None:
    got = read(fleet, "PLAIN-W")
    assert not got.unavailable
    check_the_rest(fleet, "PLAIN-W", got, lacking=set())
    assert got.learned == ()


@pytest.mark.parametrize("link", ["W", "H"], ids=["wrapper", "hdlc"])
@pytest.mark.parametrize("quirk", [Quirk.RELEASE_NEVER_ANSWERED, Quirk.RLRE_WRONG_LENGTH])
def test_a_release_answered_badly_or_never_leaves_the_read_whole(
    fleet: Fleet, quirk: Quirk, link: str
) -> None:
    meter_id = f"{quirk}-{link}"
    spec = fleet.read_spec(meter_id)
    what = Collection(start=NOW - timedelta(hours=6), end=NOW)

    async def go() -> tuple[MeterRead, bool | None]:
        session = MeterSession(fleet.target(meter_id, timeout=2.0))
        async with session:
            got = await collect(session, spec, what, DefinitionCache())
        return got, session.released_cleanly

    got, released_cleanly = run(go())
    assert not got.unavailable
    check_the_rest(fleet, meter_id, got, lacking=set())
    assert released_cleanly is False
