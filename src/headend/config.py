"""Settings, built once at start-up from ``HEADEND_*`` variables and an optional TOML file.

Nothing reads settings at import time: the CLI builds a ``Settings`` and passes it into the
factories that need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Keys that look like someone forgot to set one. Refused outside the demo.
PLACEHOLDER_KEYS = frozenset({"", "changeme", "change-me", "secret", "password", "test", "key"})
# The key the demo uses: public on purpose, refused unless ``demo`` is on.
DEMO_SECRET_KEY = "headend-demo-key-not-for-production-use-0123456789"
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """The configuration is unusable; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADEND_", extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite:///headend.db",
        description="SQLAlchemy URL of the store; default: a SQLite file in the working directory.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts meter secrets at rest (32 characters or more).",
    )
    demo: bool = Field(default=False, description="Allow the public demo secret key.")
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Database connections a process keeps open (PostgreSQL); 10 more may open "
        "for a burst.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_range_days: int = Field(
        default=62, ge=1, le=3660, description="Longest time range one API request may ask for."
    )
    billing_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Processes that build the pages of a bulk billing stream or export; 0: "
        "the serving process builds them.",
    )
    api_reads_per_meter: int = Field(
        default=6, ge=1, le=1000, description="On-demand reads one meter accepts per 10 minutes."
    )
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="The utility's time zone.")
    log_level: str = Field(default="INFO")
    log_json: bool = Field(default=False, description="Log JSON lines instead of console text.")
    clock_sync_threshold_s: float = Field(default=20.0, gt=0)
    max_sessions: int = Field(default=200, ge=1, le=20000, description="Sessions at once.")
    retry_delay_scale: float = Field(
        default=1.0, gt=0, le=100, description="Multiplies every retry delay (tests, demos)."
    )
    backfill_days: int = Field(
        default=40, ge=1, le=400, description="History read from a meter never read before."
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    response_timeout_s: float = Field(default=10.0, gt=0, le=300)
    session_budget_s: float = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="Longest one meter session may take, however its steps go; a session "
        "reading less gets less (a base plus an allowance per object and per day of profile).",
    )
    max_transfer_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Most bytes one block transfer from a meter may bring, however much was "
        "asked for; a transfer running past it is refused before more is read.",
    )
    spool_dir: Path = Field(
        default=Path("spool"),
        description="Folder where a read the store refused waits until it lands; default: "
        "spool/ in the working directory.",
    )
    profiles_dir: Path | None = Field(
        default=None,
        description="Folder of device profiles (one YAML file per meter model); default: the "
        "protocols/ folder shipped with headend.",
    )
    interval_retention_months: int = Field(
        default=0,
        ge=0,
        le=1200,
        description="Months of interval data kept (whole months before the current one); "
        "older months are dropped by the store's upkeep. 0 keeps everything.",
    )
    executor: Literal["local", "celery"] = Field(
        default="local",
        description="Where meter sessions run: local, in the serving process (the embedded "
        "default); celery, on `headend worker` processes fed through the broker (needs "
        "PostgreSQL).",
    )
    broker_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672//",
        description="The Celery broker (RabbitMQ) that carries batches of read jobs to the "
        "workers (HEADEND_EXECUTOR=celery).",
    )
    job_lease_s: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="How long a worker's hold on a job lasts unless renewed; the worker renews "
        "it while the session runs, and a job whose lease ran out is queued again.",
    )
    worker_sites: str = Field(
        default="",
        description="Sites whose gateways `headend worker` reads, comma-separated; empty: "
        "the gateways that belong to no site.",
    )
    worker_sessions: int = Field(
        default=200, ge=1, le=5000, description="Sessions one `headend worker` runs at once."
    )
    client_system_title: str = Field(
        default="4845414445000001",
        description="The head-end's DLMS system title, 8 bytes as 16 hex digits.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("HEADEND_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @field_validator("client_system_title")
    @classmethod
    def _system_title(cls, value: str) -> str:
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("client_system_title must be hexadecimal") from exc
        if len(raw) != 8:
            raise ValueError("client_system_title must be 8 bytes (16 hex digits)")
        return value.lower()

    @property
    def sites(self) -> tuple[str, ...]:
        """``worker_sites`` as names, in order, without blanks or repeats."""
        names = (name.strip() for name in self.worker_sites.split(","))
        return tuple(dict.fromkeys(name for name in names if name))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def encryption_secret(self) -> str:
        """The secret key, refusing a missing or placeholder one outside the demo."""
        key = self.secret_key.get_secret_value() if self.secret_key is not None else ""
        if self.demo and key in ("", DEMO_SECRET_KEY):
            return DEMO_SECRET_KEY
        if key.strip().lower() in PLACEHOLDER_KEYS:
            raise ConfigError(
                "HEADEND_SECRET_KEY is not set. It encrypts meter passwords and keys at rest; "
                "set it to a random string of at least 32 characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        if key == DEMO_SECRET_KEY:
            raise ConfigError(
                "HEADEND_SECRET_KEY is the public demo key, accepted only with HEADEND_DEMO=1."
            )
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"HEADEND_SECRET_KEY is {len(key)} characters long; use at least "
                f"{MIN_SECRET_KEY_LENGTH}."
            )
        return key


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable ``ConfigError``."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"HEADEND_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the configuration file: {exc}") from exc
