"""Operators see what collection learned of each meter model, per device profile and firmware."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from headend.domain.enums import ReadKind, Role
from headend.domain.readings import MeterRead
from headend.protocol.session import ENTRY_ACCESS_REFUSED, LIST_UNRELIABLE, RANGE_ACCESS_REFUSED
from headend.services.collection.landing import land
from headend.store.models import Meter
from tests.api.pages.conftest import log_in
from tests.served import Served


def test_learned_quirks_are_listed_per_profile_with_the_meter_they_were_first_found_on(
    served: Served,
) -> None:
    with served.store() as session:
        meters = dict(session.execute(select(Meter.meter_id, Meter.id)).all())
        profiles = dict(session.execute(select(Meter.meter_id, Meter.device_profile)).all())
    healthy = sorted(served.healthy())
    first = healthy[0]
    second = next(m for m in healthy[1:] if profiles[m] == profiles[first])  # the same model
    now = served.fleet.clock.now
    learned = (LIST_UNRELIABLE, RANGE_ACCESS_REFUSED)
    with served.store() as session, session.begin():
        land(
            session, meters[first], ReadKind.REGISTERS, MeterRead(first, learned=learned), now, None
        )
    later = now + timedelta(minutes=15)
    with served.store() as session, session.begin():
        read = MeterRead(second, learned=(ENTRY_ACCESS_REFUSED, RANGE_ACCESS_REFUSED))
        land(session, meters[second], ReadKind.REGISTERS, read, later, None)
    with served.client(Role.OPERATOR) as client:
        everything = client.get("/api/v1/learned-quirks")
        one_profile = client.get(
            "/api/v1/learned-quirks", params={"device_profile": profiles[first]}
        )
        none = client.get("/api/v1/learned-quirks", params={"device_profile": "no_such_model"})
    assert everything.status_code == 200, everything.text
    rows = {(r["device_profile"], r["quirk"]): r for r in everything.json()}
    assert rows[(profiles[first], LIST_UNRELIABLE)]["first_meter"] == first
    # kept under the firmware the meter's last read reported (the served fleet was collected)
    assert rows[(profiles[first], LIST_UNRELIABLE)]["firmware"] == "1.0.0"
    assert rows[(profiles[second], ENTRY_ACCESS_REFUSED)]["first_meter"] == second
    range_refused = rows[(profiles[first], RANGE_ACCESS_REFUSED)]  # found twice on the model
    assert (range_refused["first_meter"], range_refused["sessions"]) == (first, 2)
    assert range_refused["first_seen_at"] == now.isoformat()
    assert range_refused["last_seen_at"] == later.isoformat()
    assert {r["device_profile"] for r in one_profile.json()} == {profiles[first]}
    assert none.status_code == 200 and none.json() == []


def test_the_overview_shows_operators_the_quirks_learned_and_hides_them_from_billing(
    served: Served,
) -> None:
    meter_id = sorted(served.healthy())[0]
    with served.store() as session:
        pk = session.scalars(select(Meter.id).where(Meter.meter_id == meter_id)).one()
    with served.store() as session, session.begin():
        read = MeterRead(meter_id, firmware="3.2-upgraded", learned=(LIST_UNRELIABLE,))
        land(session, pk, ReadKind.REGISTERS, read, served.fleet.clock.now, None)
    pages = {}
    for role in (Role.OPERATOR, Role.BILLING):
        with served.client() as client:
            assert log_in(client, served.keys[role]).status_code == 303
            pages[role] = client.get("/").text
    section = pages[Role.OPERATOR].split("Quirks learned of meter models", 1)[1]
    assert LIST_UNRELIABLE in section and f">{meter_id}</a>" in section
    assert "<td>3.2-upgraded</td>" in section  # the firmware the read reported
    assert "Quirks learned of meter models" not in pages[Role.BILLING]
