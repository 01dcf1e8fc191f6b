"""CPU time of other processes, read from /proc: a worker, PostgreSQL's server (its backends
included, those that ended too) and RabbitMQ's Erlang VM. Linux only."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # after the command name, from field 3 on


def process_cpu(pid: int, children: bool = False) -> float:
    """Seconds of CPU a live process used (user + system); with ``children``, also those of
    its ended children it waited for."""
    fields = _fields(pid)
    used = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / TICK


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _parent(pid: int) -> int:
    return int(_fields(pid)[1])


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return found


def postgres_cpu() -> float:
    """The PostgreSQL server's CPU seconds so far: the postmaster, its live backends and
    background processes, and the ended ones it reaped."""
    pids = _pids_named("postgres")
    if not pids:
        return 0.0
    live = set(pids)
    roots = [pid for pid in pids if _parent(pid) not in live]
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu(pid, children=pid in roots)
        except (OSError, ValueError):
            continue  # ended meanwhile: counted by its parent from now on
    return total


def rabbitmq_cpu() -> float:
    """RabbitMQ's Erlang VM's CPU seconds so far (0 when it is not found)."""
    total = 0.0
    for pid in _pids_named("beam.smp"):
        try:
            total += process_cpu(pid)
        except (OSError, ValueError):
            continue
    return total
