"""Request and response bodies of the API that are not the services' own models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from headend.domain.enums import FailureCategory, JobState, Role
from headend.domain.quality import Quality


class Strict(BaseModel):
    """A request body: an unknown field is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class IntervalOut(BaseModel):
    channel: str = Field(examples=["1.0.1.8.0.255"])
    interval_end: datetime
    value_kwh: Decimal | None
    cumulative_kwh: Decimal | None
    quality: Quality
    method: str | None = Field(examples=["E3"])
    flags: list[str]
    status: int | None
    version: int
    created_by: str


class RegisterOut(BaseModel):
    obis: str = Field(examples=["1.0.1.8.0.255"])
    read_at: datetime
    value: Decimal | None
    unit: str = Field(examples=["kWh"])
    capture_time: datetime | None
    quality: Quality
    method: str | None
    flags: list[str]
    version: int
    created_by: str


class ReadRequest(Strict):
    kind: Literal["registers", "load_profile", "clock", "full"] = Field(
        "registers",
        description="registers: billing registers; load_profile: the load profile over "
        "[start, end] (default: from the last stored interval); clock: check the clock and "
        "set it when it drifted past the threshold; full: all of these, with events",
    )
    start: AwareDatetime | None = Field(None, examples=["2026-11-20T00:00:00+07:00"])
    end: AwareDatetime | None = Field(None, examples=["2026-11-21T00:00:00+07:00"])

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "registers"}, {"kind": "full"}]},
    )


class JobOut(BaseModel):
    job_id: int
    state: JobState
    attempts: int
    failure_category: FailureCategory | None
    failure_detail: str | None
    values: list[dict[str, Any]] = Field(
        description="What the meter returned, one entry per read landed (clock, registers, "
        "load profile rows, events)"
    )
    links: dict[str, str]


class EditRequest(Strict):
    channel: str = Field(examples=["1.0.1.8.0.255"])
    start: AwareDatetime = Field(description="Intervals ending after this instant are edited")
    end: AwareDatetime = Field(description="... up to and including this one")
    value_kwh: Decimal | None = Field(
        None, description="The value each interval is set to; absent: see the edit rules"
    )
    reason_code: str = Field(min_length=1, max_length=16, examples=["METER_EXCHANGE"])
    comment: str | None = Field(None, max_length=2000)


class ResolveRequest(Strict):
    note: str | None = Field(None, max_length=2000)


class PlanIn(Strict):
    cron: str = Field(examples=["5 0 * * *"], description="In the utility's time zone")
    kinds: list[Literal["registers", "load_profile", "billing_profile", "events", "clock"]] = Field(
        min_length=1, examples=[["registers", "load_profile"]]
    )
    selector: dict[str, Any] = Field(
        examples=[{"all": True}, {"gateway": "gw-01"}, {"device_profile": "three_phase_tou"}],
        description='{"all": true} or one of gateway, device_profile, tag',
    )
    window_minutes: int = Field(240, ge=1, le=24 * 60)


class PlanOut(BaseModel):
    name: str
    cron: str
    kinds: list[str]
    selector: dict[str, Any]
    window_minutes: int
    active: bool
    last_fired_at: datetime | None


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=64, examples=["billing-cmis"])
    role: Role


class KeyOut(BaseModel):
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="Shown this once; it is stored only as a hash")


class LoopHealth(BaseModel):
    """A background loop of ``serve``: crashes are logged and the loop restarted."""

    running: bool
    crashes: int
    last_error: str | None = None
    last_crash_at: datetime | None = None


class WorkerHealth(BaseModel):
    """A ``headend worker`` process as its last heartbeat left it."""

    name: str = Field(description="host:pid")
    sites: list[str] = Field(description="The sites it reads; []: the gateways of no site")
    capacity: int = Field(description="Meter sessions it runs at once at most")
    sessions: int = Field(description="Meter sessions running at its last heartbeat")
    finished: int = Field(description="Meter sessions it ended since it started")
    seen_at: datetime = Field(description="Its last heartbeat")
    alive: bool = Field(
        description="Heard from within 5 heartbeats: the dispatcher counts it and sends work"
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    scheduler: Literal["running", "not running"]
    sessions_in_flight: int
    loops: dict[str, LoopHealth] = {}
    executor: Literal["local", "celery"] = Field(
        description="Where meter sessions run: local, in this process; celery, on workers"
    )
    role: Literal["leader", "standby"] | None = Field(
        description="This process's part in collection: leader (runs the scheduler and the "
        "dispatcher), standby (waits to take over from the leading coordinator), or null (no "
        "collection here: `serve --no-collect`, or the scheduler is not running)"
    )
    workers: list[WorkerHealth] = Field(
        default=[],
        description="Workers not stopped and heard from in the last 24 hours, the alive ones "
        "first, then by name; [] with the local executor",
    )
