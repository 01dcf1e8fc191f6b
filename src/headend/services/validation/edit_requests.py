"""What an edit, a revert or a resolution must say before it may touch the store.

The checks are pure and run before any transaction opens; each refusal is an ``EditError``
whose message a person can act on and whose ``field`` names the request field at fault.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from headend.services.errors import Conflict, Invalid, NotFound

REASON_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,16}")
MAX_USER = 64
MAX_COMMENT = 2000
MAX_VALUE = Decimal(10) ** 9  # kWh in one interval; far above any meter, inside the column


class EditError(Invalid):
    """An edit, revert or resolution that cannot be made as asked, in words a person can act
    on; ``field`` names the request field at fault, if one is."""


class EditConflict(EditError, Conflict):
    """The stored data does not allow the change: it changed while the change was being
    made, or what the change is about was resolved, reverted or changed already. Nothing
    was stored."""


class UnknownEdit(NotFound):
    def __init__(self, edit_id: int) -> None:
        super().__init__(f"there is no edit {edit_id}")
        self.edit_id = edit_id


class UnknownFinding(NotFound):
    def __init__(self, finding_id: int) -> None:
        super().__init__(f"there is no VEE finding {finding_id}")
        self.finding_id = finding_id


def check_user(user: str) -> str:
    who = user.strip()
    if not who:
        raise EditError("say who makes the change (a user name)", "user")
    if len(who) > MAX_USER:
        raise EditError(f"a user name has at most {MAX_USER} characters", "user")
    return who


def check_note(text: str | None, field: str) -> str | None:
    if text is None or not text.strip():
        return None
    if len(text) > MAX_COMMENT:
        raise EditError(f"the {field} has at most {MAX_COMMENT} characters", field)
    return text.strip()


def check_reason(reason_code: str) -> str:
    reason = reason_code.strip()
    if not reason:
        raise EditError("an edit needs a reason code, such as FIELD_READ", "reason_code")
    if not REASON_CODE.fullmatch(reason):
        raise EditError(
            f"reason code {reason!r} must be 1 to 16 letters, digits, '_', '.' or '-'",
            "reason_code",
        )
    return reason


def check_range(start: datetime, end: datetime) -> None:
    for name, at in (("start", start), ("end", end)):
        if at.tzinfo is None or at.utcoffset() is None:
            raise EditError(
                f"{name} {at.isoformat()} has no UTC offset; give it as e.g. "
                f"{at.isoformat()}+07:00",
                name,
            )
    if end <= start:
        raise EditError(f"end {end.isoformat()} must be after start {start.isoformat()}", "end")


def check_value(value: Decimal | None) -> None:
    if value is None:
        return
    if not value.is_finite():
        raise EditError(f"{value} is not a quantity of energy", "value")
    if value < 0:
        raise EditError(f"an interval cannot hold negative energy ({value} kWh)", "value")
    if value >= MAX_VALUE:
        raise EditError(f"{value} kWh in one interval is not plausible", "value")
    if value.scaleb(6) != value.scaleb(6).to_integral_value():
        raise EditError(f"{value} kWh has more than 6 decimal places", "value")
