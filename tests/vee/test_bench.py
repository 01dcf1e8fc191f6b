"""The benchmark runs, and the vectorised kernel agrees with running it meter by meter."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from headend.vee.kernel import run_block
from headend.vee.ruleset import default_rules

BENCH = Path(__file__).parents[2] / "bench" / "vee.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vee_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    assert bench.main(["--meters", "3000", "--chunk", "1000", "--sample", "40"]) == 0
    out = capsys.readouterr().out
    for label in ("wall time", "intervals/s", "peak memory", "per-meter loop", "speed-up"):
        assert label in out


def test_running_many_meters_at_once_gives_what_each_meter_gives_alone() -> None:
    bench = load_bench()
    rs = default_rules()
    block = bench.make_block(np.random.default_rng(3), 600, 9, rs)
    now_s = block.start_s + 11 * 86400
    together = run_block(block, rs, now_s)
    assert (together.method > 0).sum() > 0
    for r in range(block.rows):
        alone = run_block(bench._one_meter(block, r), rs, now_s)
        np.testing.assert_array_equal(alone.quality[0], together.quality[r])
        np.testing.assert_array_equal(alone.rules[0], together.rules[r])
        np.testing.assert_allclose(alone.value[0], together.value[r], equal_nan=True)
