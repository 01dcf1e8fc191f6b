"""``headend profiles check`` and ``headend profiles list``: offline checks of profile files, one
line per problem, and the profiles found in the configured folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from headend.cli import profiles
from headend.cli.main import State
from headend.cli.output import Commands
from headend.profiles.loader import profiles_dir

pytestmark = pytest.mark.timeout(60)

SHIPPED = profiles_dir()
RESIDENTIAL = SHIPPED / "single_phase_residential.yaml"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("HEADEND_"):
            monkeypatch.delenv(key)
    yield


def run(*args: str) -> tuple[int, str]:
    code, out, _ = run_with_stderr(*args)
    return code, out


def run_with_stderr(*args: str) -> tuple[int, str, str]:
    app = typer.Typer(cls=Commands)

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = State()

    profiles.register(app)
    result = CliRunner().invoke(app, ["profiles", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def variant(folder: Path, name: str, edit: dict[str, object]) -> Path:
    """A copy of the residential profile saved as ``<name>.yaml`` with top-level keys edited."""
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = name
    raw.update(edit)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_shipped_profiles_pass_the_check() -> None:
    code, out = run("check", *(str(p) for p in sorted(SHIPPED.glob("*.yaml"))))

    assert code == 0, out
    assert out.splitlines() == [f"{p}: ok" for p in sorted(SHIPPED.glob("*.yaml"))]


def test_a_profile_named_unlike_its_file_fails_the_check_naming_the_key(tmp_path: Path) -> None:
    path = variant(tmp_path, "meter_a", {})
    path = path.rename(tmp_path / "meter_b.yaml")

    code, out = run("check", str(path))

    assert code == 1
    assert out.splitlines() == [f"{path}: name: must be 'meter_b', the file's name"]


def test_an_unknown_key_and_a_bad_quantity_each_get_their_line(tmp_path: Path) -> None:
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = "broken"
    raw["colour"] = "blue"
    raw["objects"][3]["quantity"] = "kWh"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))

    code, out = run("check", str(path))

    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert f"{path}: colour: Extra inputs are not permitted" in lines
    assert any(line.startswith(f"{path}: objects.3.quantity: Input should be") for line in lines)


def test_a_billed_register_captured_by_nothing_and_never_read_fails_the_check(
    tmp_path: Path,
) -> None:
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = "no_export_capture"
    raw["load_profile"]["capture_objects"] = [
        c for c in raw["load_profile"]["capture_objects"] if c["obis"] != "1.0.2.8.0.255"
    ]
    raw["reads"]["registers"] = [r for r in raw["reads"]["registers"] if r != "1.0.2.8.0.255"]
    path = tmp_path / "no_export_capture.yaml"
    path.write_text(yaml.safe_dump(raw))

    code, out = run("check", str(path))

    assert code == 1
    assert out.splitlines() == [
        f"{path}: objects.7: 1.0.2.8.0.255 (A-) is billed at period boundaries but neither "
        "captured by the load profile nor listed in reads.registers: it is never read at a "
        "boundary"
    ]


def test_a_register_not_billed_may_be_captured_by_nothing(tmp_path: Path) -> None:
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = "household"
    for section in ("load_profile", "billing_profile"):
        raw[section]["capture_objects"] = [
            c for c in raw[section]["capture_objects"] if c["obis"] != "1.0.2.8.0.255"
        ]
    raw["reads"]["registers"] = [r for r in raw["reads"]["registers"] if r != "1.0.2.8.0.255"]
    del raw["billing"]  # import alone is billed
    path = tmp_path / "household.yaml"
    path.write_text(yaml.safe_dump(raw))

    code, out = run("check", str(path))

    assert (code, out.splitlines()) == (0, [f"{path}: ok"])


def test_a_billed_register_read_on_schedule_only_is_a_warning(tmp_path: Path) -> None:
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = "scheduled_export"
    raw["load_profile"]["capture_objects"] = [
        c for c in raw["load_profile"]["capture_objects"] if c["obis"] != "1.0.2.8.0.255"
    ]
    path = tmp_path / "scheduled_export.yaml"
    path.write_text(yaml.safe_dump(raw))

    code, out = run("check", str(path))

    assert code == 0, out
    warning, ok = out.splitlines()
    assert warning.startswith(f"{path}: objects.7: warning: 1.0.2.8.0.255 (A-) is billed")
    assert "boundary reads will come from scheduled register reads" in warning
    assert ok == f"{path}: ok"


def test_tariff_registers_must_match_the_time_of_use_periods(tmp_path: Path) -> None:
    raw = yaml.safe_load(RESIDENTIAL.read_text())
    raw["name"] = "tariffs_off"
    raw["tariffs"]["registers"] = {"T1": "normal", "T2": "peak"}
    path = tmp_path / "tariffs_off.yaml"
    path.write_text(yaml.safe_dump(raw))

    code, out = run("check", str(path))

    assert code == 1
    assert (
        f"{path}: objects.6.tariff: tariff T3 has no time-of-use period in tariffs.registers"
        in (out.splitlines())
    )


def test_check_prints_json_with_every_finding(tmp_path: Path) -> None:
    path = variant(tmp_path, "meter_a", {})
    path = path.rename(tmp_path / "meter_b.yaml")

    code, out = run("check", "--json", str(RESIDENTIAL), str(path))

    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert [f["ok"] for f in doc["files"]] == [True, False]
    assert doc["files"][1]["findings"] == [
        {"file": str(path), "key": "name", "problem": "must be 'meter_b', the file's name",
         "severity": "error"}
    ]  # fmt: skip


def test_list_shows_the_profiles_of_the_configured_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant(tmp_path, "acme_one", {"manufacturer": "Acme"})
    variant(tmp_path, "plain", {})
    monkeypatch.setenv("HEADEND_PROFILES_DIR", str(tmp_path))

    code, out = run("list")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"profiles in {tmp_path.resolve()} (HEADEND_PROFILES_DIR)"
    assert lines[1].split() == ["acme_one", "Acme", str(tmp_path.resolve() / "acme_one.yaml")]
    assert lines[2].split() == ["plain", "-", str(tmp_path.resolve() / "plain.yaml")]

    code, out = run("list", "--json")
    doc = json.loads(out)
    assert doc["folder"] == str(tmp_path.resolve())
    assert [(p["name"], p["manufacturer"]) for p in doc["profiles"]] == [
        ("acme_one", "Acme"),
        ("plain", None),
    ]


def test_list_without_a_setting_shows_the_shipped_folder() -> None:
    code, out = run("list")

    assert code == 0
    assert out.splitlines()[0] == f"profiles in {SHIPPED.resolve()} (HEADEND_PROFILES_DIR)"
    assert "single_phase_residential" in out


def test_list_names_a_missing_folder_and_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADEND_PROFILES_DIR", str(tmp_path / "absent"))

    code, _, err = run_with_stderr("list")

    assert code == 2
    assert err.strip() == (
        f"headend profiles list: no folder {(tmp_path / 'absent').resolve()} (HEADEND_PROFILES_DIR)"
    )
