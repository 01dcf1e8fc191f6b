"""``headend db upkeep`` runs the store's upkeep and says what it did."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Headend


@pytest.mark.db
def test_db_upkeep_reports_what_it_did(headend: Headend, cli_env: dict[str, str]) -> None:
    ran = headend("db", "upkeep", "--json")
    assert ran.code == 0, ran.stderr
    done = json.loads(ran.stdout)
    assert set(done) == {
        "partitions_created",
        "partitions_dropped",
        "blocks_deleted",
        "first_day_kept",
    }
    assert done["blocks_deleted"] == 0 and done["first_day_kept"] is None
