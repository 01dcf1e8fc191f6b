"""Free loopback ports for the servers the tests start (simulated meters, the API).

A port is chosen outside the kernel's ephemeral range: a port from that range may be taken
between the probe and the server's bind by any outgoing connection of the machine (the tests'
own to PostgreSQL and RabbitMQ, a worker's, a browser's), which no probe can foresee. Ports of
the services a test machine runs are avoided too.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000
HIGHEST = 65535
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
    taken = sorted([ephemeral_range(), *SERVICES], key=lambda r: r.start)
    spans: list[range] = []
    start = LOWEST
    for busy in [*taken, range(HIGHEST + 1, HIGHEST + 2)]:
        if busy.start - start >= size:
            spans.append(range(start, busy.start - size + 1))
        start = max(start, busy.stop)
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
    raise RuntimeError(f"no {size} consecutive free ports outside the ephemeral range")


def free_port() -> int:
    """One free port on 127.0.0.1, outside the ephemeral range."""
    return free_ports(1)
