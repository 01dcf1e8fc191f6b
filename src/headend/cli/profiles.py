"""``headend profiles``: the device profiles headend knows (list) and checking profile files
offline (check), and the quirks collection learned of them (quirks)."""

from __future__ import annotations

from pathlib import Path

import typer

from headend.cli import discover as discover_command
from headend.cli.meter_options import (
    Auth,
    AuthenticationKey,
    ClientAddress,
    EncryptionKey,
    InvocationCounter,
    MaxPdu,
    Password,
    PhysicalAddress,
    Port,
    ServerAddress,
    SystemTitle,
    Timeout,
    TransportOpt,
    meter_target,
)
from headend.cli.output import emit_json, fail
from headend.cli.state import get_runtime, get_settings
from headend.domain.enums import AuthLevel, Transport
from headend.profiles import ProfileError, load_profile, profiles_dir
from headend.profiles.checks import Finding, check_file
from headend.profiles.loader import PROFILES_DIR_VARIABLE, parse_profile
from headend.protocol.target import MeterTarget

profiles_app = typer.Typer(
    help="Device profiles: list the ones found, check profile files, discover a meter's.",
    no_args_is_help=True,
)

LIST_COLUMNS = (("name", "name"), ("manufacturer", "manufacturer"), ("file", "file"))


@profiles_app.command("list")
def list_profiles(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """The profiles in the profiles folder (HEADEND_PROFILES_DIR; default: the shipped
    protocols/ folder), and that folder."""
    try:
        folder = profiles_dir(get_settings(ctx).profiles_dir).resolve()
    except ProfileError as exc:
        fail("profiles list", str(exc))
    if not folder.is_dir():
        fail("profiles list", f"no folder {folder} ({PROFILES_DIR_VARIABLE})")
    rows: list[dict[str, object]] = []
    for path in sorted(folder.glob("*.yaml")):
        row: dict[str, object] = {"name": path.stem, "file": str(path)}
        try:
            profile = load_profile(path.stem, folder)
        except ProfileError as exc:
            row.update(manufacturer=None, description=None, problem=str(exc))
        else:
            row.update(
                manufacturer=profile.manufacturer, description=profile.description, problem=None
            )
        rows.append(row)
    if as_json:
        emit_json({"folder": str(folder), "setting": PROFILES_DIR_VARIABLE, "profiles": rows})
        return
    typer.echo(f"profiles in {folder} ({PROFILES_DIR_VARIABLE})")
    width = max([len(str(r["name"])) for r in rows] + [4])
    for row in rows:
        maker = row["manufacturer"] or "-"
        line = f"  {str(row['name']).ljust(width)}  {maker}  {row['file']}"
        if row["problem"]:
            line += f"  (does not load: {row['problem']})"
        typer.echo(line)
    if not rows:
        typer.echo("  (no *.yaml files)")


@profiles_app.command("check")
def check(
    files: list[Path] = typer.Argument(..., help="Profile files (YAML) to check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    host: str | None = typer.Option(
        None, "--host", help="Also check each profile against this meter (live)."
    ),
    port: Port = 4059,
    transport: TransportOpt = Transport.WRAPPER,
    physical_address: PhysicalAddress = 17,
    client_address: ClientAddress = 16,
    server_address: ServerAddress = 1,
    auth: Auth = AuthLevel.NONE,
    password: Password = None,
    encryption_key: EncryptionKey = None,
    authentication_key: AuthenticationKey = None,
    invocation_counter: InvocationCounter = 1,
    system_title: SystemTitle = "4845414445000001",
    max_pdu: MaxPdu = 1024,
    timeout: Timeout = 10.0,
) -> None:
    """Check profile files: the schema and consistency, and with --host against that meter
    (every object exists with its class; capture objects and capture period are the
    meter's). One line per problem (file: key: problem); exit 1 if any file has an error,
    warnings alone exit 0."""
    results = []
    bad = False
    counter = invocation_counter
    for path in files:
        findings = check_file(path)
        if host is not None and not any(not f.warning for f in findings):
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
            findings += _live(path, target, counter)
            counter += 1000  # each session's HLS counters above the previous one's
        ok = not any(not f.warning for f in findings)
        bad = bad or not ok
        results.append((path, ok, findings))
    if as_json:
        emit_json({
            "ok": not bad,
            "files": [
                {"file": str(path), "ok": ok, "findings": [f.as_dict() for f in findings]}
                for path, ok, findings in results
            ],
        })  # fmt: skip
    else:
        for path, ok, findings in results:
            for finding in findings:
                typer.echo(str(finding))
            if ok:
                typer.echo(f"{path}: ok")
    if bad:
        raise typer.Exit(1)


@profiles_app.command("quirks")
def learned_quirks(
    ctx: typer.Context,
    profile: str | None = typer.Option(None, "--profile", help="Only this device profile's."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Quirks collection learned of meter models, per device profile and firmware: first and
    last found, the meter first found on, sessions that found it."""
    rows = get_runtime(ctx).learned_quirks.as_json(profile)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no quirks learned" + (f" of {profile}" if profile else ""))
        return
    for row in rows:
        typer.echo(
            f"{row['device_profile']}  firmware {row['firmware'] or '(not known)'}  "
            f"{row['quirk']}  first {row['first_seen_at']} on {row['first_meter']}  "
            f"last {row['last_seen_at']}  sessions {row['sessions']}"
        )


def _live(path: Path, target: MeterTarget, first_counter: int) -> list[Finding]:
    profile = parse_profile(path)
    work = discover_command.survey_for_check(profile, target, first_counter)
    survey = discover_command.attempt("profiles check", work)
    if isinstance(survey, str):  # the session failed: one line, the file's
        return [Finding(str(path), "live", survey)]
    return discover_command.live_check(path, profile, survey)


discover_command.register(profiles_app)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
