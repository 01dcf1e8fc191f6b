"""One read job, end to end: the meter's session, landing what it returned, then VEE.

``CollectionService.run`` is the dispatcher's read runner. It never raises for a meter's or a
link's fault: every failure comes back as an ``AttemptOutcome`` with its category.

A read the store does not take is kept in the spool (``spool.py``) and its job left running;
``land_spool`` lands what waits there once the store takes writes again, and only then ends the
job as succeeded. It runs on its own while something is spooled, and whenever a read lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session, sessionmaker

from headend.domain.enums import (
    AuthLevel,
    FailureCategory,
    GatewayKind,
    JobState,
    ReadKind,
    SerialFraming,
)
from headend.domain.jobs import JobEvent
from headend.domain.readings import MeterRead
from headend.domain.registry_format import parse_extra_objects
from headend.profiles import DeviceProfile, ProfileError, load_profile
from headend.protocol.collect import Collection, collect
from headend.protocol.errors import ProtocolError
from headend.protocol.plan import ObjectRead, ReadSpec
from headend.protocol.registers import DefinitionCache
from headend.protocol.session import MeterSession
from headend.protocol.target import MeterTarget
from headend.protocol.transports import Timeouts
from headend.services.clock import Clock, utcnow
from headend.services.collection.jobs import AttemptOutcome
from headend.services.collection.landing import land
from headend.services.collection.quirks import known_quirks
from headend.services.collection.readspec import proposed_by, read_spec_from_profile
from headend.services.collection.spool import Spool, Spooled
from headend.store.batch import RETRY_FOR_S, StoreBatch
from headend.store.models import Gateway, Meter, MeterSecret
from headend.store.repositories.jobs import DueJob, JobRepository
from headend.store.repositories.readings import ReadingsRepository
from headend.store.repositories.registry import RegistryRepository
from headend.store.secrets import SecretBox, SecretDecryptionError

log = structlog.get_logger(__name__)
T = TypeVar("T")
COUNTER_BLOCK = 64  # HLS invocation counters reserved (and committed) before a session
LANDING_BATCH = 64  # reads landed in one transaction at most
CONTEXT_BATCH = 128  # meters whose session context is read in one transaction at most
SPOOL_EVERY_S = 30.0  # while reads wait in the spool, how often landing them is tried


class ConfigurationProblem(Exception):
    """The registry or a device profile does not let us talk to this meter."""


@dataclass(frozen=True)
class CollectionSettings:
    client_system_title: str = "4845414445000001"
    clock_sync_threshold_s: float | None = 20.0
    backfill: timedelta = timedelta(days=40)  # first read of a meter: this much history
    timeouts: Timeouts = field(default_factory=Timeouts)  # .session: a session's budget
    max_pdu: int = 1024
    max_transfer_bytes: int = 4 * 1024 * 1024  # one block transfer at most


@dataclass(frozen=True)
class SpoolPass:
    landed: int = 0  # spooled reads landed (and removed from the spool)
    waiting: int = 0  # spooled reads still waiting: the store refused them again


@dataclass(frozen=True)
class MeterContext:
    meter_pk: int
    target: MeterTarget
    profile: str
    last_interval: datetime | None
    first_counter: int | None
    extra: tuple[ObjectRead, ...] = ()  # the registry's extra_obis: read with the registers


class BlockCounterStore:
    """Serves HLS invocation counters from a block already reserved in the store; asks the
    store for another block (synchronously) only if a session outgrows it."""

    def __init__(self, first: int, count: int, more: Callable[[int], int]) -> None:
        self._next, self._end, self._more = first, first + count, more

    def reserve(self, meter_id: str, n: int) -> int:
        if self._next + n > self._end:
            self._next = self._more(max(n, COUNTER_BLOCK))
            self._end = self._next + max(n, COUNTER_BLOCK)
        start, self._next = self._next, self._next + n
        return start


def what_to_read(
    kind: ReadKind,
    params: dict[str, Any],
    context: MeterContext,
    now: datetime,
    settings: CollectionSettings,
) -> Collection:
    kinds = {ReadKind(k) for k in params.get("kinds", [])} or {kind}
    if ReadKind.FULL in kinds:
        kinds = {
            ReadKind.REGISTERS,
            ReadKind.LOAD_PROFILE,
            ReadKind.BILLING_PROFILE,
            ReadKind.EVENTS,
            ReadKind.CLOCK,
        }
    start = datetime.fromisoformat(params["start"]) if "start" in params else None
    end = datetime.fromisoformat(params["end"]) if "end" in params else now
    if start is None:
        # from the last stored interval (its row is the base of the next), else backfill
        start = context.last_interval or (now - settings.backfill)
    needs_period = kinds & {ReadKind.LOAD_PROFILE, ReadKind.BILLING_PROFILE, ReadKind.EVENTS}
    return Collection(
        start=start if needs_period else None,
        end=end if needs_period else None,
        clock=True,
        registers=ReadKind.REGISTERS in kinds,
        load_profile=ReadKind.LOAD_PROFILE in kinds,
        billing=ReadKind.BILLING_PROFILE in kinds,
        events=ReadKind.EVENTS in kinds,
        clock_sync_threshold_s=settings.clock_sync_threshold_s if ReadKind.CLOCK in kinds else None,
    )


class CollectionService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        box: SecretBox,
        settings: CollectionSettings | None = None,
        clock: Clock = utcnow,
        store_executor: Executor | None = None,
        spool: Spool | None = None,
        landing_retry_s: float = RETRY_FOR_S,
        spool_every_s: float = SPOOL_EVERY_S,
        profiles_dir: Path | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.profiles_dir = profiles_dir  # None: the shipped protocols/ folder
        self.box = box
        self.settings = settings or CollectionSettings()
        self.clock = clock
        self.cache = DefinitionCache()
        self._specs: dict[str, ReadSpec] = {}
        self._profiles: dict[str, DeviceProfile] = {}
        self._executor = store_executor
        # sessions start and end in bursts: what they need from the store goes in batches
        self._contexts = StoreBatch(self._store, self.load_contexts, CONTEXT_BATCH)
        self._landing = StoreBatch(
            self._store, self.land_reads, LANDING_BATCH, retry_for_s=landing_retry_s
        )
        self.spool = spool
        self._spool_every_s = spool_every_s
        self._spool_wake: asyncio.Event | None = None
        self._spool_task: asyncio.Task[None] | None = None

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def profile(self, name: str) -> DeviceProfile:
        found = self._profiles.get(name)
        if found is None:
            try:
                found = self._profiles[name] = load_profile(name, self.profiles_dir)
            except ProfileError as exc:
                raise ConfigurationProblem(str(exc)) from exc
        return found

    def read_spec(self, profile: str) -> ReadSpec:
        spec = self._specs.get(profile)
        if spec is None:
            try:
                spec = self._specs[profile] = read_spec_from_profile(self.profile(profile))
            except ProfileError as exc:
                raise ConfigurationProblem(str(exc)) from exc
        return spec

    async def read(self, session: MeterSession, spec: ReadSpec, what: Collection) -> MeterRead:
        """What one session reads from its meter."""
        return await collect(session, spec, what, self.cache)

    # -- store side (runs in the store's thread) --------------------------------------------
    def load_contexts(self, meter_pks: Sequence[int]) -> list[MeterContext | Exception]:
        """What sessions to these meters need, read in one transaction; for a meter the
        registry cannot serve, the problem in its place."""
        with self.session_factory() as session, session.begin():
            rows = RegistryRepository(session).meters_with_gateways(meter_pks)
            found = {meter.id: (meter, gateway, secret) for meter, gateway, secret in rows}
            last = ReadingsRepository(session).last_interval_ends(list(found))
            # the firmware each meter reported last ("" before any read did: then what was
            # learned of any firmware of its profile)
            models = {(m.device_profile, m.firmware or "") for m, _, _ in found.values()}
            known = known_quirks(session, models)
            contexts: dict[int, MeterContext | Exception] = {}
            for pk, (meter, gateway, secret) in found.items():
                try:
                    contexts[pk] = self._context(
                        session,
                        meter,
                        gateway,
                        secret,
                        last.get(pk),
                        known.get((meter.device_profile, meter.firmware or ""), frozenset()),
                    )
                except ConfigurationProblem as exc:
                    contexts[pk] = exc
        missing = ConfigurationProblem
        return [
            contexts.get(pk) or missing(f"meter {pk} is not in the registry") for pk in meter_pks
        ]

    def _context(
        self,
        session: Session,
        meter: Meter,
        gateway: Gateway,
        secret: MeterSecret | None,
        last_interval: datetime | None,
        known: frozenset[str] = frozenset(),
    ) -> MeterContext:
        secrets = self.box.open(secret.name, secret.ciphertext) if secret is not None else None
        if meter.auth is not AuthLevel.NONE and secrets is None:
            raise ConfigurationProblem(
                f"meter {meter.meter_id} uses {meter.auth} but has no secret"
            )
        quirks = self.profile(meter.device_profile).quirks
        target = MeterTarget(
            meter_id=meter.meter_id,
            transport=meter.transport,
            host=gateway.host,
            port=gateway.port,
            serial_device=gateway.device if gateway.kind is GatewayKind.SERIAL else None,
            baud_rate=gateway.baud_rate or 9600,
            framing=gateway.framing or SerialFraming.F8N1,
            client_sap=meter.client_sap,
            server_logical=meter.server_logical,
            server_physical=meter.server_physical,
            auth=meter.auth,
            password=secrets.lls_password if secrets else None,
            encryption_key=secrets.hls_encryption_key.hex()
            if secrets and secrets.hls_encryption_key
            else None,
            authentication_key=secrets.hls_authentication_key.hex()
            if secrets and secrets.hls_authentication_key
            else None,
            client_title=self.settings.client_system_title,
            max_pdu=self.settings.max_pdu,
            max_transfer_bytes=self.settings.max_transfer_bytes,
            timeouts=self.settings.timeouts,
            firmware=meter.firmware or "",
            known_quirks=known,
        )
        target = proposed_by(target, quirks)
        first_counter = None
        if meter.auth is AuthLevel.HLS_GMAC:
            first_counter = RegistryRepository(session).reserve_invocation_counters(
                meter.id, COUNTER_BLOCK
            )
        try:
            extra = parse_extra_objects(meter.extra_obis or "")
        except ValueError as exc:
            raise ConfigurationProblem(f"meter {meter.meter_id}: extra_obis: {exc}") from exc
        return MeterContext(
            meter.id,
            target,
            meter.device_profile,
            last_interval,
            first_counter,
            tuple(ObjectRead(obis, class_id) for class_id, obis in extra),
        )

    def reserve_more(self, meter_pk: int, count: int) -> int:
        with self.session_factory() as session, session.begin():
            return RegistryRepository(session).reserve_invocation_counters(meter_pk, count)

    def land_reads(self, items: Sequence[tuple[DueJob, MeterRead, datetime]]) -> list[Any]:
        """Land several reads in one transaction (one commit for many meters). If the batch
        fails, each read is landed on its own, so one bad read cannot sink the others; the
        result for a read that still fails is its exception."""
        try:
            with self.session_factory() as session, session.begin():
                return [self._land(session, job, read, at) for job, read, at in items]
        except Exception:
            if len(items) == 1:
                raise
        results: list[Any] = []
        for item in items:
            try:
                results.extend(self.land_reads([item]))
            except Exception as exc:
                results.append(exc)
        return results

    @staticmethod
    def _land(session: Session, job: DueJob, read: MeterRead, at: datetime) -> dict[str, Any]:
        landed = land(session, job.meter_pk, job.kind, read, at, job.id)
        return {
            "raw_read_id": landed.raw_read_id,
            "registers": landed.registers,
            "intervals": landed.intervals,
            "events": landed.events,
            "unavailable": sorted(str(o) for o in read.unavailable),
        }

    async def land_read(self, job: DueJob, read: MeterRead, read_at: datetime) -> dict[str, Any]:
        """Land a read; reads finishing together are landed in one transaction."""
        result = await self._landing.submit((job, read, read_at))
        return dict(result)

    # -- the spool ----------------------------------------------------------------------------
    def land_spooled(self) -> SpoolPass:
        """Land each read waiting in the spool, one transaction each, and end its job as
        succeeded; a read's file is removed once its transaction committed. Landing is
        idempotent, so a read landed before a crash that kept its file lands once."""
        if self.spool is None:
            return SpoolPass()
        self.spool.clear_torn()
        landed = waiting = 0
        for path in self.spool.waiting():
            try:
                entry = self.spool.load(path)
            except Exception as exc:  # kept for a person to look at, never deleted
                log.error("a spool file cannot be read", path=str(path), error=str(exc))
                waiting += 1
                continue
            try:
                with self.session_factory() as session, session.begin():
                    land(
                        session, entry.meter_pk, entry.kind, entry.read, entry.read_at, entry.job_id
                    )
                    if entry.job_id is not None:
                        self._succeed_spooled(JobRepository(session), entry.job_id)
            except Exception as exc:
                log.warning(
                    "the store refused a spooled read; it stays in the spool",
                    path=str(path),
                    error=str(exc).splitlines()[0] if str(exc) else repr(exc),
                )
                waiting += 1
                continue
            self.spool.remove(path)
            landed += 1
            log.info("landed a spooled read", job_id=entry.job_id, meter_pk=entry.meter_pk)
        return SpoolPass(landed, waiting)

    def _succeed_spooled(self, repo: JobRepository, job_id: int) -> None:
        """The job whose read just landed from the spool ends succeeded. A job started again
        in the meantime (requeued after a restart) is started if it waits, then succeeds; one
        that already ended stays as it is."""
        now = self.clock()
        job = repo.job(job_id)
        if job is None or job.state not in (JobState.RUNNING, JobState.QUEUED, JobState.RETRY_WAIT):
            return
        state = job.state
        started = state is JobState.RUNNING or repo.transition(
            job_id, JobEvent.START, now, "landing its spooled read", state
        )
        if not started:
            return
        repo.transition(
            job_id,
            JobEvent.SUCCEED,
            now,
            "read landed from the spool",
            expected=JobState.RUNNING,
            failure_category=None,
            failure_detail=None,
        )

    async def land_spool(self) -> SpoolPass:
        """``land_spooled`` in the store's thread."""
        if self.spool is None:
            return SpoolPass()
        return await self._store(self.land_spooled)

    async def land_spool_and_watch(self) -> SpoolPass:
        """Land what waits in the spool now (reads a stopped process kept); if the store
        still refuses some, keep trying every ``spool_every_s``."""
        done = await self.land_spool()
        if done.waiting:
            self._kick_spool(now=False)
        return done

    def _kick_spool(self, now: bool) -> None:
        """Try to land the spool every ``spool_every_s`` while reads wait in it, and at once
        if ``now`` (a read has just landed: the store takes writes again)."""
        if self._spool_task is None or self._spool_task.done():
            self._spool_wake = asyncio.Event()
            self._spool_task = asyncio.create_task(self._drain_spool(), name="landing-the-spool")
        if now and self._spool_wake is not None:
            self._spool_wake.set()

    async def _drain_spool(self) -> None:
        wake = self._spool_wake
        assert wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._spool_every_s)
            wake.clear()
            try:
                done = await self.land_spool()
            except Exception:
                log.exception("landing the spool failed")
                continue
            if not done.waiting:
                return

    async def _keep(self, job: DueJob, read: MeterRead, read_at: datetime) -> bool:
        """Write a read the store did not take to the spool; False if there is no spool or
        writing failed (the read is then lost, and the log says so)."""
        if self.spool is None:
            return False
        try:
            entry = Spooled(job.id, job.meter_pk, job.kind, read_at, read)
            path = await asyncio.to_thread(self.spool.keep, entry)
        except Exception:
            log.exception("a read could not be written to the spool; it is lost")
            return False
        log.warning("the store refused a read; it is kept in the spool", path=str(path))
        self._kick_spool(now=False)
        return True

    # -- the runner ---------------------------------------------------------------------------
    async def run(self, job: DueJob) -> AttemptOutcome:
        started = self.clock()
        t0 = time.perf_counter()
        try:
            context = await self._contexts.submit(job.meter_pk)
            spec = self.read_spec(context.profile)
            if context.extra:
                spec = replace(spec, extra_objects=context.extra)
        except (ConfigurationProblem, ProfileError, SecretDecryptionError) as exc:
            # the registry, a profile or a secret is wrong: the registry's mistake
            log.error("cannot prepare the session", error=str(exc))
            return AttemptOutcome(
                started, self.clock(), False, FailureCategory.CONFIGURATION, str(exc)
            )
        except Exception as exc:  # a bug of ours before the session: record it, do not retry
            log.exception("unexpected error preparing a meter session")
            return AttemptOutcome(
                started, self.clock(), False, FailureCategory.INTERNAL, f"internal: {exc!r}"
            )
        what = what_to_read(job.kind, job.params, context, started, self.settings)
        counters = None
        if context.first_counter is not None:
            counters = BlockCounterStore(
                context.first_counter,
                COUNTER_BLOCK,
                lambda n: self.reserve_more(context.meter_pk, n),
            )
        session = MeterSession(context.target, counters=counters, release=spec.supports_release)
        connect_ms: int | None = None
        try:
            async with session:
                connect_ms = int((time.perf_counter() - t0) * 1000)
                read = await self.read(session, spec, what)
        except ProtocolError as exc:
            return AttemptOutcome(
                started,
                self.clock(),
                False,
                exc.category,
                exc.one_line(),
                connect_ms,
                session.traffic.sent,
                session.traffic.received,
            )
        except Exception as exc:  # a bug of ours while reading: record it, do not retry
            log.exception("unexpected error in a meter session")
            return AttemptOutcome(
                started,
                self.clock(),
                False,
                FailureCategory.INTERNAL,
                f"internal: {exc!r}",
                connect_ms,
                session.traffic.sent,
                session.traffic.received,
            )
        finished = self.clock()
        try:
            result = await self.land_read(job, read, finished)
        except Exception as exc:  # spooled, the read lands later and the job waits running
            log.exception("landing a read failed")
            spooled = await self._keep(job, read, finished)
            kept = "; the read is kept in the spool" if spooled else ""
            return AttemptOutcome(
                started,
                self.clock(),
                False,
                FailureCategory.STORE_REFUSED,
                f"landing failed: {exc!r}{kept}",
                connect_ms,
                spooled=spooled,
            )
        if self._spool_task is not None and not self._spool_task.done():
            self._kick_spool(now=True)  # the store takes writes: land what waits in the spool
        return AttemptOutcome(
            started,
            finished,
            True,
            None,
            None,
            connect_ms,
            session.traffic.sent,
            session.traffic.received,
            result,
        )
