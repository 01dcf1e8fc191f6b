"""Operator edits of interval data (method E10), their reverts, and resolving VEE findings.

Rules of an edit (``EditService.edit_intervals``):

* It covers the *stored* intervals of one meter channel that end in ``(start, end]``. After a
  VEE pass every expected interval is stored (a gap as MISSING or an estimate), so a
  validated range is complete; intervals never stored are not created.
* ``value`` is kWh **per interval**: every interval in the range is set to it (an operator
  who has a total for a range divides it). ``None`` keeps each interval's current value, an
  operator accepting the estimates as they are; an interval with no value refuses that.
* Each interval gets a new version (current + 1), never an overwrite: quality EDITED, method
  E10, ``created_by`` the user, ``inputs`` ``"edit #<id>: edited from <old> (<quality>)"``,
  the rules and flags of the version it replaces. An ``edits`` row keeps the range, value,
  reason code, comment, who and when. The new version is what changes the meter's billing
  data; ``meters.vee_from`` is left alone, and a later VEE pass keeps an edited version.
* Refused, with nothing written: an unknown meter (``UnknownMeter``), a channel the meter has
  no interval data on, a naive time, ``end <= start``, a range with no stored interval, a
  negative or non-finite value or one with more than 6 decimals, an empty reason code or
  user. ``EditError.field`` names the request field at fault.

A revert (``revert_edit``) adds, for every interval the edit changed, a new version with the
content the edit replaced. It is refused when an interval was changed on top of the edit
(a later edit still in place: revert that one first) or when the edit was reverted already.
Two writers racing for the same version number meet the table's unique key: the second gets
``EditConflict`` and nothing of its change is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.reports import EditRecord, EditResult, Finding, IntervalChange
from headend.services.access import audit
from headend.services.access.audit import Actor
from headend.services.clock import Clock, utcnow
from headend.services.errors import UnknownMeter
from headend.services.reporting.reports import RESOLUTION_NOTE, finding_of
from headend.services.validation.edit_requests import (
    EditConflict,
    EditError,
    UnknownEdit,
    UnknownFinding,
    check_note,
    check_range,
    check_reason,
    check_user,
    check_value,
)
from headend.services.validation.versions import as_version
from headend.store.blocks import StoredInterval
from headend.store.models import Edit, VeeFinding
from headend.store.repositories.edits import EditRepository
from headend.store.repositories.intervals import VersionTaken
from headend.store.repositories.rollups import RollupRepository
from headend.vee import edits as vee_edits
from headend.vee.codes import EDIT_METHOD
from headend.vee.model import IntervalVersion

__all__ = [
    "EditConflict",
    "EditError",
    "EditService",
    "UnknownEdit",
    "UnknownFinding",
    "UnknownMeter",
]

MAX_INPUTS = 255
MAX_PAGE = 1000


def _new_row(
    meter_pk: int, version: IntervalVersion, number: int, status: int | None, inputs: str
) -> dict[str, Any]:
    return {
        "meter_id": meter_pk,
        "channel": version.channel,
        "interval_end": version.interval_end,
        "version": number,
        "value": version.value,
        "cumulative": None,
        "quality": version.quality,
        "flags": int(version.flags),
        "status": status,
        "method": version.method,
        "rules": ",".join(version.rules) or None,
        "inputs": inputs[:MAX_INPUTS] or None,
        "raw_read_id": None,
        "created_by": version.created_by,
        "created_at": version.created_at,
    }


def _change(row: dict[str, Any], before: StoredInterval) -> IntervalChange:
    return IntervalChange(
        interval_end=row["interval_end"],
        version=row["version"],
        value=row["value"],
        quality=row["quality"],
        previous_version=before.version,
        previous_value=before.value,
        previous_quality=before.quality,
    )


def _record(edit: Edit, meter_id: str) -> dict[str, Any]:
    return {
        "id": edit.id,
        "meter_id": meter_id,
        "channel": edit.channel,
        "start": edit.start,
        "end": edit.end,
        "value": edit.value,
        "reason_code": edit.reason_code,
        "comment": edit.comment,
        "edited_by": edit.edited_by,
        "edited_at": edit.edited_at,
        "reverted_by": edit.reverted_by,
        "reverted_at": edit.reverted_at,
    }


def _by_interval(rows: Sequence[StoredInterval]) -> list[list[StoredInterval]]:
    """Versions grouped per interval; ``rows`` are ordered by interval end, then version."""
    return [list(group) for _, group in groupby(rows, key=lambda row: row.interval_end)]


def _edited(
    current: Sequence[StoredInterval],
    meter_pk: int,
    edit: vee_edits.Edit,
    value: Decimal | None,
    edit_id: int,
) -> tuple[list[dict[str, Any]], list[IntervalChange]]:
    """The new, edited version of each interval (``value``, or the one it holds), as rows to
    insert, and the change each makes."""
    rows: list[dict[str, Any]] = []
    changes: list[IntervalChange] = []
    for row in current:
        kept = value if value is not None else row.value
        assert kept is not None
        (new,) = vee_edits.apply_edit([as_version(row, edit.meter_id)], replace(edit, value=kept))
        rows.append(
            _new_row(meter_pk, new, row.version + 1, row.status, f"edit #{edit_id}: {new.inputs}")
        )
        changes.append(_change(rows[-1], row))
    return rows, changes


def _conflict() -> EditConflict:
    return EditConflict(
        "the intervals changed while the change was being made (another edit or a VEE pass); "
        "nothing was stored: look at them again and retry"
    )


class EditService:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock = utcnow) -> None:
        self.session_factory = session_factory
        self.clock = clock

    def edit_intervals(
        self,
        meter_id: str,
        channel: str,
        start: datetime,
        end: datetime,
        value: Decimal | None,
        reason_code: str,
        comment: str | None,
        *,
        actor: Actor,
        resolve_findings: Sequence[int] = (),
    ) -> EditResult:
        """Give every stored interval ending in ``(start, end]`` a new, edited version, made
        by ``actor`` (its name is the edit's ``edited_by``).

        ``resolve_findings`` names open findings of the same meter that the edit settles;
        they are resolved in the same transaction, and so is the ``interval.edit`` audit
        record.
        """
        reason, who = check_reason(reason_code), check_user(actor.name)
        note = check_note(comment, "comment")
        check_range(start, end)
        check_value(value)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        now = self.clock()
        try:
            with self.session_factory() as session, session.begin():
                repo = EditRepository(session)
                meter_pk = self._meter(repo, meter_id)
                current = self._current(repo, meter_pk, meter_id, channel, start, end, value)
                findings = self._open_findings(repo, resolve_findings, meter_id)
                edit_id = repo.add_edit(
                    {
                        "meter_id": meter_pk,
                        "channel": channel,
                        "start": start,
                        "end": end,
                        "value": value,
                        "reason_code": reason,
                        "comment": note,
                        "edited_by": who,
                        "edited_at": now,
                    }
                )
                edit = vee_edits.Edit(meter_id, channel, start, end, Decimal(0), reason, who, now)
                rows, changes = _edited(current, meter_pk, edit, value, edit_id)
                repo.add_versions(rows)
                RollupRepository(session).mark_stale(
                    {meter_pk: min(row["interval_end"] for row in rows)}
                )
                for finding, _ in findings:
                    if not repo.resolve(
                        finding.id,
                        who,
                        now,
                        {**finding.params, RESOLUTION_NOTE: f"edit #{edit_id}"},
                    ):
                        raise EditConflict(f"finding {finding.id} was resolved meanwhile")
                detail: dict[str, Any] = {
                    "edit": edit_id,
                    "channel": channel,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "value_kwh": None if value is None else str(value),
                    "reason_code": reason,
                    "comment": note,
                }
                if resolve_findings:
                    detail["findings"] = list(resolve_findings)
                audit.write(session, now, actor, "interval.edit", f"meter:{meter_id}", detail)
        except (IntegrityError, VersionTaken) as exc:
            raise _conflict() from exc
        except vee_edits.EditError as exc:
            raise EditError(str(exc)) from exc
        return EditResult(
            id=edit_id,
            meter_id=meter_id,
            channel=channel,
            start=start,
            end=end,
            value=value,
            reason_code=reason,
            comment=note,
            edited_by=who,
            edited_at=now,
            changes=tuple(changes),
        )

    def revert_edit(self, edit_id: int, *, actor: Actor) -> EditResult:
        """Restore what an edit replaced, as new versions; the edit is marked reverted by
        ``actor``. Audited as ``interval.revert``."""
        who = check_user(actor.name)
        now = self.clock()
        tag = f"edit #{edit_id}:"
        try:
            with self.session_factory() as session, session.begin():
                repo = EditRepository(session)
                found = repo.edit(edit_id)
                if found is None:
                    raise UnknownEdit(edit_id)
                edit, meter_id = found
                if edit.reverted_at is not None:
                    raise EditConflict(
                        f"edit {edit_id} was reverted already, by {edit.reverted_by} at "
                        f"{edit.reverted_at.isoformat()}"
                    )
                rows: list[dict[str, Any]] = []
                changes: list[IntervalChange] = []
                blocked: list[StoredInterval] = []
                for versions in _by_interval(
                    repo.versions(edit.meter_id, edit.channel, edit.start, edit.end)
                ):
                    ours = [v for v in versions if (v.inputs or "").startswith(tag)]
                    if not ours:
                        continue  # an interval stored after the edit was made
                    latest = versions[-1]
                    if latest.method != EDIT_METHOD or not (latest.inputs or "").startswith(tag):
                        blocked.append(latest)
                        continue
                    earlier = [v for v in versions if v.version < ours[0].version]
                    if not earlier:
                        raise EditError(f"the version edit {edit_id} replaced is not stored")
                    before = as_version(earlier[-1], meter_id)
                    edited = replace(as_version(latest, meter_id), supersedes=before.created_at)
                    restored = vee_edits.revert(
                        [before, edited], who, now, f"revert of edit #{edit_id}"
                    )
                    rows.append(
                        _new_row(
                            edit.meter_id,
                            restored,
                            latest.version + 1,
                            earlier[-1].status,
                            restored.inputs,
                        )
                    )
                    changes.append(_change(rows[-1], latest))
                if blocked:
                    first = blocked[0]
                    raise EditConflict(
                        f"{len(blocked)} interval(s) were changed after edit {edit_id}, the "
                        f"first ending {first.interval_end.isoformat()} (version "
                        f"{first.version}, {first.quality.value} by {first.created_by}); "
                        "revert that change first"
                    )
                if not rows:
                    raise EditError(f"no stored interval holds edit {edit_id}")
                repo.add_versions(rows)
                RollupRepository(session).mark_stale(
                    {edit.meter_id: min(row["interval_end"] for row in rows)}
                )
                if not repo.mark_reverted(edit_id, who, now):
                    raise EditConflict(f"edit {edit_id} was reverted meanwhile")
                audit.write(session, now, actor, "interval.revert", f"edit:{edit_id}")
                record = _record(edit, meter_id) | {"reverted_by": who, "reverted_at": now}
        except (IntegrityError, VersionTaken) as exc:
            raise _conflict() from exc
        except vee_edits.EditError as exc:
            raise EditError(str(exc)) from exc
        return EditResult(**record, changes=tuple(changes))

    def resolve_finding(self, finding_id: int, note: str | None = None, *, actor: Actor) -> Finding:
        """Close an open VEE finding: who (``actor``), when, and an optional note. Audited as
        ``finding.resolve``."""
        who, text = check_user(actor.name), check_note(note, "note")
        now = self.clock()
        with self.session_factory() as session, session.begin():
            repo = EditRepository(session)
            finding, meter_id = self._open_findings(repo, [finding_id], None)[0]
            params = {**finding.params, RESOLUTION_NOTE: text} if text is not None else None
            if not repo.resolve(finding_id, who, now, params):
                raise EditConflict(f"finding {finding_id} was resolved meanwhile")
            target = f"finding:{finding_id}"
            audit.write(session, now, actor, "finding.resolve", target, {"note": note})
            session.refresh(finding)
            return finding_of(finding, meter_id)

    def edits(
        self, meter_id: str | None = None, *, limit: int = 100, after_id: int | None = None
    ) -> list[EditRecord]:
        """Edits, oldest first, paged by id; those of one meter when ``meter_id`` is given."""
        if not 1 <= limit <= MAX_PAGE:
            raise EditError(f"limit must be between 1 and {MAX_PAGE}, not {limit}", "limit")
        with self.session_factory() as session:
            repo = EditRepository(session)
            meter_pk = self._meter(repo, meter_id) if meter_id is not None else None
            return [
                EditRecord(**_record(edit, meter))
                for edit, meter in repo.edits(meter_pk, limit, after_id)
            ]

    @staticmethod
    def _current(
        repo: EditRepository,
        meter_pk: int,
        meter_id: str,
        channel: str,
        start: datetime,
        end: datetime,
        value: Decimal | None,
    ) -> list[StoredInterval]:
        """The current version of every stored interval the edit covers, or a refusal."""
        if not repo.has_channel(meter_pk, channel):
            channels = ", ".join(repo.channels(meter_pk)) or "none"
            raise EditError(
                f"meter {meter_id} has no interval data on channel {channel!r} "
                f"(its channels: {channels})",
                "channel",
            )
        current = [
            versions[-1] for versions in _by_interval(repo.versions(meter_pk, channel, start, end))
        ]
        if not current:
            raise EditError(
                f"no interval of meter {meter_id} {channel} ends in "
                f"({start.isoformat()}, {end.isoformat()}]",
                "start",
            )
        empty = [row.interval_end for row in current if row.value is None]
        if value is None and empty:
            raise EditError(
                f"{len(empty)} interval(s) have no value to keep, the first ending "
                f"{empty[0].isoformat()}; give a value",
                "value",
            )
        return current

    @staticmethod
    def _meter(repo: EditRepository, meter_id: str) -> int:
        meter_pk = repo.meter_pk(meter_id)
        if meter_pk is None:
            raise UnknownMeter([meter_id])
        return meter_pk

    @staticmethod
    def _open_findings(
        repo: EditRepository, finding_ids: Sequence[int], meter_id: str | None
    ) -> list[tuple[VeeFinding, str]]:
        """The findings named, all open (and of ``meter_id`` when given), or a refusal."""
        wanted = list(dict.fromkeys(finding_ids))
        if not wanted:
            return []
        found = repo.findings(wanted)
        missing = sorted(set(wanted) - {finding.id for finding, _ in found})
        if missing:
            if meter_id is None:
                raise UnknownFinding(missing[0])
            raise EditError(
                f"no VEE finding with id {', '.join(map(str, missing))}", "resolve_findings"
            )
        field = "resolve_findings" if meter_id is not None else None
        for finding, owner in found:
            if meter_id is not None and owner != meter_id:
                raise EditError(f"finding {finding.id} is of meter {owner}, not {meter_id}", field)
            if finding.status != "open":
                raise EditConflict(
                    f"finding {finding.id} is {finding.status} already, by "
                    f"{finding.resolved_by} at "
                    f"{finding.resolved_at.isoformat() if finding.resolved_at else '?'}",
                    field,
                )
        return found
