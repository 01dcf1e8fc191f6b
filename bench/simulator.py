"""How many meters one simulator process serves, how many sessions it sustains, at what CPU cost.

    python bench/simulator.py [--meters 5000] [--sessions 10000] [--concurrency 1000]
                              [--latency-ms 300] [--latency-concurrency 3000]

The simulator runs in its own process (``headend simulate --fleet FILE``). This process is the
client: an asyncio client over the TCP wrapper that, per session, connects, associates (lowest
security), reads the clock and three registers, releases and closes. Three runs:

- fleet, first contact: one session per meter, each meter's data built on this first use;
- fleet: then sessions spread round-robin over every meter of the fleet;
- one meter: the same client and load against a simulator serving a single meter, the
  baseline the fleet is compared with;
- fleet with latency: every answer delayed (after a first contact with every meter), to show
  how many sessions it holds at once.

Printed per run: meters served, the most sessions in flight at once, sessions per second, and
the simulator's CPU seconds per session (from its /proc accounting), then the fleet/baseline
ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from dlms_cosem import cosem, enumerations
from dlms_cosem.connection import DlmsConnection
from dlms_cosem.protocol import xdlms
from dlms_cosem.security import NoSecurityAuthentication

from headend.simulator.fleet import FleetOptions, generate_fleet, save_fleet
from headend.simulator.spec import MeterSpec
from headend.simulator.wrapper import HEADER, HEADER_SIZE

CLIENT_SAP = 16
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def session_apdus() -> list[bytes]:
    """AARQ, GET clock, GET three registers, RLRQ: the requests of one session."""
    connection = DlmsConnection(
        client_system_title=b"BENCHCLI", authentication=NoSecurityAuthentication()
    )
    attributes = [
        (enumerations.CosemInterface.CLOCK, cosem.Obis(0, 0, 1, 0, 0)),
        (enumerations.CosemInterface.REGISTER, cosem.Obis(1, 0, 1, 8, 0)),
        (enumerations.CosemInterface.REGISTER, cosem.Obis(1, 0, 1, 8, 1)),
        (enumerations.CosemInterface.REGISTER, cosem.Obis(1, 0, 2, 8, 0)),
    ]
    gets = [
        xdlms.GetRequestNormal(cosem.CosemAttribute(interface, obis, 2)).to_bytes()
        for interface, obis in attributes
    ]
    return [connection.get_aarq().to_bytes(), *gets, connection.get_rlrq().to_bytes()]


EXPECTED_TAGS = (0x61, 0xC4, 0xC4, 0xC4, 0xC4, 0x63)


class SessionError(Exception):
    pass


class Session(asyncio.Protocol):
    """One client session as a chain of wrapper requests and answers."""

    def __init__(self, requests: list[tuple[bytes, int]], done: asyncio.Future[None]) -> None:
        self._requests = requests
        self._done = done
        self._step = 0
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._requests[0][0])

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            length = HEADER.unpack_from(self._buffer)[3]
            if len(self._buffer) < HEADER_SIZE + length:
                return
            tag = self._buffer[HEADER_SIZE]
            del self._buffer[: HEADER_SIZE + length]
            if tag != self._requests[self._step][1]:
                self._finish(SessionError(f"step {self._step}: answer tag 0x{tag:02x}"))
                return
            self._step += 1
            if self._step == len(self._requests):
                self._finish(None)
                return
            assert self._transport is not None
            self._transport.write(self._requests[self._step][0])

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(SessionError(f"closed at step {self._step}: {exc}"))

    def _finish(self, error: Exception | None) -> None:
        if not self._done.done():
            if error is None:
                self._done.set_result(None)
            else:
                self._done.set_exception(error)
        if self._transport is not None:
            self._transport.close()


@dataclass
class Result:
    name: str
    meters: int
    sessions: int
    failed: int
    peak_in_flight: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    durations: list[float]

    def percentile(self, share: float) -> float:
        if not self.durations:
            return float("nan")
        return self.durations[min(len(self.durations) - 1, int(share * len(self.durations)))]

    @property
    def per_second(self) -> float:
        return (self.sessions - self.failed) / self.seconds

    @property
    def cpu_ms_per_session(self) -> float:
        return 1000 * self.server_cpu_s / max(1, self.sessions - self.failed)

    @property
    def client_ms_per_session(self) -> float:
        return 1000 * self.client_cpu_s / max(1, self.sessions - self.failed)


async def drive(
    specs: list[MeterSpec], sessions: int, concurrency: int, timeout: float
) -> tuple[int, int, float, list[float]]:
    """Run ``sessions`` sessions over the meters, ``concurrency`` at a time."""
    loop = asyncio.get_running_loop()
    apdus = session_apdus()
    failed = in_flight = peak = 0
    next_index = 0
    durations: list[float] = []

    async def worker() -> None:
        nonlocal failed, in_flight, peak, next_index
        while next_index < sessions:
            spec = specs[next_index % len(specs)]
            next_index += 1
            wrapped = [
                (HEADER.pack(1, CLIENT_SAP, spec.server_logical, len(apdu)) + apdu, tag)
                for apdu, tag in zip(apdus, EXPECTED_TAGS, strict=True)
            ]
            done: asyncio.Future[None] = loop.create_future()

            def protocol(
                w: list[tuple[bytes, int]] = wrapped, d: asyncio.Future[None] = done
            ) -> Session:
                return Session(w, d)

            in_flight += 1
            peak = max(peak, in_flight)
            started = time.perf_counter()
            try:
                await asyncio.wait_for(
                    loop.create_connection(protocol, spec.host, spec.port),
                    timeout,
                )
                await asyncio.wait_for(done, timeout)
                durations.append(time.perf_counter() - started)
            except (OSError, TimeoutError, SessionError):
                failed += 1
            finally:
                in_flight -= 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed, peak, time.perf_counter() - began, sorted(durations)


class Served:
    """A ``headend simulate --fleet FILE`` process, up once it has printed its serving line."""

    def __init__(self, specs: list[MeterSpec], folder: Path, name: str, latency_ms: float) -> None:
        if latency_ms:
            specs = [replace(spec, latency_s=latency_ms / 1000) for spec in specs]
        self.specs = specs
        self.fleet = folder / f"{name}.json"
        save_fleet(self.fleet, specs)
        self.meters = len(specs)
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Served:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headend", "simulate", "--fleet", str(self.fleet)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("serving"):
            self.__exit__()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        return self

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def run(
    name: str, served: Served, specs: list[MeterSpec], sessions: int, concurrency: int
) -> Result:
    before = served.cpu_seconds()
    mine = resource.getrusage(resource.RUSAGE_SELF)
    failed, peak, seconds, durations = asyncio.run(
        drive(specs, sessions, concurrency, timeout=30.0)
    )
    cpu = served.cpu_seconds() - before
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime
    return Result(name, served.meters, sessions, failed, peak, seconds, cpu, client, durations)


def free_range(size: int, first: int = 20000, last: int = 60999) -> int:
    """The first port of ``size`` consecutive free ports, below the ephemeral range if it can."""
    base = first
    while base + size - 1 <= last:
        for port in range(base, base + size):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    base = port + 1
                    break
        else:
            return base
    raise RuntimeError(f"no {size} free consecutive ports in {first}..{last}")


def table(results: list[Result]) -> str:
    head = (
        f"{'run':<22}{'meters':>8}{'sessions':>10}{'failed':>8}{'in flight':>11}"
        f"{'sessions/s':>12}{'sim CPU ms/s.':>15}{'client ms/s.':>14}"
        f"{'p50 s':>8}{'p99 s':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<22}{r.meters:>8}{r.sessions:>10}{r.failed:>8}{r.peak_in_flight:>11}"
            f"{r.per_second:>12.0f}{r.cpu_ms_per_session:>15.3f}{r.client_ms_per_session:>14.3f}"
            f"{r.percentile(0.5):>8.3f}{r.percentile(0.99):>8.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--latency-concurrency", type=int, default=3000)
    parser.add_argument("--base-port", type=int, default=0, help="0: find a free range")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    today = date.today()

    @contextmanager
    def serving(meters: int, name: str, latency_ms: float) -> Iterator[Served]:
        """A simulator on ports free right now (on a shared machine they come and go)."""
        for attempt in range(3):
            base = args.base_port or free_range(meters)
            specs = generate_fleet(FleetOptions(meters, seed=5, base_port=base, today=today))
            served = Served(specs, where, name, latency_ms)
            try:
                served.__enter__()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        try:
            yield served
        finally:
            served.__exit__()

    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        with serving(args.meters, "fleet", 0) as served:
            fleet = served.specs
            first = run("fleet, first contact", served, fleet, len(fleet), args.concurrency)
            steady = run("fleet", served, fleet, args.sessions, args.concurrency)
        with serving(1, "one", 0) as served:
            baseline = run("one meter", served, served.specs, args.sessions, args.concurrency)
        results = [first, steady, baseline]
        if args.latency_ms:
            name = f"fleet, {args.latency_ms:g} ms latency"
            with serving(args.meters, "slow", args.latency_ms) as served:
                fleet = served.specs
                run("(warm-up)", served, fleet, len(fleet), args.concurrency)
                count = 2 * args.latency_concurrency
                results.append(run(name, served, fleet, count, args.latency_concurrency))
    print(table(results))
    for mine in (steady, first):
        print(
            f"{mine.name} / one meter: sessions/s x{mine.per_second / baseline.per_second:.2f}, "
            f"CPU per session x{mine.cpu_ms_per_session / baseline.cpu_ms_per_session:.2f}"
        )


if __name__ == "__main__":
    main()
