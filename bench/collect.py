"""Daily collections from a simulated fleet: headend's asyncio client against dlms-cosem's
blocking ``DlmsClient`` driven by a pool of threads, over the TCP wrapper and over HDLC.
``python bench/collect.py fleet`` runs the fleet benchmark instead (see collect_fleet.py).

    python bench/collect.py [--meters 400] [--sessions 800] [--concurrency 400]
                            [--threads 32] [--transports wrapper,hdlc]
                            [--latency-ms 300] [--latency-meters 1200]

A session is a daily collection: associate (lowest security), read the clock, the six
registers of the single-phase profile, the last 24 hours of the 15-minute load profile (96
rows) and release. Scalers are read once per meter and cached by both clients. The simulator
runs in its own process (``headend simulate --fleet FILE``); this process is the client, and
its CPU time per session is what is reported. A meter never has two sessions at once.

Runs, per transport: a warm-up pass (one session per meter, so that every simulated meter
has built its data), then headend and the baseline on the same fleet. Then headend alone with
``--latency-ms`` of round-trip latency added by every simulated meter, with at least 1,000
sessions in flight. Printed: sessions per second and client CPU ms per session, and the
ratios (headend / baseline; latency / no latency).

The baseline's HDLC receive is handed frames cut by their length field: as shipped it waits
for the next 0x7E flag and hangs on the one frame in 256 whose check sequence ends in 0x7E.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attr
import structlog
from dlms_cosem import cosem, utils
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem.capture_object import CaptureObject
from dlms_cosem.cosem.selective_access import RangeDescriptor
from dlms_cosem.enumerations import CosemInterface
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, TcpTransport
from dlms_cosem.security import NoSecurityAuthentication

from headend.domain.enums import Transport
from headend.logs import configure_logging
from headend.profiles import load_profile
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import ProtocolError
from headend.protocol.hdlc import FrameReader
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts
from headend.services.collection.readspec import read_spec_from_profile
from headend.simulator.fleet import FleetOptions, generate_fleet, save_fleet
from headend.simulator.spec import MeterSpec

PROFILE = "single_phase_residential"
CLOCK = cosem.Obis(0, 0, 1, 0, 0)
ZONE_OFFSET = timedelta(hours=7)


# --- the simulator in its own process -------------------------------------------------------


class Served:
    def __init__(self, specs: list[MeterSpec], folder: Path, name: str) -> None:
        self.path = folder / f"{name}.json"
        save_fleet(self.path, specs)
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Served:
        code = "from headend.cli.main import main; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "simulate", "--fleet", str(self.path)],
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
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def free_range(size: int, first: int = 20000, last: int = 32000) -> int:
    """The first of ``size`` consecutive free ports, from a random start (other fleets on the
    same machine tend to start at 20000)."""
    base = random.randrange(first, max(first + 1, last - 3 * size))
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
    raise RuntimeError(f"no {size} free consecutive ports")


def fleet_of(meters: int, transport: str, base: int, latency_s: float = 0.0) -> list[MeterSpec]:
    options = FleetOptions(
        meters * 5 // 4 + 5, seed=7, transport=transport, base_port=base, bus_size=1,
        today=date.today(),
    )  # fmt: skip
    specs = [s for s in generate_fleet(options) if s.profile == PROFILE][:meters]
    return [replace(s, latency_s=latency_s) for s in specs]


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    sessions: int
    failed: int
    peak: int
    seconds: float
    cpu_s: float
    rows: int
    server_cpu_s: float = 0.0

    @property
    def per_second(self) -> float:
        return (self.sessions - self.failed) / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / max(1, self.sessions - self.failed)

    @property
    def server_cpu_ms(self) -> float:
        return 1000 * self.server_cpu_s / max(1, self.sessions - self.failed)


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def day_window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end = end.replace(minute=end.minute // 15 * 15)
    return end - timedelta(days=1) + timedelta(seconds=1), end


def target_of(spec: MeterSpec, timeout: float) -> MeterTarget:
    return MeterTarget(
        meter_id=spec.meter_id,
        transport=spec.transport,
        host=spec.host,
        port=spec.port,
        server_logical=spec.server_logical,
        server_physical=spec.server_physical,
        timeouts=Timeouts(connect=timeout, link=timeout, response=timeout, close=timeout),
    )


async def headend_run(
    name: str, specs: list[MeterSpec], sessions: int, concurrency: int, timeout: float
) -> Result:
    read_spec = read_spec_from_profile(load_profile(PROFILE))
    cache = DefinitionCache()
    start, end = day_window()
    what = Collection(start=start, end=end)
    failed = in_flight = peak = rows = 0
    lanes = min(concurrency, len(specs))

    async def lane(index: int) -> None:
        nonlocal failed, in_flight, peak, rows
        mine = specs[index::lanes]  # a meter belongs to one lane: never two sessions at once
        for n in range(index, sessions, lanes):
            spec = mine[(n // lanes) % len(mine)]
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                async with MeterSession(target_of(spec, timeout)) as session:
                    read = await collect(session, read_spec, what, cache)
                rows += len(read.load_profile.rows) if read.load_profile else 0
            except ProtocolError:
                failed += 1
            finally:
                in_flight -= 1

    cpu, began = cpu_now(), time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(lanes)))
    seconds, cpu_s = time.perf_counter() - began, cpu_now() - cpu
    return Result(name, sessions, failed, peak, seconds, cpu_s, rows)


# --- the baseline: dlms-cosem's blocking client in a thread pool -------------------------------


@attr.s(auto_attribs=True)
class LengthFramedTcpIO(BlockingTcpIO):
    """``BlockingTcpIO`` whose ``recv_until`` hands out whole HDLC frames by their length.

    dlms-cosem's frame search stops at every 0x7E inside a frame; each such stop is answered
    with an empty read so that its search goes on to the real closing flag."""

    def recv_until(self, end: bytes) -> bytes:
        state = self.__dict__.setdefault("_framing", {"reader": FrameReader(), "flags": 0})
        if state["flags"]:
            state["flags"] -= 1
            return b""
        reader: FrameReader = state["reader"]
        while (frame := reader.next_frame()) is None:
            assert self.tcp_socket is not None
            chunk = self.tcp_socket.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            reader.feed(chunk)
        state["flags"] = frame.count(0x7E)
        return b"\x7e" + frame + b"\x7e"


def baseline_session(
    spec: MeterSpec, start: datetime, end: datetime, scalers: dict[str, dict[Any, Any]]
) -> int:
    if spec.transport is Transport.WRAPPER:
        io: Any = BlockingTcpIO(spec.host, spec.port, timeout=10)
        transport: Any = TcpTransport(16, spec.server_logical, io)
    else:
        io = LengthFramedTcpIO(spec.host, spec.port, timeout=10)
        transport = HdlcTransport(16, spec.server_logical, io, spec.server_physical)
    client = DlmsClient(transport, NoSecurityAuthentication(), max_pdu_size=1024)
    registers = [
        (CosemInterface(o.class_id), cosem.Obis(*o.obis.to_bytes()))
        for o in read_spec_from_profile_cached().registers
    ]
    known = scalers.setdefault(spec.meter_id, {})
    clock_attr = cosem.CosemAttribute(CosemInterface.CLOCK, CLOCK, 2)
    with client.session() as c:
        utils.parse_as_dlms_data(c.get(clock_attr))
        for interface, obis in registers:
            utils.parse_as_dlms_data(c.get(cosem.CosemAttribute(interface, obis, 2)))
            if obis.to_bytes() not in known:
                raw = c.get(cosem.CosemAttribute(interface, obis, 3))
                known[obis.to_bytes()] = utils.parse_as_dlms_data(raw)
        lp = cosem.CosemAttribute(CosemInterface.PROFILE_GENERIC, cosem.Obis(1, 0, 99, 1, 0), 2)
        window = RangeDescriptor(
            restricting_object=CaptureObject(clock_attr),
            from_value=start.astimezone(datetime_zone()),
            to_value=end.astimezone(datetime_zone()),
        )
        rows = utils.parse_as_dlms_data(c.get(lp, access_descriptor=window))
    return len(rows)


_SPEC_LOCK = threading.Lock()
_SPEC: list[Any] = []


def read_spec_from_profile_cached() -> Any:
    with _SPEC_LOCK:
        if not _SPEC:
            _SPEC.append(read_spec_from_profile(load_profile(PROFILE)))
        return _SPEC[0]


def datetime_zone() -> Any:
    from datetime import timezone

    return timezone(ZONE_OFFSET)


def baseline_run(name: str, specs: list[MeterSpec], sessions: int, threads: int) -> Result:
    start, end = day_window()
    scalers: dict[str, dict[Any, Any]] = {}
    failed = rows = 0
    lanes = min(threads, len(specs))
    lock = threading.Lock()

    def lane(index: int) -> None:
        nonlocal failed, rows
        mine = specs[index::lanes]
        for n in range(index, sessions, lanes):
            try:
                got = baseline_session(mine[(n // lanes) % len(mine)], start, end, scalers)
                with lock:
                    rows += got
            except Exception:
                with lock:
                    failed += 1

    cpu, began = cpu_now(), time.perf_counter()
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(lane, range(lanes)))
    seconds, cpu_s = time.perf_counter() - began, cpu_now() - cpu
    return Result(name, sessions, failed, lanes, seconds, cpu_s, rows)


# --- report ----------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    head = (
        f"{'run':<34}{'sessions':>9}{'failed':>7}{'in flight':>10}{'rows':>8}"
        f"{'sessions/s':>11}{'client CPU ms/session':>23}{'simulator CPU ms':>18}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<34}{r.sessions:>9}{r.failed:>7}{r.peak:>10}{r.rows:>8}"
            f"{r.per_second:>11.1f}{r.cpu_ms:>23.2f}{r.server_cpu_ms:>18.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=400)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--transports", default="wrapper,hdlc")
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--latency-meters", type=int, default=1200)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--baseline-logging",
        choices=("shipped", "quiet"),
        default="shipped",
        help="shipped (the baseline): dlms-cosem as it comes, structlog's defaults, every APDU "
        "rendered (to /dev/null); quiet: its per-APDU INFO logging filtered out",
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.baseline_logging == "quiet":
        configure_logging("WARNING")  # dlms-cosem logs every APDU at INFO: filter it out
    else:
        sink = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))
    results: list[Result] = []
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        zero: dict[str, Result] = {}
        for kind in args.transports.split(","):
            specs = fleet_of(args.meters, kind, free_range(args.meters + 10))
            with Served(specs, where, kind) as served:
                asyncio.run(headend_run("warm-up", specs, len(specs), args.concurrency, 60))
                before = served.cpu_seconds()
                ours = asyncio.run(
                    headend_run(f"headend {kind}", specs, args.sessions, args.concurrency,
                                args.timeout)
                )  # fmt: skip
                ours.server_cpu_s, before = served.cpu_seconds() - before, served.cpu_seconds()
                theirs = baseline_run(
                    f"dlms-cosem x{args.threads} threads {kind}", specs, args.sessions,
                    args.threads,
                )  # fmt: skip
                theirs.server_cpu_s = served.cpu_seconds() - before
            results += [ours, theirs]
            zero[kind] = ours
            ratios.append(
                f"{kind}: headend / dlms-cosem sessions/s "
                f"x{ours.per_second / theirs.per_second:.2f}, "
                f"CPU per session x{ours.cpu_ms / theirs.cpu_ms:.2f}"
            )
        if args.latency_ms:
            kind = args.transports.split(",")[0]
            count = args.latency_meters
            specs = fleet_of(count, kind, free_range(count + 10), args.latency_ms / 1000)
            with Served(specs, where, "latency") as served:
                asyncio.run(headend_run("warm-up", specs, len(specs), count, 120))
                before = served.cpu_seconds()
                slow = asyncio.run(
                    headend_run(f"headend {kind} {args.latency_ms:g} ms latency", specs,
                                count * 2, count, args.timeout)
                )  # fmt: skip
                slow.server_cpu_s = served.cpu_seconds() - before
            results.append(slow)
            ratios.append(
                f"{kind} with {args.latency_ms:g} ms latency: {slow.peak} sessions in flight, "
                f"throughput x{slow.per_second / zero[kind].per_second:.2f} of no latency"
            )
    print(table(results))
    for line in ratios:
        print(line)


if __name__ == "__main__":
    if sys.argv[1:2] == ["fleet"]:  # the fleet run through scheduler, dispatcher and store
        sys.path.insert(0, str(Path(__file__).parent))
        from collect_fleet import main as fleet_main

        sys.exit(fleet_main(sys.argv[2:]))
    main()
