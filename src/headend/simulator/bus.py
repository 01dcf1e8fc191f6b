"""A multi-drop HDLC line (RS485): several meters told apart by HDLC physical address.

``Bus.exchange`` takes one raw frame off the line and returns what goes back onto it: the
addressed meter's answer frames, after which delay, or a drop. Frames that are malformed or
for nobody on the line get no answer, as on a real bus. ``BusLink`` runs the line over any
byte stream (a TCP connection to a converter, a pty): frames are handled one at a time, an
exchange (answer and its delay) holding the line until it is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from headend.simulator.faults import DropLink, corrupt_check_sequence
from headend.simulator.hdlc import Frame, FrameError, FrameReader, Kind, LinkParameters
from headend.simulator.meter import Meter, MeterSession
from headend.simulator.station import HdlcStation, LinkState

LOG = structlog.get_logger(__name__)
ALL_STATIONS = 0x7F  # physical broadcast address (one-byte form): no answer


@dataclass(frozen=True, slots=True)
class Exchange:
    data: bytes = b""
    delay: float = 0.0
    drop: bool = False


NO_ANSWER = Exchange()


class _Drop:
    __slots__ = ("meter", "session", "silenced", "station")

    def __init__(self, meter: Meter, params: LinkParameters) -> None:
        self.meter = meter
        self.session: MeterSession = meter.open()
        self.station = HdlcStation(params, self.session)
        self.silenced = False


class Bus:
    def __init__(
        self,
        meters: Sequence[Meter],
        link_parameters: Callable[[Meter], LinkParameters] | None = None,
        *,
        can_disconnect: bool = True,
    ) -> None:
        """``can_disconnect``: whether a DROP fault can close the line (TCP) or only silence it."""
        parameters = link_parameters or (lambda _meter: LinkParameters())
        self._drops = {m.spec.server_physical: _Drop(m, parameters(m)) for m in meters}
        self.can_disconnect = can_disconnect
        self._line: asyncio.Lock | None = None

    @property
    def line(self) -> asyncio.Lock:
        """Held for one frame exchange, whichever connection it came from."""
        if self._line is None:
            self._line = asyncio.Lock()
        return self._line

    @property
    def meters(self) -> list[Meter]:
        return [drop.meter for drop in self._drops.values()]

    def _addressed(self, frame: Frame) -> _Drop | None:
        physical = frame.server.physical
        if physical is None:
            if len(self._drops) != 1:
                return None
            drop = next(iter(self._drops.values()))
        else:
            if physical == ALL_STATIONS:
                return None
            found = self._drops.get(physical)
            if found is None:
                return None
            drop = found
        if frame.server.logical != drop.meter.spec.server_logical:
            return None
        return drop

    def exchange(self, raw: bytes) -> Exchange:
        try:
            frame = Frame.decode(raw)
        except FrameError:
            return NO_ANSWER
        drop = self._addressed(frame)
        if drop is None or drop.meter.policy.silent:
            return NO_ANSWER
        if drop.silenced:
            if frame.control.kind is not Kind.SNRM:
                return NO_ANSWER
            drop.silenced = False
        try:
            answers = drop.station.receive(frame)
        except DropLink:
            drop.station.state = LinkState.DISCONNECTED
            drop.session.reset()
            if self.can_disconnect:
                return Exchange(drop=True)
            drop.silenced = True
            return NO_ANSWER
        except Exception:  # a bug in the meter: it stays silent, the line goes on
            LOG.exception("simulated meter failed", meter_id=drop.meter.spec.meter_id)
            return NO_ANSWER
        if not answers:
            return NO_ANSWER
        encoded = [answer.encode() for answer in answers]
        policy = drop.meter.policy
        if policy.corrupt:
            encoded = [corrupt_check_sequence(frame_bytes) for frame_bytes in encoded]
        data = b"".join(encoded)
        return Exchange(data, policy.answer_delay(len(data)) if policy.paced else 0.0)


class BusLink:
    """Runs a ``Bus`` over a byte stream: feed bytes in, answers go to ``write``."""

    def __init__(self, bus: Bus, write: Callable[[bytes], None], close: Callable[[], None]):
        self.bus = bus
        self._write = write
        self._close = close
        self._reader = FrameReader()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def feed(self, data: bytes) -> None:
        for raw in self._reader.feed(data):
            self._queue.put_nowait(raw)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            raw = await self._queue.get()
            async with self.bus.line:
                result = self.bus.exchange(raw)
                if result.drop:
                    self._close()
                    return
                if result.delay:
                    await asyncio.sleep(result.delay)
                if result.data:
                    self._write(result.data)


class HdlcConnection(asyncio.Protocol):
    """A TCP connection to a TCP-to-RS485 converter (or an HDLC modem) fronting a ``Bus``."""

    def __init__(self, bus: Bus, live: set[asyncio.Transport] | None = None) -> None:
        self._bus = bus
        self._live = live
        self._transport: asyncio.Transport | None = None
        self._link: BusLink | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._live is not None:
            self._live.add(transport)
        self._link = BusLink(self._bus, self._write, transport.close)
        self._link.start()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self._link is not None:
            self._link.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._live is not None and self._transport is not None:
            self._live.discard(self._transport)
        if self._link is not None:
            self._link.stop()
        self._link = None
        self._transport = None


async def serve_hdlc(
    host: str,
    port: int,
    bus: Bus,
    *,
    backlog: int = 128,
    live: set[asyncio.Transport] | None = None,
) -> asyncio.Server:
    """Listen on ``host:port``; every connection reaches the same line of meters."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HdlcConnection(bus, live), host, port, backlog=backlog, reuse_address=True
    )
