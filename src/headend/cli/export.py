"""``headend export billing``: every meter's billing records of a period, for other systems.

The output is the API's, byte for byte, because it comes from the same service:
``--format ndjson`` and ``csv`` are ``GET /api/v1/billing?format=...`` and ``nem12`` is
``GET /api/v1/billing/nem12`` (its 100 record carries the time the file was made). Records
are written as the service builds them, a page of meters at a time, never all held at once.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import typer

from headend.cli.output import Bar, counted, fail, progress_bar
from headend.cli.state import get_runtime, get_settings
from headend.config import Settings
from headend.domain.billing import BillingRecord
from headend.services.billing.service import (
    BillingPeriod,
    parse_period,
)
from headend.services.registry.imports import registry_summary

export_app = typer.Typer(help="Exports for other systems.", no_args_is_help=True)


class Format(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    NEM12 = "nem12"


class _MetersWritten:
    """A NEM12 sink that tells the bar how many meters are written: one more at each 200
    record (a meter's channel) that names another meter than the one before."""

    def __init__(self, out: TextIO, bar: Bar) -> None:
        self.out, self.bar = out, bar
        self.meters, self.last = 0, ""

    def write(self, text: str, /) -> object:
        if text.startswith("200,"):
            meter = text.split(",", 2)[1]
            if meter != self.last:
                self.meters, self.last = self.meters + 1, meter
                self.bar.update(self.meters)
        return self.out.write(text)


@contextmanager
def _destination(output: Path | None) -> Iterator[TextIO]:
    """UTF-8 text with ``\\n`` line ends to stdout, or to ``output``: written beside it first
    and put in its place only once complete, so a failed export leaves no half file."""
    if output is None:
        sys.stdout.flush()
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            yield out
        finally:
            out.flush()
            out.detach()  # stdout itself stays open
        return
    partial = output.with_name(f".{output.name}.part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _csv(rows: Iterator[list[str]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BillingRecord.csv_header())
    for row in rows:
        writer.writerow(row)


def _period(
    period: str | None, start: str | None, end: str | None, settings: Settings
) -> BillingPeriod:
    try:
        return parse_period(period, start, end, settings.tz, settings.api_max_range_days)
    except OverflowError:  # a date-time near year 1 or 9999 in some offset
        fail("export billing", f"--{'period' if period else 'start'}: is out of range")


@export_app.command("billing")
def billing(
    ctx: typer.Context,
    period: str | None = typer.Option(
        None, help="A month (2026-11) or a day (2026-11-05) in the utility's time zone."
    ),
    start: str | None = typer.Option(
        None, help="Instead of --period: start, with an offset (2026-11-01T00:00+07:00)."
    ),
    end: str | None = typer.Option(None, help="Instead of --period: end, with an offset."),
    format: Format = typer.Option(Format.NDJSON, "--format", help="csv, ndjson or nem12."),
    output: Path | None = typer.Option(
        None, "--output", "-o", dir_okay=False, help="File to write (default: stdout)."
    ),
) -> None:
    """Every meter's billing record for a period, in meter-id order, as the API streams them
    (NDJSON or CSV), or the period's intervals as a NEM12 file."""
    settings = get_settings(ctx)
    span = _period(period, start, end, settings)
    runtime = get_runtime(ctx)
    factory, service = runtime.session_factory, runtime.billing
    with progress_bar(f"billing {span.label}") as bar:
        if bar.shown:
            bar.update(0, registry_summary(factory)["meters"])
        try:
            with _destination(output) as out:
                if format is Format.NEM12:
                    service.nem12(span, _MetersWritten(out, bar))
                elif format is Format.CSV:
                    _csv(counted(service.csv_rows(span), bar), out)
                else:
                    for text in counted(service.records_json(span), bar):
                        out.write(text + "\n")
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away (| head): click ends quietly
                raise
            fail(
                "export billing",
                f"cannot write {output or 'stdout'}: {exc.strerror or exc}",
                code=1,
            )
        finally:
            if service.workers is not None:
                service.workers.close()
    if output is not None:
        typer.echo(f"billing {span.label} ({format}) written to {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
