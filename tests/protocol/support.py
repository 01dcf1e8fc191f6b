"""Helpers for the protocol tests: running coroutines with a bound, fd counts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
    """Run ``coro`` in a fresh loop, failing if it takes longer than ``limit`` seconds, and
    checking that it left no task behind."""

    async def bounded() -> T:
        async with asyncio.timeout(limit):
            result = await coro
        await asyncio.sleep(0)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not others, f"tasks left running: {others}"
        return result

    return asyncio.run(bounded())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def client_descriptors() -> int:
    """Descriptors a client holds: TCP sockets not bound to a listening port of this process
    and pty devices. The simulator shares the process, so its accepted sockets (whose local
    port is a listening port) are left out."""
    inodes = _socket_inodes()
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows.extend(line.split() for line in list(f)[1:])
        except OSError:
            continue
    listening = {r[1].rsplit(":", 1)[1] for r in rows if r[3] == "0A" and r[9] in inodes}
    count = sum(
        1
        for r in rows
        if r[9] in inodes and r[3] != "0A" and r[1].rsplit(":", 1)[1] not in listening
    )
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/dev/pts/"):
                count += 1
        except OSError:
            continue
    return count
