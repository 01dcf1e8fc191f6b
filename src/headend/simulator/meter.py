"""One simulated meter as its links see it: a logical device built on first use, sessions.

The transports never touch COSEM objects: they hand complete APDUs to a ``MeterSession``
(one per TCP connection over the wrapper, one per HDLC link) and send back what it returns.
The logical device behind it comes from a ``DeviceSource``; building one runs the
consumption model, so a fleet of thousands builds each meter's device only when a client
first talks to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from headend.simulator.faults import DropLink, LinkPolicy
from headend.simulator.spec import MeterSpec


class Association(Protocol):
    def handle(self, apdu: bytes) -> bytes | None: ...

    @property
    def released(self) -> bool: ...


class Device(Protocol):
    def new_association(self) -> Association: ...


DeviceSource = Callable[[MeterSpec], Device]


class Meter:
    def __init__(self, spec: MeterSpec, devices: DeviceSource) -> None:
        self.spec = spec
        self.policy = LinkPolicy.for_meter(spec)
        self._devices = devices
        self._device: Device | None = None

    @property
    def device(self) -> Device:
        if self._device is None:
            self._device = self._devices(self.spec)
        return self._device

    def open(self) -> MeterSession:
        return MeterSession(self)


class MeterSession:
    """The application side of one link session; counts requests for the DROP fault."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.requests = 0
        self._association: Association | None = None

    def request(self, apdu: bytes) -> bytes | None:
        self.requests += 1
        drop_after = self.meter.policy.drop_after
        if drop_after is not None and self.requests > drop_after:
            raise DropLink(f"meter {self.meter.spec.meter_id} drops after {drop_after} requests")
        if self._association is None or self._association.released:
            self._association = self.meter.device.new_association()
        return self._association.handle(apdu)

    def reset(self) -> None:
        """The link was set up again or disconnected: the association is gone."""
        self._association = None
        self.requests = 0
