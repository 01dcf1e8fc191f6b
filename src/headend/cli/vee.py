"""The ``headend vee`` command: validate and estimate interval files without a store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from headend.cli.output import json_stdout
from headend.vee.csvfiles import CsvError, parse_intervals, parse_registers
from headend.vee.model import MeterContext, VeeResult
from headend.vee.pipeline import run_vee
from headend.vee.report import json_chunks
from headend.vee.ruleset import RuleSetError, default_rules, rules_from_yaml

vee_app = typer.Typer(
    help="Validation, estimation and editing of meter data.", no_args_is_help=True
)


def _fail(message: str) -> None:
    typer.echo(f"headend vee: {message}", err=True)
    raise typer.Exit(code=2)


def _read(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    except OSError as exc:
        _fail(f"cannot read the {what} file {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _fail(f"the {what} file {path} is not UTF-8 text")
    return []


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--now {text!r} is not an ISO 8601 timestamp")
    if moment.tzinfo is None:
        _fail(f"--now {text!r} needs a UTC offset, e.g. {text}+07:00")
    return moment


def _summary(result: VeeResult) -> str:
    qualities = Counter(v.quality.value for v in result.versions)
    rules = Counter(f.rule for f in result.findings)
    lines = [f"{len(result.versions)} intervals"]
    lines += [f"  {q:<24}{n}" for q, n in sorted(qualities.items())]
    lines.append(f"{len(result.findings)} findings")
    lines += [f"  {r:<24}{n}" for r, n in sorted(rules.items())]
    lines.append(f"{len(result.reread_requests)} re-read requests")
    return "\n".join(lines)


@vee_app.command("run")
def run(
    intervals: Annotated[
        Path, typer.Option(help="interval CSV: meter_id,channel,interval_end,value,status")
    ],
    registers: Annotated[
        Path | None, typer.Option(help="register CSV: meter_id,obis,read_at,value")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="YAML rules overriding the defaults")] = None,
    meter_class: Annotated[
        str | None, typer.Option(help="apply this meter class's overrides to every meter")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="the time the run happens at (ISO 8601); decides re-read requests; default: now"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the full result as JSON")] = False,
) -> None:
    """Validate and estimate an interval file; print the result (JSON with --json)."""
    try:
        rule_set = (
            rules_from_yaml("".join(_read(rules, "rules")), str(rules))
            if rules
            else default_rules()
        )
        interval_reads = parse_intervals(_read(intervals, "intervals"), str(intervals))
        register_reads = (
            parse_registers(_read(registers, "registers"), str(registers)) if registers else []
        )
    except (CsvError, RuleSetError) as exc:
        _fail(str(exc))
    if not interval_reads:
        _fail(f"{intervals}: no interval rows after the header")
    contexts = {}
    if meter_class is not None:
        if meter_class not in rule_set.overrides.get("meter_classes", {}):
            _fail(f"--meter-class {meter_class!r} is not defined in the rules")
        contexts = {r.meter_id: MeterContext(meter_class=meter_class) for r in interval_reads}
    result = run_vee(
        interval_reads, register_reads, now=_now(now), rules=rule_set, contexts=contexts
    )
    if as_json:
        json_stdout().writelines(json_chunks(result))
    else:
        typer.echo(_summary(result))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(vee_app, name="vee")
