"""Serving a fleet: listeners and pty lines for every meter, run until told to stop.

Meters are grouped by where they are reached: over the TCP wrapper by port (one meter, or
several logical devices by wPort), over HDLC on TCP by port (a bus of meters by physical
address), over a serial line by device path (a bus on a pty). ``Simulator`` runs in the
caller's event loop; ``BackgroundSimulator`` runs one in a thread of its own, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from headend.domain.enums import Transport
from headend.simulator.bus import Bus, serve_hdlc
from headend.simulator.hdlc import LinkParameters
from headend.simulator.meter import DeviceSource, Meter
from headend.simulator.serial import PtyLine
from headend.simulator.spec import MeterSpec
from headend.simulator.wrapper import serve_wrapper

LinkParametersSource = Callable[[MeterSpec], LinkParameters]


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "wrapper", "hdlc" (over TCP) or "serial"
    address: str  # host:port, or the device path a client opens
    meter_ids: tuple[str, ...]
    port: int = 0


@dataclass
class Simulator:
    specs: Sequence[MeterSpec]
    devices: DeviceSource
    link_parameters: LinkParametersSource | None = None
    backlog: int = 128
    endpoints: list[Endpoint] = field(default_factory=list)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _lines: list[PtyLine] = field(default_factory=list)
    _live: set[asyncio.Transport] = field(default_factory=set)

    async def start(self) -> list[Endpoint]:
        wrappers: dict[tuple[str, int], list[Meter]] = defaultdict(list)
        buses: dict[tuple[str, int], list[Meter]] = defaultdict(list)
        lines: dict[str, list[Meter]] = defaultdict(list)
        for spec in self.specs:
            meter = Meter(spec, self.devices)
            if spec.transport is Transport.WRAPPER:
                wrappers[(spec.host, spec.port)].append(meter)
            elif spec.serial_device:
                lines[spec.serial_device].append(meter)
            else:
                buses[(spec.host, spec.port)].append(meter)
        try:
            for (host, port), meters in wrappers.items():
                table = _unique(meters, lambda m: m.spec.server_logical, f"{host}:{port}")
                server = await serve_wrapper(
                    host, port, table, backlog=self.backlog, live=self._live
                )
                self._add_server(server, "wrapper", host, meters)
            for (host, port), meters in buses.items():
                bus = self._bus(meters, f"{host}:{port}", can_disconnect=True)
                server = await serve_hdlc(host, port, bus, backlog=self.backlog, live=self._live)
                self._add_server(server, "hdlc", host, meters)
            for path, meters in lines.items():
                line = PtyLine(self._bus(meters, path, can_disconnect=False), link_path=path)
                line.open()
                self._lines.append(line)
                ids = tuple(m.spec.meter_id for m in meters)
                self.endpoints.append(Endpoint("serial", line.path, ids))
        except BaseException:
            await self.close()
            raise
        return self.endpoints

    def _bus(self, meters: list[Meter], where: str, *, can_disconnect: bool) -> Bus:
        _unique(meters, lambda m: m.spec.server_physical, where)
        source = self.link_parameters
        parameters = (lambda m: source(m.spec)) if source else None
        return Bus(meters, parameters, can_disconnect=can_disconnect)

    def _add_server(
        self, server: asyncio.Server, kind: str, host: str, meters: list[Meter]
    ) -> None:
        self._servers.append(server)
        port = int(server.sockets[0].getsockname()[1])
        ids = tuple(m.spec.meter_id for m in meters)
        self.endpoints.append(Endpoint(kind, f"{host}:{port}", ids, port))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for line in self._lines:
            line.close()
        for _ in range(3):  # connections accepted just before get their transport made
            await asyncio.sleep(0)
        for transport in list(self._live):
            transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        await asyncio.sleep(0)
        self._live.clear()
        self._servers.clear()
        self._lines.clear()


def _unique(meters: list[Meter], key: Callable[[Meter], int], where: str) -> dict[int, Meter]:
    table: dict[int, Meter] = {}
    for meter in meters:
        address = key(meter)
        if address in table:
            other = table[address].spec.meter_id
            raise ValueError(
                f"meters {other} and {meter.spec.meter_id} share address {address} on {where}"
            )
        table[address] = meter
    return table


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def describe(endpoints: Iterable[Endpoint]) -> str:
    """One line: how many meters, and where, with runs of ports folded into ranges."""
    endpoints = list(endpoints)
    parts: list[str] = []
    for kind in ("wrapper", "hdlc", "serial"):
        group = [e for e in endpoints if e.kind == kind]
        if not group:
            continue
        meters = sum(len(e.meter_ids) for e in group)
        if kind == "serial":
            where = " ".join(e.address for e in group)
        else:
            host = group[0].address.rsplit(":", 1)[0]
            where = f"{host}:{_ranges(sorted(e.port for e in group))}"
        parts.append(f"{kind} {meters} meter{'s' if meters != 1 else ''} on {where}")
    total = sum(len(e.meter_ids) for e in endpoints)
    return f"serving {total} meters; " + "; ".join(parts)


def _ranges(ports: list[int]) -> str:
    runs: list[list[int]] = []
    for port in ports:
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class BackgroundSimulator:
    """A ``Simulator`` in a thread with its own event loop; a context manager."""

    def __init__(self, simulator: Simulator, start_timeout: float = 30.0) -> None:
        self.simulator = simulator
        self._start_timeout = start_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> BackgroundSimulator:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.simulator.start(), self._loop)
        try:
            future.result(self._start_timeout)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                closing.result(10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10.0)
        if not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        await self.simulator.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.simulator.endpoints

    def endpoint_of(self, meter_id: str) -> Endpoint:
        for endpoint in self.simulator.endpoints:
            if meter_id in endpoint.meter_ids:
                return endpoint
        raise KeyError(meter_id)
