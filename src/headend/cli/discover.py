"""``headend profiles discover``: draft a device profile from a meter; and the live half of
``headend profiles check --host``: a profile against the meter.

Both open one session with the connection options of ``meter_options``. A failure of the
session ends the command with one line, ``category: message`` (``internal`` for a bug of ours,
its traceback in the log on stderr), exit 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import structlog
import typer

from headend.cli.meter_options import (
    Auth,
    AuthenticationKey,
    ClientAddress,
    EncryptionKey,
    InvocationCounter,
    MaxPdu,
    PhysicalAddress,
    Port,
    ServerAddress,
    SystemTitle,
    Timeout,
    TransportOpt,
    meter_target,
)
from headend.cli.meter_options import Password as PasswordOpt
from headend.cli.output import fail
from headend.config import load_settings
from headend.domain.enums import AuthLevel, Transport
from headend.domain.survey import Survey
from headend.logs import configure_logging
from headend.profiles import DeviceProfile
from headend.profiles import classify as billing_objects
from headend.profiles.checks import Finding
from headend.profiles.draft import DraftError, draft_profile
from headend.profiles.live import candidates, live_findings, wanted
from headend.profiles.writer import render
from headend.protocol.discover import discover_meter
from headend.protocol.errors import ProtocolError
from headend.protocol.security import MemoryCounterStore
from headend.protocol.target import MeterTarget
from headend.services.collection.readspec import proposed_by

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _end(command: str, line: str) -> NoReturn:
    typer.echo(f"headend {command}: {' '.join(line.split())}", err=True)
    raise typer.Exit(1)


def attempt(command: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T | str:
    """Run one meter session: its result, or its failure as ``category: message``. A bug of
    ours ends the command (``internal``, the traceback in the log)."""
    try:
        return asyncio.run(work())
    except ProtocolError as exc:
        return exc.one_line()
    except ValueError as exc:
        return f"configuration: {exc}"
    except Exception as exc:  # a bug of ours: one line here, the traceback in the log
        if not structlog.is_configured():
            configure_logging()
        log.exception(f"{command} failed on an internal error")
        _end(command, f"internal: {exc!r}")


def run_session(command: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one meter session; a failure ends the command with its category."""
    result = attempt(command, work)
    if isinstance(result, str):
        _end(command, result)
    return result


def survey_for_check(
    profile: DeviceProfile, target: MeterTarget, first_counter: int = 1
) -> Callable[[], Coroutine[Any, Any, Survey]]:
    """The survey ``profiles check --host`` compares ``profile`` with; the session proposes
    the PDU and takes the overrun that collection would."""
    ours = wanted(profile)
    target = proposed_by(target, profile.quirks)

    async def work() -> Survey:
        return await discover_meter(
            target,
            candidates=candidates(profile),
            wanted=lambda obis, _class: obis in ours,
            counters=MemoryCounterStore(first=first_counter),
            try_quirks=False,
            release=profile.quirks.supports_release,
        )

    return work


def live_check(path: Path, profile: DeviceProfile, survey: Survey) -> list[Finding]:
    return [Finding(str(path), key, problem) for key, problem in live_findings(profile, survey)]


def register(profiles_app: typer.Typer) -> None:
    @profiles_app.command("discover")
    def discover(
        name: str = typer.Option(..., "--name", help="The profile's name (and file name)."),
        output: Path | None = typer.Option(
            None, "-o", "--output", help="The file to write; default NAME.yaml here."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
        host: str = typer.Option(..., "--host", help="Meter, modem or converter host."),
        port: Port = 4059,
        transport: TransportOpt = Transport.WRAPPER,
        physical_address: PhysicalAddress = 17,
        client_address: ClientAddress = 16,
        server_address: ServerAddress = 1,
        auth: Auth = AuthLevel.NONE,
        password: PasswordOpt = None,
        encryption_key: EncryptionKey = None,
        authentication_key: AuthenticationKey = None,
        invocation_counter: InvocationCounter = 1,
        system_title: SystemTitle = "4845414445000001",
        max_pdu: MaxPdu = 1024,
        timeout: Timeout = 10.0,
    ) -> None:
        """Associate with a meter, read what it has and write a device profile for it.

        The file's comments say what was found on the meter and what was guessed. Prints the
        file's path; on failure one line naming the failure category, exit 1."""
        command = "profiles discover"
        settings = load_settings()
        if not _valid_name(name):
            fail(command, "--name: use lower-case letters, digits and _")
        path = output if output is not None else Path(f"{name}.yaml")
        if path.stem != name or path.suffix != ".yaml":
            fail(command, f"-o: the file must be named {name}.yaml")
        if path.exists() and not force:
            fail(command, f"{path} exists (--force overwrites it)")
        target = meter_target(
            host=host,
            port=port,
            transport=transport,
            physical_address=physical_address,
            client_address=client_address,
            server_address=server_address,
            auth=auth,
            password=password,
            encryption_key=encryption_key,
            authentication_key=authentication_key,
            system_title=system_title,
            max_pdu=max_pdu,
            timeout=timeout,
        )

        async def work() -> Survey:
            return await discover_meter(
                target,
                candidates=billing_objects.CANDIDATES,
                wanted=billing_objects.wanted,
                counters=MemoryCounterStore(first=invocation_counter),
            )

        found = run_session(command, work)
        where = f"{host}:{port} ({transport.value}"
        where += f", physical address {physical_address})" if transport is Transport.HDLC else ")"
        try:
            draft = draft_profile(
                found,
                name,
                source=where,
                discovered_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                utility_zone=settings.timezone,
            )
        except DraftError as exc:
            _end(command, f"{exc.category}: {exc}")
        try:
            path.write_text(render(draft), encoding="utf-8")
        except OSError as exc:
            fail(command, f"cannot write {path} ({exc.strerror})")
        typer.echo(str(path))


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isdigit() or c == "_" or "a" <= c <= "z" for c in name)
