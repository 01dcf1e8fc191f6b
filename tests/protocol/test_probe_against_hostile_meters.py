"""``headend probe``, run as an operator runs it, against each class of hostile meter over the
TCP wrapper and HDLC: it ends by itself with one line naming a category on stderr, no
traceback, nothing on stdout, and its process never grows past 150 MiB."""

from __future__ import annotations

import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from headend.domain.enums import FailureCategory, Transport
from headend.domain.obis import Obis
from headend.protocol import axdr
from tests.protocol.hostile_link import HostileMeter, endless_blocks, in_background, one_answer
from tests.protocol.hostile_values import Answer, hostile_meter

pytestmark = pytest.mark.timeout(120)
LOAD_PROFILE = Obis.parse("1.0.99.1.0.255")
A_PLUS = Obis.parse("1.0.1.8.0.255")
MIB = 1024 * 1024
RSS_LIMIT = 150 * MIB

# a port serving the hostile meter, for as long as the context lasts
Served = Callable[[Transport], AbstractContextManager[int]]


def _scripted(make: Callable[[Transport], HostileMeter]) -> Served:
    @contextmanager
    def serve(transport: Transport) -> Iterator[int]:
        with in_background(make(transport)) as meter:
            yield meter.port

    return serve


def _crafted(answers: dict[tuple[Obis, int], Answer]) -> Served:
    @contextmanager
    def serve(transport: Transport) -> Iterator[int]:
        with hostile_meter(transport, answers) as fleet:
            yield int(fleet.sim.endpoint_of("X1").address.rpartition(":")[2])

    return serve


def _long64(value: int) -> bytes:
    return bytes((axdr.LONG64,)) + value.to_bytes(8, "big", signed=True)


@dataclass(frozen=True)
class Hostile:
    serve: Served
    category: FailureCategory
    options: tuple[str, ...] = ()


HOSTILE = {
    "an endless transfer of 60 KB blocks": Hostile(
        _scripted(lambda t: HostileMeter(t, endless_blocks(60_000))),
        FailureCategory.MALFORMED_FRAME,
    ),
    "an endless transfer answered just inside the step timeout": Hostile(
        _scripted(lambda t: HostileMeter(t, endless_blocks(100, delay=0.3))),
        FailureCategory.RESPONSE_TIMEOUT,
        ("--timeout", "2", "--budget", "3"),
    ),
    "10,000 nested arrays by block transfer": Hostile(
        _crafted({(LOAD_PROFILE, 2): b"\x01\x01" * 10_000 + b"\x00"}),
        FailureCategory.DECODE_ERROR,
    ),
    "an array claiming 4 billion elements": Hostile(
        _crafted({(LOAD_PROFILE, 2): b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 16}),
        FailureCategory.DECODE_ERROR,
    ),
    "an answer of 60 KB after a 1024-byte PDU": Hostile(
        _scripted(lambda t: HostileMeter(t, one_answer(60_000))),
        FailureCategory.MALFORMED_FRAME,
    ),
    "a register value that is NaN": Hostile(
        _crafted({(A_PLUS, 2): bytes((axdr.FLOAT64,)) + struct.pack(">d", math.nan)}),
        FailureCategory.DECODE_ERROR,
    ),
    "a scaler of 2^62": Hostile(
        _crafted({(A_PLUS, 3): axdr.structure(_long64(2**62), axdr.enum(30))}),
        FailureCategory.DECODE_ERROR,
    ),
}


@dataclass(frozen=True)
class Ended:
    code: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes


# A child forked from this (large) test process starts with this process's peak RSS as its
# own, and keeps it across exec: the probe is started by a small launcher instead, which
# reports its child's peak (ru_maxrss, KiB on Linux) in a file.
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _probe(port: int, transport: Transport, *options: str, limit: float = 60) -> Ended:
    """Run ``headend probe --json`` in its own process; its exit, output and peak RSS."""
    args = [
        "-m",
        "headend",
        "probe",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--transport",
        transport.value,
        "--max-pdu",
        "1024",
        *(options or ("--timeout", "5", "--budget", "30")),
        "--json",
    ]
    with tempfile.TemporaryDirectory() as folder:
        peak = Path(folder) / "peak"
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(peak), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # the launcher and the probe, killed together on a hang
        )
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"probe still running after {limit} s") from None
        return Ended(process.returncode, stdout, stderr, int(peak.read_text()) * 1024)


@pytest.mark.slow
@pytest.mark.parametrize("transport", [Transport.WRAPPER, Transport.HDLC])
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_probe_against_a_hostile_meter_ends_with_one_line_naming_a_meter_side_category(
    hostile: str, transport: Transport
) -> None:
    case = HOSTILE[hostile]
    with case.serve(transport) as port:
        ended = _probe(port, transport, *case.options)
    lines = ended.stderr.splitlines()
    assert ended.code == 1, ended.stderr
    assert "Traceback" not in ended.stderr
    assert lines == [lines[-1]] and lines[0].startswith("headend probe: "), ended.stderr
    assert lines[0].startswith(f"headend probe: {case.category.value}: "), ended.stderr
    assert ended.stdout == ""
    print(f"{hostile} over {transport.value}: peak RSS {ended.peak_rss / MIB:.1f} MiB")
    assert ended.peak_rss < RSS_LIMIT, f"{ended.peak_rss / MIB:.0f} MiB"
