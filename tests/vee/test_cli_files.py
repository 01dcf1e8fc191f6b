"""`headend vee run` on files: malformed input is reported by line and column, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from headend.cli.vee import register
from headend.vee.csvfiles import CsvError, parse_intervals, parse_registers

HEADER = "meter_id,channel,interval_end,value,status\n"
GOOD = "M1,1.0.1.29.0.255,2026-11-19T00:15:00+07:00,0.100,0\n"


def invoke(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["vee", "run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_bad_value_is_reported_by_line_and_column_and_nothing_is_printed(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + GOOD + "M1,1.0.1.29.0.255,2026-11-19T00:30:00+07:00,abc,0\n")
    code, out, err = invoke("--intervals", str(path), "--json")
    assert code == 2
    assert out == ""
    assert "line 3, column value: 'abc' is not a decimal number" in err


@pytest.mark.parametrize(
    ("row", "column", "hint"),
    [
        ("M1,1.0.1.29.0.255,2026-11-19T00:30:00,0.1,0", "interval_end", "no UTC offset"),
        ("M1,1.0.1.29.0.255,yesterday,0.1,0", "interval_end", "not an ISO 8601 timestamp"),
        ("M1,1.0.1.29.0.255,2026-11-19T00:30:00+07:00,0.1,300", "status", "0 to 255"),
        (",1.0.1.29.0.255,2026-11-19T00:30:00+07:00,0.1,0", "meter_id", "is empty"),
        ("M1,1.0.1.29.0.255,2026-11-19T00:30:00+07:00,0.1234567,0", "value", "decimal places"),
    ],
)
def test_each_kind_of_malformed_cell_names_its_column(row: str, column: str, hint: str) -> None:
    with pytest.raises(CsvError) as caught:
        parse_intervals([HEADER, GOOD, row + "\n"], "in.csv")
    assert f"line 3, column {column}" in str(caught.value)
    assert hint in str(caught.value)


def test_a_row_with_the_wrong_number_of_fields_is_reported() -> None:
    with pytest.raises(CsvError, match="line 2: 3 fields, expected 5"):
        parse_intervals([HEADER, "M1,x,y\n"], "in.csv")


def test_a_wrong_header_is_reported_with_the_columns_expected() -> None:
    with pytest.raises(CsvError, match="expected the columns meter_id,channel"):
        parse_intervals(["meter,channel,time,value,status\n", GOOD], "in.csv")


def test_a_bad_obis_code_in_the_register_file_is_reported() -> None:
    lines = ["meter_id,obis,read_at,value\n", "M1,1.8.x,2026-11-19T00:00:00+07:00,1.0\n"]
    with pytest.raises(CsvError, match="line 2, column obis"):
        parse_registers(lines, "reg.csv")


def test_a_rules_file_with_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    data, rules = tmp_path / "in.csv", tmp_path / "rules.yaml"
    data.write_text(HEADER + GOOD)
    rules.write_text("rules:\n  V10: {factr: 3}\n")
    code, out, err = invoke("--intervals", str(data), "--rules", str(rules), "--json")
    assert code == 2 and out == ""
    assert "rules.V10.factr: unknown parameter" in err


def test_a_missing_file_is_reported_without_a_traceback(tmp_path: Path) -> None:
    code, _, err = invoke("--intervals", str(tmp_path / "nope.csv"))
    assert code == 2
    assert "cannot read the intervals file" in err


def test_values_come_out_as_exact_decimal_strings(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + GOOD.replace("0.100", "0.1234"))
    code, out, _ = invoke("--intervals", str(path), "--json", "--now", "2027-01-01T00:00:00Z")
    assert code == 0
    assert json.loads(out)["intervals"][0]["value"] == "0.1234"


def test_without_json_a_summary_is_printed(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + GOOD)
    code, out, _ = invoke("--intervals", str(path))
    assert code == 0
    assert "1 intervals" in out and "VALID" in out
