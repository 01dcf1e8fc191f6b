"""Every injected fault ends the session with the right failure category, quickly, leaving no
task running and no socket or descriptor open."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from headend.domain.enums import AuthLevel, FailureCategory, Transport
from headend.domain.obis import Obis
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import ProtocolError
from headend.protocol.plan import ObjectRead
from headend.protocol.registers import DefinitionCache
from headend.protocol.security import MemoryCounterStore
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts
from headend.simulator.spec import Fault, FaultKind
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter, serving
from tests.protocol.support import client_descriptors as open_fds
from tests.protocol.support import run

pytestmark = pytest.mark.timeout(60)

FAULTS = {
    "no_answer": Fault(FaultKind.NO_ANSWER),
    "slow": Fault(FaultKind.SLOW, {"delay_s": 3.0}),
    "drop": Fault(FaultKind.DROP, {"after_requests": 2}),
    "bad_fcs": Fault(FaultKind.BAD_FCS),
    "reject": Fault(FaultKind.REJECT),
    "wrong_ic": Fault(FaultKind.WRONG_IC),
}

EXPECTED = {
    ("wrapper", "no_answer"): FailureCategory.RESPONSE_TIMEOUT,
    ("hdlc", "no_answer"): FailureCategory.LINK_SETUP_FAILED,
    ("serial", "no_answer"): FailureCategory.LINK_SETUP_FAILED,
    ("wrapper", "slow"): FailureCategory.RESPONSE_TIMEOUT,
    ("hdlc", "slow"): FailureCategory.LINK_SETUP_FAILED,
    ("serial", "slow"): FailureCategory.LINK_SETUP_FAILED,
    ("wrapper", "drop"): FailureCategory.SESSION_DROPPED,
    ("hdlc", "drop"): FailureCategory.SESSION_DROPPED,
    ("serial", "drop"): FailureCategory.RESPONSE_TIMEOUT,  # a serial line cannot close
    ("wrapper", "bad_fcs"): FailureCategory.DECODE_ERROR,  # no FCS: the APDU is garbled
    ("hdlc", "bad_fcs"): FailureCategory.MALFORMED_FRAME,
    ("serial", "bad_fcs"): FailureCategory.MALFORMED_FRAME,
    ("wrapper", "reject"): FailureCategory.AUTHENTICATION_FAILED,
    ("hdlc", "reject"): FailureCategory.AUTHENTICATION_FAILED,
    ("serial", "reject"): FailureCategory.AUTHENTICATION_FAILED,
    ("wrapper", "wrong_ic"): FailureCategory.INVOCATION_COUNTER,
    ("hdlc", "wrong_ic"): FailureCategory.INVOCATION_COUNTER,
    ("serial", "wrong_ic"): FailureCategory.INVOCATION_COUNTER,
}
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    specs = []
    tty_dir = Path(tmp_path_factory.mktemp("tty"))
    for n, (name, fault) in enumerate(FAULTS.items()):
        auth = AuthLevel.HLS_GMAC if name == "wrong_ic" else AuthLevel.LLS
        specs.append(
            meter(f"wrapper-{name}", Transport.WRAPPER, free_port(), auth, faults=(fault,), seed=n)
        )
        specs.append(
            meter(f"hdlc-{name}", Transport.HDLC, free_port(), auth, faults=(fault,), seed=n)
        )
        specs.append(
            meter(
                f"serial-{name}",
                Transport.HDLC,
                0,
                auth,
                faults=(fault,),
                seed=n,
                serial_device=str(tty_dir / f"tty-{name}"),
            )
        )
    specs.append(meter("good", Transport.WRAPPER, free_port(), AuthLevel.LLS))
    with serving(specs) as served:
        yield served


def attempt(target: MeterTarget, fleet: Fleet | None = None, meter_id: str = "good") -> None:
    spec = fleet.read_spec(meter_id) if fleet else None

    async def go() -> None:
        async with MeterSession(target, counters=MemoryCounterStore()) as session:
            if spec is not None:
                await collect(session, spec, Collection(start=NOW, end=NOW), DefinitionCache())

    run(go(), limit=15)


def failure_of(
    target: MeterTarget, fleet: Fleet | None = None, meter_id: str = "good"
) -> ProtocolError:
    before = open_fds()
    with pytest.raises(ProtocolError) as info:
        attempt(target, fleet, meter_id)
    assert open_fds() == before, "a descriptor was left open"
    return info.value


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["wrapper", "hdlc", "serial"])
def test_an_injected_fault_ends_the_session_with_its_failure_category(
    fleet: Fleet, kind: str, fault: str
) -> None:
    meter_id = f"{kind}-{fault}"
    error = failure_of(fleet.target(meter_id, timeout=TIMEOUT), fleet, meter_id)
    assert error.category is EXPECTED[(kind, fault)], error.one_line()


def test_a_closed_port_is_unreachable() -> None:
    target = MeterTarget("x", Transport.WRAPPER, "127.0.0.1", free_port())
    assert failure_of(target).category is FailureCategory.UNREACHABLE


def test_a_missing_serial_device_is_unreachable(tmp_path: Path) -> None:
    target = MeterTarget("x", Transport.HDLC, serial_device=str(tmp_path / "nothing"))
    assert failure_of(target).category is FailureCategory.UNREACHABLE


def test_a_gateway_that_never_accepts_is_a_connect_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: further SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        target = MeterTarget(
            "x", Transport.WRAPPER, "127.0.0.1", port, timeouts=Timeouts(connect=0.5)
        )
        assert failure_of(target).category is FailureCategory.CONNECT_TIMEOUT
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_wrong_password_is_an_authentication_failure(fleet: Fleet) -> None:
    target = fleet.target("good", password="wrong-password")
    error = failure_of(target)
    assert error.category is FailureCategory.AUTHENTICATION_FAILED


def test_an_object_the_meter_lacks_is_reported_unavailable_and_the_read_succeeds(
    fleet: Fleet,
) -> None:
    spec = fleet.read_spec("good")
    from dataclasses import replace

    missing = Obis(1, 0, 9, 8, 0)
    wider = replace(spec, registers=(*spec.registers, ObjectRead(missing, 3)))

    async def go() -> object:
        async with MeterSession(fleet.target("good"), counters=MemoryCounterStore()) as session:
            return await collect(session, wider, Collection(), DefinitionCache())

    got = run(go())
    assert missing in got.unavailable  # type: ignore[attr-defined]
    assert got.unavailable[missing].reason == "object_unavailable"  # type: ignore[attr-defined]
    assert len(got.registers) == len(spec.registers)  # type: ignore[attr-defined]
