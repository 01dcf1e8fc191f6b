"""``headend plans``: set, list and deactivate a read plan; each change is audited as ``cli``."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from headend.store.models import AuditEvent
from tests.cli.conftest import Headend


def test_plans_set_list_and_deactivate_print_the_plan_and_audit_each_change_as_cli(
    store: sessionmaker[Session], cli_env: dict[str, str], headend: Headend
) -> None:
    made = headend(
        "plans", "set", "nightly", "--cron", "5 0 * * *", "--read", "registers",
        "--read", "load_profile", "--meters", "tag=tou", "--window-minutes", "120",
    )  # fmt: skip
    assert made.code == 0, made.stderr
    assert made.stdout == "read plan nightly: registers, load_profile at '5 0 * * *'\n"
    listed = headend("plans", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {
            "name": "nightly",
            "cron": "5 0 * * *",
            "read": ["registers", "load_profile"],
            "meters": {"tag": "tou"},
            "window_minutes": 120,
            "active": True,
            "last_fired_at": None,
        }
    ]
    gone = headend("plans", "deactivate", "nightly")
    assert (gone.code, gone.stdout) == (0, "read plan nightly deactivated\n")
    assert json.loads(headend("plans", "list", "--json").stdout)[0]["active"] is False
    with store() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [(e.actor, e.role, e.action, e.target) for e in events] == [
            ("cli", None, "plan.put", "plan:nightly"),
            ("cli", None, "plan.deactivate", "plan:nightly"),
        ]
