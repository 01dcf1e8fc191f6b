"""Operator edits (E10) are new versions with who, when and why, and can be reverted."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from headend.vee.edits import Edit, EditError, apply_edit, revert
from headend.vee.pipeline import run_vee

from .helpers import ICT, LATER, MIDNIGHT, series

EDITED_AT = datetime(2027, 6, 2, 9, 0, tzinfo=ICT)


def _edit(value: str = "0.500", reason: str = "FIELD_READ") -> Edit:
    return Edit(
        "M1",
        "1.0.1.29.0.255",
        MIDNIGHT + timedelta(minutes=15),
        MIDNIGHT + timedelta(minutes=45),
        Decimal(value),
        reason,
        "lan.nguyen",
        EDITED_AT,
    )


def test_an_edit_makes_new_versions_with_who_when_and_why() -> None:
    result = run_vee(series(["0.100", None, "0.300", "0.400"]), now=LATER)
    edited = apply_edit(result.versions, _edit())
    assert [v.interval_end for v in edited] == [MIDNIGHT + timedelta(minutes=m) for m in (30, 45)]
    for version, before in zip(edited, result.versions[1:3], strict=True):
        assert version.quality.value == "EDITED" and version.method == "E10"
        assert version.value == Decimal("0.500")
        assert (version.created_by, version.created_at, version.reason) == (
            "lan.nguyen",
            EDITED_AT,
            "FIELD_READ",
        )
        assert version.supersedes == before.created_at
    assert result.versions[1].value == Decimal("0.200")  # the estimate itself is unchanged


def test_vee_keeps_an_edit_when_it_runs_again() -> None:
    reads = series(["0.100", None, "0.300", "0.400"])
    result = run_vee(reads, now=LATER)
    edited = apply_edit(result.versions, _edit())
    current = [*result.versions[:1], *edited, *result.versions[3:]]
    again = run_vee(reads, now=LATER, previous=current)
    assert again.new_versions == ()
    assert [v.quality.value for v in again.versions][1:3] == ["EDITED", "EDITED"]


def test_reverting_an_edit_restores_the_version_it_replaced() -> None:
    result = run_vee(series(["0.100", None, "0.300"]), now=LATER)
    before = result.versions[1]
    edited = apply_edit(result.versions, _edit())[0]
    restored = revert([before, edited], "lan.nguyen", EDITED_AT + timedelta(hours=1), "MISTAKE")
    assert restored.same_content(before)
    assert restored.supersedes == edited.created_at
    assert restored.reason == "MISTAKE"


def test_an_edit_without_a_reason_is_refused() -> None:
    result = run_vee(series(["0.100", "0.200"]), now=LATER)
    with pytest.raises(EditError, match="reason"):
        apply_edit(result.versions, _edit(reason=" "))


def test_reverting_something_that_is_not_an_edit_is_refused() -> None:
    result = run_vee(series(["0.100", "0.200"]), now=LATER)
    with pytest.raises(EditError, match="not an edit"):
        revert(result.versions[:1], "lan.nguyen", EDITED_AT, "MISTAKE")
