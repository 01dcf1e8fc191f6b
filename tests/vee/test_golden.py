"""Golden cases: each folder of fixtures/vee runs through `headend vee run --json`.

``expected.json`` was written by hand. It lists every finding (without its parameters, which
come from the rule set) and the intervals that are not plainly valid; every other interval
must come out VALID with its value exactly as read and no rule against it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from headend.cli.vee import register

CASES = Path(__file__).parents[2] / "fixtures" / "vee"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "expected.json").exists())


def run_case(case: Path, now: str) -> dict[str, Any]:
    app = typer.Typer()
    register(app)
    args = ["vee", "run", "--intervals", str(case / "intervals.csv"), "--now", now, "--json"]
    for option, name in (("--registers", "registers.csv"), ("--rules", "rules.yaml")):
        if (case / name).exists():
            args += [option, str(case / name)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_there_is_a_golden_case_for_every_rule_and_method() -> None:
    prefixes = {name.split("_")[0] for name in CASE_NAMES}
    wanted = {
        "v01",
        "v02",
        "v03",
        "v04",
        "v05",
        "v06",
        "v07",
        "v08",
        "v09",
        "v10",
        "v11",
        "v12",
        "v14",
        "e0",
        "e2",
        "e3",
        "e4",
        "e5",
        "e9",
    }
    assert wanted <= prefixes


@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_case_matches_its_hand_written_expectation(name: str) -> None:
    case = CASES / name
    expected = json.loads((case / "expected.json").read_text())
    output = run_case(case, expected["now"])
    findings = [{k: v for k, v in f.items() if k != "params"} for f in output["findings"]]
    assert findings == expected["findings"]
    intervals = output["intervals"]
    assert len(intervals) == expected["interval_count"]
    listed = {i["interval_end"]: i for i in expected["listed_intervals"]}
    with (case / "intervals.csv").open() as fh:
        read = {row["interval_end"]: row["value"] for row in csv.DictReader(fh)}
    for interval in intervals:
        want = listed.pop(interval["interval_end"], None)
        if want is not None:
            assert interval == want
        else:
            plain: dict[str, Any] = {"quality": "VALID", "method": None, "rules": []}
            assert {k: interval[k] for k in plain} == plain, interval
            assert interval["value"] == read[interval["interval_end"]]
    assert not listed, f"expected intervals missing from the output: {sorted(listed)}"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_finding_records_the_parameters_it_ran_with(name: str) -> None:
    case = CASES / name
    output = run_case(case, json.loads((case / "expected.json").read_text())["now"])
    for finding in output["findings"]:
        assert isinstance(finding["params"], dict)
