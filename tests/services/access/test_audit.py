"""A change and its audit record are stored in one transaction: both or neither."""

from __future__ import annotations

import csv
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import ReadKind, Role
from headend.services.access.audit import Actor
from headend.services.access.keys import KeyService
from headend.services.collection.jobs import JobService
from headend.services.collection.plans import PlanError, PlanService, PlanSpec
from headend.services.errors import Conflict, NotFound
from headend.services.registry.imports import RegistryImportError
from headend.services.registry.service import RegistryService
from headend.services.validation.edits import EditService
from headend.store.models import AuditEvent, Meter, ReadPlan
from headend.store.secrets import SecretBox
from tests.conftest import REPO, TEST_SECRET_KEY

ADMIN = Actor("ana.admin", Role.ADMIN)
OPERATOR = Actor("minh.operator", Role.OPERATOR)
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PROFILES = frozenset({"single_phase_residential", "three_phase_tou"})


def _audit(store: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with store() as session:
        return [
            (e.actor, e.role, e.action, e.target, e.detail)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def _plan(name: str, cron: str = "5 0 * * *") -> PlanSpec:
    return PlanSpec(name, cron, (ReadKind.REGISTERS,), {"all": True})


def test_a_created_key_has_one_audit_record_and_a_refused_one_none(
    store: sessionmaker[Session],
) -> None:
    keys = KeyService(store)
    keys.create("cmis-billing", Role.BILLING, actor=ADMIN)
    with pytest.raises(Conflict, match="exists already"):
        keys.create("cmis-billing", Role.BILLING, actor=ADMIN)
    with pytest.raises(NotFound, match="no key named 'nobody'"):
        keys.revoke("nobody", actor=ADMIN)
    assert _audit(store) == [
        ("ana.admin", "admin", "key.create", "key:cmis-billing", {"role": "billing"})
    ]


@pytest.mark.parametrize(
    "use_case",
    [
        JobService.request_read,
        PlanService.save,
        PlanService.deactivate,
        KeyService.create,
        KeyService.revoke,
        EditService.edit_intervals,
        EditService.revert_edit,
        EditService.resolve_finding,
        RegistryService.put,
        RegistryService.set_status,
    ],
    ids=lambda use_case: use_case.__qualname__,
)
def test_every_use_case_that_changes_data_is_told_who_asks(use_case: Callable[..., Any]) -> None:
    actor = inspect.signature(use_case).parameters["actor"]
    assert actor.kind is inspect.Parameter.KEYWORD_ONLY
    assert actor.default is inspect.Parameter.empty


def test_a_change_by_a_named_actor_is_audited_under_its_name(
    store: sessionmaker[Session],
) -> None:
    KeyService(store).create("made-by-the-cli", Role.OPERATOR, actor=Actor("cli"))
    assert _audit(store) == [
        ("cli", None, "key.create", "key:made-by-the-cli", {"role": "operator"})
    ]


def test_a_refused_plan_leaves_no_audit_record_and_a_saved_one_exactly_one(
    store: sessionmaker[Session],
) -> None:
    plans = PlanService(store, JobService(store), HANOI)
    with pytest.raises(PlanError, match="cron"):
        plans.save(_plan("nightly", "every day"), actor=OPERATOR)
    with pytest.raises(NotFound, match="no read plan named 'nightly'"):
        plans.deactivate("nightly", actor=OPERATOR)
    assert _audit(store) == []
    plans.save(_plan("nightly"), actor=OPERATOR)
    plans.deactivate("nightly", actor=OPERATOR)
    detail = {"cron": "5 0 * * *", "kinds": ["registers"], "selector": {"all": True}}
    assert _audit(store) == [
        (
            "minh.operator",
            "operator",
            "plan.put",
            "plan:nightly",
            {**detail, "window_minutes": 240},
        ),
        ("minh.operator", "operator", "plan.deactivate", "plan:nightly", {}),
    ]


def test_an_audit_record_that_cannot_be_stored_takes_its_change_with_it(
    store: sessionmaker[Session],
) -> None:
    def naive_clock() -> datetime:  # the store refuses a time without an offset
        return datetime(2026, 11, 1, 0, 0)

    plans = PlanService(store, JobService(store, clock=naive_clock), HANOI)
    with pytest.raises(Exception, match="naive datetime"):
        plans.save(_plan("nightly"), actor=OPERATOR)
    with store() as session:
        assert session.scalars(select(ReadPlan)).all() == []
    assert _audit(store) == []


def test_a_meter_put_is_audited_with_its_secrets_hidden_and_a_refused_one_not(
    store: sessionmaker[Session],
) -> None:
    with (REPO / "fixtures" / "sample_fleet.csv").open(newline="") as handle:
        row = next(csv.DictReader(handle))
    meter_id = row.pop("meter_id")
    fields: dict[str, str | None] = {**row, "lls_password": "s3cret-pw"}
    registry = RegistryService(store, SecretBox(TEST_SECRET_KEY), PROFILES)
    with pytest.raises(RegistryImportError):
        registry.put(meter_id, {**fields, "transport": "carrier-pigeon"}, actor=OPERATOR)
    assert _audit(store) == []
    registry.put(meter_id, fields, actor=OPERATOR)
    ((actor, role, action, target, detail),) = _audit(store)
    assert (actor, role, action, target) == (
        "minh.operator",
        "operator",
        "meter.put",
        f"meter:{meter_id}",
    )
    assert detail["fields"]["lls_password"] == "***" and detail["meters_added"] == 1
    with store() as session:
        assert session.scalar(select(Meter.meter_id)) == meter_id
