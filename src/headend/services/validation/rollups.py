"""The rollup pass: per-meter-day sums of the current interval versions (``interval_days``),
recomputed for the meters whose data changed, so that billing reads a few dozen rows per meter
and month instead of thousands of intervals.

Freshness is a mark on the meter: every writer of interval versions (landing, the VEE
pass, operator edits and reverts) sets ``meters.rollup_from`` to the earlier of what it held
and the earliest interval end it changed, in the writer's own transaction
(``RollupRepository.mark_stale``). A meter's rollup rows are exact for the local days before
the day of its mark; billing reads later days from the intervals.

``RollupService.run_pending`` takes the marked meters in batches, one transaction each:
delete their rows from the day of the mark on (or the nearest steady day before it, see
``headend.domain.local_days``), insert them again with one set-based ``INSERT ... SELECT``
per capture period (``headend.store.queries.rollups``), and clear each mark only where it
still holds the value read (compare-and-set), so a write that moved it meanwhile is rolled
up by the next pass. On PostgreSQL the batch's meter rows are locked
(``FOR UPDATE SKIP LOCKED``): a concurrent writer's mark waits for the pass to commit and
then lands, even when it leaves the value as it was; meters locked by a writer are left to
the next pass. Days from ``horizon_days`` after today on are not rolled up: a meter with
intervals there (a clock far ahead) keeps its mark at the first of them.

The rows depend on the time zone, the time-of-use calendar and the channels rolled up (every
device profile's import and load-profile channels): together they are the *basis*, kept in
``rollup_basis``. A pass that finds another basis stored (or none, after the migration that
added the rollups) records its own and marks every meter from the beginning, and billing uses
rollups only when its basis is the stored one; until the rebuild is done it reads intervals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.local_days import LocalDays
from headend.domain.tou import TouCalendar
from headend.profiles import ProfileError, load_profile
from headend.services.billing.meters import profiles_calendar, rolled_channels
from headend.store.queries.rollups import (
    RollupBatch,
    beyond_horizon,
    day_rows_delete,
    rollup_basis,
    rollup_rows,
)
from headend.store.repositories.rollups import RollupRepository

log = structlog.get_logger(__name__)

BEGINNING = datetime(1970, 1, 2, tzinfo=UTC)  # the mark of a meter rebuilt from scratch


@dataclass(frozen=True)
class RollupSettings:
    batch_meters: int = 200
    horizon_days: int = 7  # days after today rolled up at most


@dataclass
class RollupSummary:
    meters: int = 0  # meters whose rollups were recomputed
    rebuilt: bool = False  # the basis had changed: every meter was marked


class RollupService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        tz: ZoneInfo,
        calendar: TouCalendar | None = None,
        settings: RollupSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        profiles_dir: Path | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.tz = tz
        self.profiles_dir = profiles_dir  # None: the shipped protocols/ folder
        self.calendar = calendar or profiles_calendar(tz, profiles_dir)
        self.settings = settings or RollupSettings()
        self.clock = clock
        self.days = LocalDays(tz)

    def run_pending(self, stop: Callable[[], bool] | None = None) -> RollupSummary:
        """Recompute the rollups of every marked meter, a batch per transaction; each meter is
        taken at most once per call. When ``stop`` turns true the pass ends after the batch
        under way; the meters left stay marked."""
        summary = RollupSummary()
        channels = rolled_channels(self.profiles_dir)
        basis = rollup_basis(self.tz, self.calendar, channels)
        with self.session_factory() as session, session.begin():
            repo = RollupRepository(session)
            if repo.basis() != basis:
                repo.set_basis(basis)
                repo.mark_all_stale(BEGINNING)
                summary.rebuilt = True
        today = self.days.day_of_end(self.clock())
        horizon = self.days.steady_from(today + 1 + self.settings.horizon_days, 1)
        after = 0
        while stop is None or not stop():
            with self.session_factory() as session, session.begin():
                repo = RollupRepository(session)
                repo.without_jit()
                marked = repo.stale_meters(after, self.settings.batch_meters)
                if not marked:
                    return summary
                after = marked[-1][0]
                rolled, ahead = self._roll(session, marked, channels, horizon)
                seen = [(pk, since, ahead.get(pk)) for pk, since, _ in marked if pk in rolled]
                repo.clear(seen)
                summary.meters += len(seen)
        return summary

    def _roll(
        self,
        session: Session,
        marked: list[tuple[int, datetime, str]],
        channels: tuple[str, ...],
        horizon: int,
    ) -> tuple[set[int], dict[int, datetime]]:
        """Recompute the day rows of a batch; returns the meters done and, for those with
        intervals past the horizon, the first such interval end."""
        by_period: dict[int, dict[int, int]] = defaultdict(dict)
        for pk, since, profile in marked:
            try:
                period_s = load_profile(profile, self.profiles_dir).load_profile.capture_period_s
            except ProfileError as exc:  # left marked, the rest of the batch goes on
                log.warning("day rollups skipped", meter_pk=pk, reason=str(exc))
                continue
            day = self.days.steady_from(self.days.day_of_end(since), -1)
            by_period[period_s][pk] = min(day, horizon)
        ahead: dict[int, datetime] = {}
        for period_s, since_days in by_period.items():
            batch = RollupBatch(period_s, since_days, horizon)
            for delete in day_rows_delete(batch, self.days):
                session.execute(delete)
            rows = rollup_rows(session, batch, channels, self.days, self.calendar, self.tz)
            RollupRepository(session).add_days(rows.days, rows.ends)
            ahead.update(beyond_horizon(session, batch, channels, self.days))
        done = {pk for since_days in by_period.values() for pk in since_days}
        return done, ahead
