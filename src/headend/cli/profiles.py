"""``headend profiles``: the device profiles headend knows (list) and checking profile files
offline (check)."""

from __future__ import annotations

from pathlib import Path

import typer

from headend.cli.output import emit_json, fail
from headend.cli.state import get_settings
from headend.profiles import ProfileError, load_profile, profiles_dir
from headend.profiles.checks import check_file
from headend.profiles.loader import PROFILES_DIR_VARIABLE

profiles_app = typer.Typer(
    help="Device profiles: list the ones found, check profile files.", no_args_is_help=True
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
) -> None:
    """Check profile files offline: the schema and consistency. One line per problem
    (file: key: problem); exit 1 if any file has an error, warnings alone exit 0."""
    results = []
    bad = False
    for path in files:
        findings = check_file(path)
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


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
