"""A ``--json`` command's stdout carries its JSON and nothing a library prints; a bug of ours
in ``probe`` ends in one ``internal`` line."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog
import typer
from dlms_cosem.enumerations import AcseServiceUserDiagnostics as Diagnostic
from dlms_cosem.protocol.xdlms.conformance import Conformance
from typer.testing import CliRunner

from headend.simulator.association import aare, initiate_response
from headend.simulator.wrapper import HEADER_SIZE, WrapperPdu

pytestmark = pytest.mark.timeout(60)
HEADEND = [sys.executable, "-m", "headend"]


def _bad_conformance_aare() -> bytes:
    """An accepting AARE whose InitiateResponse has a wrong conformance length: dlms-cosem
    prints the tag it found (to stdout) before it raises."""
    good = initiate_response(Conformance(get=True), 1024)
    bad = good.replace(b"\x5f\x1f\x04", b"\x5f\x1f\x03", 1)
    assert bad != good
    return aare(accepted=True, diagnostic=Diagnostic.NULL, ciphered_context=False,
                user_information=bad)  # fmt: skip


@contextmanager
def _hostile_meter() -> Iterator[int]:
    """A wrapper meter on loopback that answers every AARQ with ``_bad_conformance_aare``."""
    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                header = conn.recv(HEADER_SIZE)
                if len(header) < HEADER_SIZE:
                    continue
                length = int.from_bytes(header[6:8], "big")
                while length > 0:
                    length -= len(conn.recv(length))
                source = int.from_bytes(header[2:4], "big")
                dest = int.from_bytes(header[4:6], "big")
                conn.sendall(WrapperPdu(dest, source, _bad_conformance_aare()).to_bytes())
                conn.recv(1024)  # until the client gives up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.close()


def test_probe_json_stdout_stays_clean_when_dlms_cosem_prints_on_a_bad_conformance_tag() -> None:
    with _hostile_meter() as port:
        result = subprocess.run(
            [*HEADEND, "probe", "--json", "--port", str(port), "--timeout", "3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "bytearray" in result.stderr  # what the library printed went to stderr
    assert "headend probe: decode_error:" in result.stderr


def test_probe_without_json_reports_the_same_failure_by_its_category() -> None:
    with _hostile_meter() as port:
        result = subprocess.run(
            [*HEADEND, "probe", "--port", str(port), "--timeout", "3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "headend probe: decode_error:" in result.stderr


def test_a_bug_of_ours_in_probe_ends_in_one_internal_line_with_the_traceback_in_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from headend.cli import probe
    from headend.cli.output import Commands

    async def buggy(*args: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(probe, "run_probe", buggy)
    app = typer.Typer(cls=Commands)
    probe.register(app)

    @app.callback()
    def _root() -> None:
        pass

    saved = structlog.get_config()
    try:
        result = CliRunner().invoke(app, ["probe", "--json", "--port", "1"])
    finally:
        structlog.configure(**saved)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "headend probe: internal: RuntimeError('a bug of ours')" in result.stderr
    assert "Traceback" in result.stderr
