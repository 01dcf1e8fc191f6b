"""HDLC meters on a serial line, through a pseudo-terminal pair.

The meter side is the pty's master, served here; a client opens the other end (the slave
device, or a stable symbolic link to it) with pyserial as it would an RS485 adapter or an
optical probe. The slave is kept open on this side too, so that a client closing and
reopening the port does not end the line. A pty has no baud rate of its own: a meter's
``baud_rate`` paces its answers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path

from headend.simulator.bus import Bus, BusLink

READ_SIZE = 4096


class PtyLine:
    """One serial line: a pty pair, the bus of meters behind it, the bytes between them."""

    def __init__(self, bus: Bus, link_path: str | None = None) -> None:
        """``link_path``: a symbolic link made to point at the device a client opens."""
        self.bus = bus
        self.link_path = link_path
        self._master = -1
        self._slave = -1
        self.device = ""
        self._link: BusLink | None = None
        self._outgoing = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def path(self) -> str:
        """What a client opens: the link when there is one, else the pty device."""
        return self.link_path or self.device

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)
        if self.link_path:
            link = Path(self.link_path)
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(self.device)
        self._link = BusLink(self.bus, self._write, self._never_close)
        self._link.start()
        self._loop.add_reader(self._master, self._on_readable)

    def close(self) -> None:
        if self._link is not None:
            self._link.stop()
            self._link = None
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        if self.link_path:
            link = Path(self.link_path)
            if link.is_symlink() and os.readlink(link) == self.device:
                link.unlink()

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data and self._link is not None:
            self._link.feed(data)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        if self._outgoing:
            self._outgoing += data
            return
        written = self._try_write(data)
        if written < len(data):
            self._outgoing += data[written:]
            assert self._loop is not None
            self._loop.add_writer(self._master, self._on_writable)

    def _on_writable(self) -> None:
        written = self._try_write(bytes(self._outgoing))
        del self._outgoing[:written]
        if not self._outgoing and self._loop is not None:
            self._loop.remove_writer(self._master)

    def _try_write(self, data: bytes) -> int:
        try:
            return os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self._outgoing.clear()
            return len(data)

    @staticmethod
    def _never_close() -> None:
        """A serial line cannot be closed by the meter."""
