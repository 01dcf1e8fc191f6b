"""Free loopback ports for the servers the tests start (simulated meters, the API).

A port is chosen outside the kernel's ephemeral range: a port from that range may be taken
between the probe and the server's bind by any outgoing connection of the machine (the tests'
own to PostgreSQL and RabbitMQ, a worker's, a browser's), which no probe can foresee. Ports of
the services a test machine runs are avoided too.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

LOWEST = 10000
HIGHEST = 65535
# Requests of LARGE ports or more (a fleet of thousands of simulated meters) look above
# SMALL_TOP, the others below it: the servers of tests running beside a large one, held at
# random places, would otherwise leave no long enough run free.
LARGE = 1000
SMALL_TOP = 19999
SERVICES = (range(15672, 15673), range(25672, 25673), range(35672, 35683))  # RabbitMQ's
_CHOICE = random.SystemRandom()  # not the global generator, which tests seed


def ephemeral_range() -> range:
    """The ports the kernel gives outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _spans(size: int) -> list[range]:
    """Ranges of first ports whose ``size`` consecutive ports avoid the ephemeral range and
    the services."""
    lowest, highest = (SMALL_TOP + 1, HIGHEST) if size >= LARGE else (LOWEST, SMALL_TOP)
    taken = [ephemeral_range(), *SERVICES, range(highest + 1, highest + 2)]
    spans: list[range] = []
    start = lowest
    for busy in sorted(taken, key=lambda r: r.start):
        end = min(busy.start, highest + 1)
        if end - start >= size:
            spans.append(range(start, end - size + 1))
        start = max(start, busy.stop)
        if start > highest:
            break
    return spans


def _bindable(base: int, size: int) -> int:
    """How many of the ports from ``base`` bind (as the simulator and the API bind theirs,
    with SO_REUSEADDR: a port whose last connections linger in TIME_WAIT is free for them)."""
    held: list[socket.socket] = []
    try:
        for port in range(base, base + size):
            sock = socket.socket()
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return port - base
        return size
    finally:
        for sock in held:
            sock.close()


def free_ports(size: int) -> int:
    """The first of ``size`` consecutive ports free on 127.0.0.1 (another server may still
    take them after; nothing outgoing will).

    The search starts at a random place and goes on from there, so that test runs side by
    side seldom reach for the same ports at once.
    """
    spans = _spans(size)
    if not spans:
        raise RuntimeError(f"no {size} consecutive ports outside the ephemeral range")
    candidates = sum(len(span) for span in spans)
    deadline = time.monotonic() + 60  # servers of tests beside this one come and go
    while True:
        offset = _CHOICE.randrange(candidates)
        scanned = 0
        while scanned < candidates:
            index = (offset + scanned) % candidates
            for span in spans:
                if index < len(span):
                    base = span.start + index
                    break
                index -= len(span)
            bound = _bindable(base, size)
            if bound == size:
                return base
            scanned += bound + 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {size} consecutive free ports outside the ephemeral range")
        time.sleep(0.5)


def free_port() -> int:
    """One free port on 127.0.0.1, outside the ephemeral range."""
    return free_ports(1)
