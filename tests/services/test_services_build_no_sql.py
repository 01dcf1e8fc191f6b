"""Services compose repositories and queries and own the transaction; every SQL statement is
built in ``headend.store``. A service module that imports a statement construct is refused."""

from __future__ import annotations

import ast
from pathlib import Path

import headend.services

SERVICES = Path(headend.services.__file__).parent

# what builds or shapes a statement; Session, sessionmaker, Engine and the exceptions are fine
STATEMENT_NAMES = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "and_",
        "or_",
        "not_",
        "case",
        "literal",
        "literal_column",
        "bindparam",
        "tuple_",
        "exists",
        "union",
        "union_all",
        "column",
        "table",
        "cast",
        "type_coerce",
        "null",
        "true",
        "false",
        "distinct",
        "any_",
        "Select",
        "Insert",
        "Update",
        "Delete",
        "Executable",
    }
)
STORE_HELPERS = frozenset({"table_of", "one_of"})
ALLOWED_SQLALCHEMY_MODULES = ("sqlalchemy.orm", "sqlalchemy.exc", "sqlalchemy.engine")


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith(
                    ("sqlalchemy.dialects", "sqlalchemy.sql")
                ):
                    found.append(f"{path.name}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module
            names = {alias.name for alias in node.names}
            if module.startswith("sqlalchemy.dialects") or module.startswith("sqlalchemy.sql"):
                found.append(f"{path.name}:{node.lineno} from {module} import ...")
            elif module == "sqlalchemy" or (
                module.startswith("sqlalchemy.")
                and not module.startswith(ALLOWED_SQLALCHEMY_MODULES)
            ):
                for name in sorted(names & STATEMENT_NAMES):
                    found.append(f"{path.name}:{node.lineno} {name} from {module}")
            elif module == "headend.store.base":
                for name in sorted(names & STORE_HELPERS):
                    found.append(f"{path.name}:{node.lineno} {name} from {module}")
    return found


def test_no_service_module_imports_what_builds_a_sql_statement() -> None:
    modules = sorted(SERVICES.rglob("*.py"))
    assert modules, f"no service module under {SERVICES}"
    offences = [o for path in modules for o in _offences(path)]
    assert offences == []


def test_the_check_notices_a_statement_construct(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text(
        "from sqlalchemy import select, Integer\n"
        "from sqlalchemy.dialects import postgresql\n"
        "from sqlalchemy.orm import Session\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from headend.store.base import table_of\n",
        encoding="utf-8",
    )
    assert _offences(module) == [
        "example.py:1 select from sqlalchemy",
        "example.py:2 from sqlalchemy.dialects import ...",
        "example.py:5 table_of from headend.store.base",
    ]
