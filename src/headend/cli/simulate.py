"""The ``headend simulate`` command: generate or load a fleet of meters and serve it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer

from headend.cli.output import json_stdout
from headend.simulator.faultspec import HELP as FAULTS_HELP
from headend.simulator.faultspec import FaultSpecError, parse_faults
from headend.simulator.fleet import (
    DEFAULT_PTY_DIR,
    FleetError,
    FleetOptions,
    generate_fleet,
    load_fleet,
    save_fleet,
)
from headend.simulator.registry import write_registry
from headend.simulator.spec import MeterSpec

Opt = typer.Option


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(name="simulate")(simulate)


def simulate(
    meters: Annotated[int | None, Opt("--meters", help="Generate a fleet of N meters.")] = None,
    fleet: Annotated[
        Path | None, Opt("--fleet", help="Serve (or query) a saved fleet file.")
    ] = None,
    base_port: Annotated[int, Opt(help="First TCP port of a generated fleet.")] = 20000,
    transport: Annotated[
        str,
        Opt(
            help="wrapper (TCP wrapper), hdlc (HDLC buses on TCP), serial (HDLC buses on "
            "ptys) or mixed (60/30/10)."
        ),
    ] = "wrapper",
    faults: Annotated[str | None, Opt("--faults", help=FAULTS_HELP)] = None,
    seed: Annotated[int, Opt(help="Seed of a generated fleet: same seed, same fleet.")] = 1,
    auth: Annotated[str, Opt(help="none, lls, hls_gmac, or mixed (a third each).")] = "none",
    per_port: Annotated[int, Opt(help="Logical devices behind one wrapper port.")] = 1,
    bus_size: Annotated[int, Opt(help="Meters on one HDLC bus (TCP or pty).")] = 4,
    pty_dir: Annotated[str, Opt(help="Where the serial lines' stable links are made.")] = (
        DEFAULT_PTY_DIR
    ),
    latency_ms: Annotated[float, Opt(help="Added to every answer of every meter.")] = 0.0,
    baud: Annotated[int | None, Opt(help="Pace HDLC meters' answers at this baud rate.")] = None,
    history_days: Annotated[int, Opt(help="Days of history a generated meter holds.")] = 40,
    fleet_out: Annotated[Path | None, Opt(help="Save the fleet to this JSON file.")] = None,
    registry_out: Annotated[
        Path | None, Opt(help="Write the registry CSV for `headend meters import`.")
    ] = None,
    timezone: Annotated[str, Opt(help="The utility's time zone.")] = "Asia/Ho_Chi_Minh",
    expect: Annotated[
        str | None, Opt("--expect", help="Print the truth for this meter and exit.")
    ] = None,
    start: Annotated[str | None, Opt(help="Start of the --expect period (ISO 8601).")] = None,
    end: Annotated[str | None, Opt(help="End of the --expect period (ISO 8601).")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the --expect truth as JSON.")] = False,
    no_serve: Annotated[
        bool, Opt("--no-serve", help="Write the fleet and registry files, then exit.")
    ] = False,
) -> None:
    """Serve simulated DLMS/COSEM meters on 127.0.0.1 until interrupted (SIGINT or SIGTERM).

    Either generate a fleet (--meters) or load one (--fleet). While serving, one line says
    where the meters are. With --expect METER_ID --start ISO --end ISO, print what that meter
    measured over the period (register values at both ends, consumption per channel and per
    tariff, in kWh) and exit without serving.
    """
    try:
        specs = _fleet(
            meters, fleet, FleetOptions(
                meters=meters or 0, seed=seed, transport=transport, auth=auth,
                faults=parse_faults(faults), base_port=base_port, per_port=per_port,
                bus_size=bus_size, pty_dir=pty_dir, latency_s=latency_ms / 1000.0,
                baud_rate=baud, history_days=history_days, timezone=timezone,
            ),
        )  # fmt: skip
    except (FleetError, FaultSpecError) as exc:
        _fail(str(exc))
    if expect is not None:
        _expect(specs, expect, start, end, timezone, as_json)
        return
    if fleet_out is not None:
        save_fleet(fleet_out, specs, seed=None if fleet else seed)
    if registry_out is not None:
        write_registry(registry_out, specs, timezone)
    if no_serve:
        return
    try:
        asyncio.run(_serve(specs, timezone))
    except OSError as exc:
        _fail(f"cannot serve the fleet: {exc}")


def _fleet(meters: int | None, fleet: Path | None, options: FleetOptions) -> list[MeterSpec]:
    if (meters is None) == (fleet is None):
        raise FleetError("give either --meters N (generate a fleet) or --fleet FILE")
    if fleet is not None:
        return load_fleet(fleet)
    return generate_fleet(options)


def _expect(
    specs: list[MeterSpec],
    meter_id: str,
    start: str | None,
    end: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    from headend.simulator.devices import meter_data

    spec = next((s for s in specs if s.meter_id == meter_id), None)
    if spec is None:
        _fail(f"meter {meter_id} is not in the fleet")
    if start is None or end is None:
        _fail("--expect needs --start and --end")
    zone = ZoneInfo(timezone)
    begin, finish = _instant(start, zone, "--start"), _instant(end, zone, "--end")
    if finish <= begin:
        _fail("--end must be after --start")
    truth = meter_data(spec, timezone).truth(begin, finish)
    if as_json:
        print(truth.to_json(), file=json_stdout())
        return
    data = truth.to_dict()
    typer.echo(f"meter {meter_id}  {data['start']} .. {data['end']}")
    for key in ("registers", "consumption", "tariffs", "faults"):
        typer.echo(f"{key}: {json.dumps(data[key])}")


def _instant(text: str, zone: ZoneInfo, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r} is not an ISO 8601 date-time")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


async def _serve(specs: list[MeterSpec], timezone: str) -> None:
    from headend.simulator.devices import cosem_devices, link_parameters
    from headend.simulator.serve import Simulator, describe, raise_file_limit

    raise_file_limit()
    simulator = Simulator(specs, cosem_devices(timezone), link_parameters, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        endpoints = await simulator.start()
        typer.echo(describe(endpoints))
        sys.stdout.flush()
        await stop.wait()
    finally:
        await simulator.close()


def _fail(message: str) -> NoReturn:
    typer.echo(f"headend simulate: {message}", err=True)
    raise typer.Exit(2)
