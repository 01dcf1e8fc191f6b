"""A scripted hostile meter: a simulated meter that associates normally, then answers chosen
attributes with crafted A-XDR values (sent by block transfer when they exceed the PDU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from headend.domain.enums import Transport
from headend.domain.obis import Obis
from headend.simulator.devices import cosem_devices, link_parameters
from headend.simulator.meter import Device
from headend.simulator.objects import AccessDenied, Result
from headend.simulator.serve import BackgroundSimulator, Simulator
from headend.simulator.spec import MeterSpec
from tests.ports import free_port
from tests.protocol.simfleet import NOW, Fleet, meter

# an answer: the A-XDR bytes to send, or a callable of the access selection (None without
# selective access) giving them; ``REFUSED`` answers with a data-access error instead
Answer = bytes | Callable[[object], bytes]
REFUSED = b""


def refuse_selective_access(answer: bytes) -> Callable[[object], bytes]:
    """Refuse range and entry access (other-reason), answer ``answer`` otherwise."""

    def give(selection: object) -> bytes:
        return REFUSED if selection is not None else answer

    return give


def _hostile(device: Device, answers: Mapping[tuple[Obis, int], Answer]) -> Device:
    find: Callable[[Obis], Any] = device.find  # type: ignore[attr-defined]
    for (obis, attribute), answer in answers.items():
        obj = find(obis)
        assert obj is not None, f"the simulated meter has no {obis}"
        honest = obj.get

        def get(
            index: int,
            selection: object,
            ctx: object,
            *,
            attribute: int = attribute,
            answer: Answer = answer,
            honest: Callable[[int, object, object], bytes] = honest,
        ) -> bytes:
            if index != attribute:
                return honest(index, selection, ctx)
            raw = answer(selection) if callable(answer) else answer
            if raw == REFUSED:
                raise AccessDenied(Result.OTHER_REASON)
            return raw

        obj.get = get
    return device


@contextmanager
def hostile_meter(
    transport: Transport, answers: Mapping[tuple[Obis, int], Answer], meter_id: str = "X1"
) -> Iterator[Fleet]:
    """Serve one meter on loopback whose ``answers`` replace what it would send."""
    spec: MeterSpec = meter(meter_id, transport, free_port(), seed=7)
    honest = cosem_devices(now=lambda: NOW)

    def build(s: MeterSpec) -> Device:
        return _hostile(honest(s), answers)

    sim = BackgroundSimulator(Simulator([spec], build, link_parameters))
    with sim:
        yield Fleet(sim, {spec.meter_id: spec})
