"""The import graph of src/headend (scripts/check_imports.py): no cycles, and every layer
imports only what the layer table of DESIGN.md allows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / "scripts" / "check_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_imports", module)
    spec.loader.exec_module(module)
    return module


check = _checker()


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_no_import_cycle_runs_through_the_package() -> None:
    assert check.cycles(check.graph()) == []


def test_every_layer_imports_only_what_the_design_allows() -> None:
    leaks = [
        f"{e.source} -> {e.target} (line {e.line})" for e in check.layer_violations(check.graph())
    ]
    assert leaks == []


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        {
            "headend/__init__.py": "",
            "headend/domain/__init__.py": "",
            "headend/domain/ids.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from headend.store import models\n"
                "def late():\n"
                "    from headend.api import app\n"
            ),
            "headend/store/__init__.py": "",
            "headend/store/models.py": "",
            "headend/api/__init__.py": "",
            "headend/api/app.py": "",
        },
    )
    targets = {e.target for e in check.graph(src) if e.source == "headend.domain.ids"}
    assert "headend.api.app" in targets
    assert "headend.store.models" not in targets


def test_a_cycle_and_a_layer_leak_are_both_reported(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        {
            "headend/__init__.py": "",
            "headend/store/__init__.py": "",
            "headend/store/a.py": "from headend.store import b\nimport headend.config\n",
            "headend/store/b.py": "from . import a\n",
            "headend/config.py": "",
            "headend/api/__init__.py": "",
            "headend/api/routes.py": "from sqlalchemy import text\n",
        },
    )
    problems = check.report(src)
    assert "import cycle: headend.store.a <-> headend.store.b" in problems
    assert any("store may not import headend.config" in p for p in problems)
    assert any("api may not import sqlalchemy" in p for p in problems)
