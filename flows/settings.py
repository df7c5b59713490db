"""One typed settings object, resolved once and passed down.

Precedence (highest first): command-line options, environment variables
(``UNIONWH_LANDING``, ``UNIONWH_WAREHOUSE``, ``UNIONWH_MEMBERS_URL``,
``UNIONWH_REPORT_YEAR``, ``UNIONWH_OUTPUT``, ``UNIONWH_TIMEZONE``), the YAML file
(``UNIONWH_CONFIG`` or ``config/unionwh.yaml``), then defaults. Relative paths,
including the path in a ``duckdb:///`` URL, are resolved against the project
root: ``UNIONWH_HOME`` if set, else the current directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flows.errors import ConfigError

WAREHOUSE_DRIVERS = ("duckdb", "postgresql", "postgresql+psycopg")
MEMBERS_DRIVERS = ("sqlite", "mysql+pymysql", "mariadb+pymysql", "postgresql", "postgresql+psycopg")
DEFAULT_CRON = "0 2 * * *"
FIRST_REPORT_YEAR = 2000
"""The earliest report year accepted: a guard against a mistyped year (1999 for 2019); widen it
here if older years are ever loaded."""


def last_report_year() -> int:
    """The latest report year: next year (budgets are delivered ahead); a later one can have no
    deliveries yet (a folder dated in the future is held back until its day)."""
    return date.today().year + 1


def project_root() -> Path:
    return Path(os.environ.get("UNIONWH_HOME") or Path.cwd()).resolve()


def config_file() -> Path:
    explicit = os.environ.get("UNIONWH_CONFIG")
    return Path(explicit) if explicit else project_root() / "config" / "unionwh.yaml"


def _parse_url(value: str, allowed: tuple[str, ...], what: str) -> URL:
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ValueError(f"{what} is not a database URL") from exc
    if url.drivername not in allowed:
        raise ValueError(f"{what} must use one of {', '.join(allowed)}, not {url.drivername}")
    return url


class QualitySettings(BaseModel):
    """Batch gates (see docs/validation.md)."""

    max_duplicate_key_share: float = Field(0.05, ge=0, le=1)
    """Reject a file when more than this share of its rows repeat a key within the file."""
    min_row_share: float | None = Field(None, ge=0, le=1)
    """Reject a file with fewer rows than this share of the previous delivery of the same
    kind. Off by default: the contract's deliveries are deltas, so small files are normal."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNIONWH_", env_nested_delimiter="__", extra="forbid")

    landing: Path = Path("data/landing")
    """The landing zone: ``<landing>/<source>/<YYYY-MM-DD>/<files>``."""
    warehouse: str = "duckdb:///data/warehouse.duckdb"
    """The warehouse: an embedded DuckDB file, or ``postgresql+psycopg://user@host:5432/db``."""
    members_url: str | None = None
    """The member platform's database (``mysql+pymysql://…``, ``postgresql+psycopg://…``, ``sqlite:///…``);
    unset: ``<landing>/members.sqlite`` if it exists."""
    members_overlap_minutes: int = Field(10, ge=0, le=7 * 24 * 60)
    """Each members pull starts this long before the stored watermark (late commits)."""
    lock_wait_seconds: int = Field(3600, ge=0)
    """How long a run waits for another run's warehouse lock before giving up."""
    report_year: int = 2021
    """The year whose figures ``unionwh run`` prints and reports (2000 to next year)."""
    timezone: str = "Asia/Shanghai"
    """The federation's time zone: delivery dates, the members pull's day, the nightly schedule."""
    nightly_cron: str = DEFAULT_CRON
    """When ``unionwh serve`` schedules the nightly load (cron, in ``timezone``)."""
    output: Path = Path("data/runs")
    """Per-run outputs: figures, report, dbt artifacts."""
    published: Path = Path("data/published")
    """Published annual summaries, one read-only folder per year (``unionwh report publish``)."""
    keep_runs: int = Field(30, ge=0)
    """After a successful run, run folders beyond the newest this many are removed (never a
    published year's run, the newest succeeded run's or one still running: see
    flows/orchestration/retention.py); 0 keeps every folder."""
    report_template: Path | None = None
    """The summary's text with figure placeholders; default ``config/report/summary.zh.md`` of the
    project root, else the one shipped with unionwh."""
    stream_rows: int = Field(200_000, ge=1_000)
    """A source goes through extract, validate and load in slices of about this many rows (whole
    files; a members page is exactly this many): peak memory depends on it, not on the source's size."""
    parallel_slices: int = Field(1, ge=1, le=64)
    """How many slices are extracted and validated at once while the run loads the one before them."""
    task_runner: Literal["threads", "dask"] = "threads"
    """Where extract and validation run: threads of the run's process, or a Dask cluster (prefect-dask)."""
    dask_address: str | None = None
    """A running Dask scheduler (``tcp://host:8786``) for ``task_runner: dask``; unset: a temporary
    local cluster of ``parallel_slices`` worker processes. The workers must see the landing zone."""
    duckdb_memory_limit: str = Field("2GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
    """DuckDB's memory limit, for the load and for dbt (it spills to disk beyond it); DuckDB's own
    default is 80% of the machine's memory."""
    marts_snapshot: bool = True
    """DuckDB warehouse: after each successful run that built the marts, publish them to
    ``<warehouse stem>-marts.duckdb`` beside it, a file analysts (and ``unionwh figures`` / ``audit``
    while a run holds the warehouse) read at any time; swapped atomically (flows/warehouse/snapshot.py)."""
    dbt_build: Literal["changed", "all"] = "changed"
    """``changed``: a run rebuilds only the dbt models downstream of raw tables that gained rows
    since the last successful build (and of ``ops``); ``all``: every model, every run."""
    dbt_log_file_level: Literal["debug", "info", "warn", "error", "none"] = "info"
    """What dbt writes to ``dbt.log`` in a run's ``dbt`` folder (its ``--log-level-file``): ``info``
    is what its console says (also in ``dbt-output.log``); ``debug`` adds every SQL statement, connection
    and timing, which costs about a second of a demo run's CPU; ``none`` writes no ``dbt.log``."""
    heartbeat_seconds: int = Field(30, ge=30, le=3600)
    """How often a running flow tells the Prefect server it is alive (Prefect's
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, whose minimum is 30 s)."""
    crashed_after_seconds: int = Field(90, ge=31, le=24 * 3600)
    """A unionwh flow run that sends no heartbeat (and changes no state) for this long is marked
    Crashed by the Prefect automation that ``unionwh serve`` / ``prefect-server`` / ``liveness``
    install (flows/orchestration/liveness.py). Keep it about three heartbeats."""
    quality: QualitySettings = QualitySettings()
    """Batch gates (the ``quality.*`` rows)."""
    notify_url: SecretStr | None = None
    """Apprise URL(s) told when a run fails (env UNIONWH_NOTIFY_URL). Never logged."""
    pii_key: SecretStr | None = None
    """Pseudonymisation key (env UNIONWH_PII_KEY); see flows/warehouse/pii.py. Never logged."""

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
        path = config_file()
        if path.exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path, yaml_file_encoding="utf-8"))
        return tuple(sources)

    @field_validator("warehouse")
    @classmethod
    def _check_warehouse(cls, value: str) -> str:
        _parse_url(value, WAREHOUSE_DRIVERS, "warehouse URL")
        return value

    @field_validator("members_url")
    @classmethod
    def _check_members(cls, value: str | None) -> str | None:
        if value:
            _parse_url(value, MEMBERS_DRIVERS, "members URL")
        return value or None

    @field_validator("nightly_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if value == DEFAULT_CRON:  # known good; the check imports all of Prefect (1.5 s before any error)
            return value
        from prefect.schedules import validate_cron_string  # deferred: Prefect, only for a configured cron

        try:
            validate_cron_string(value)
        except ValueError as exc:
            raise ValueError(f"not a cron expression: {value!r}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_liveness(self) -> Settings:
        if self.crashed_after_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"crashed_after_seconds ({self.crashed_after_seconds}) must be longer than "
                f"heartbeat_seconds ({self.heartbeat_seconds}); about three heartbeats is right"
            )
        return self

    @field_validator("report_year")
    @classmethod
    def _check_year(cls, value: int) -> int:
        if not FIRST_REPORT_YEAR <= value <= last_report_year():
            raise ValueError(
                f"report year must be between {FIRST_REPORT_YEAR} and {last_report_year()} "
                "(next year; a later one has no deliveries yet)"
            )
        return value

    # ------------------------------------------------------------ derived values
    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else project_root() / path

    @property
    def landing_dir(self) -> Path:
        return self.resolve(self.landing)

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.output)

    @property
    def published_dir(self) -> Path:
        return self.resolve(self.published)

    @property
    def template_path(self) -> Path:
        if self.report_template is not None:
            path = self.resolve(self.report_template)
            if not path.is_file():
                raise ConfigError(f"report template not found: {path}")
            return path
        local = project_root() / "config" / "report" / "summary.zh.md"
        return (
            local
            if local.is_file()
            else Path(__file__).resolve().parents[1] / "config" / "report" / "summary.zh.md"
        )

    @property
    def warehouse_url(self) -> URL:
        url = make_url(self.warehouse)
        if url.drivername == "duckdb":
            db = url.database or ""
            if db and db != ":memory:":
                url = url.set(database=str(self.resolve(Path(db))))
        elif url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url

    @property
    def is_duckdb(self) -> bool:
        return self.warehouse_url.drivername == "duckdb"

    @property
    def duckdb_path(self) -> Path:
        if not self.is_duckdb:
            raise ConfigError("the warehouse is not DuckDB")
        return Path(self.warehouse_url.database or "")

    @property
    def marts_snapshot_path(self) -> Path | None:
        """Where the run publishes the marts snapshot; None on PostgreSQL, for an in-memory
        DuckDB, or with ``marts_snapshot`` off."""
        if not (self.marts_snapshot and self.is_duckdb) or self.warehouse_url.database in (
            None,
            "",
            ":memory:",
        ):
            return None
        return self.duckdb_path.with_name(self.duckdb_path.stem + "-marts.duckdb")

    @property
    def members_database_url(self) -> URL | None:
        """The configured members URL, else the demo's ``<landing>/members.sqlite`` if present."""
        if self.members_url:
            url = make_url(self.members_url)
            if url.drivername == "sqlite" and url.database and url.database != ":memory:":
                url = url.set(database=str(self.resolve(Path(url.database))))
            return url
        demo = self.landing_dir / "members.sqlite"
        return make_url(f"sqlite:///{demo}") if demo.exists() else None

    def safe_warehouse(self) -> str:
        """The warehouse URL for logs and messages: never the password."""
        return self.warehouse_url.render_as_string(hide_password=True)

    def dbt_target(self) -> tuple[str, dict[str, str]]:
        """The dbt target name and the environment that profiles.yml reads."""
        url = self.warehouse_url
        if self.is_duckdb:
            return "duckdb", {
                "UNIONWH_DBT_DUCKDB_PATH": str(self.duckdb_path),
                "UNIONWH_DBT_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            }
        return "postgres", {
            "UNIONWH_DBT_PG_HOST": url.host or "127.0.0.1",
            "UNIONWH_DBT_PG_PORT": str(url.port or 5432),
            "UNIONWH_DBT_PG_USER": url.username or "postgres",
            "UNIONWH_DBT_PG_PASSWORD": url.password or "",
            "UNIONWH_DBT_PG_DBNAME": url.database or "postgres",
        }


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings once; ``overrides`` are command-line values (None = not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        # Name the setting and the problem, never the value: a URL may hold a password.
        # pydantic words a ValueError of ours as "Value error, <our text>": the text is enough.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"bad configuration: {problems}") from None


_BOUND: ContextVar[Settings | None] = ContextVar("unionwh_settings", default=None)


@contextlib.contextmanager
def bound(settings: Settings) -> Iterator[Settings]:
    """Hand ``settings``, resolved once by the caller (the CLI, with its options), to the flows it
    runs in this process: a flow's parameters are recorded by Prefect's API, so the settings (URLs
    that may hold a password, the pseudonym key) never travel as one."""
    token = _BOUND.set(settings)
    try:
        yield settings
    finally:
        _BOUND.reset(token)


def settings_for_run(**overrides: Any) -> Settings:
    """The settings of a flow run: those :func:`bound` by the caller, else resolved here (a
    deployment's run: environment and config file), with ``overrides`` (the flow's parameters,
    None = not given) on top either way."""
    settings = _BOUND.get()
    if settings is None:
        return load_settings(**overrides)
    # a parameter that only repeats the bound value (``year=settings.report_year``) changes nothing
    given = {k: v for k, v in overrides.items() if v is not None and v != getattr(settings, k, None)}
    return load_settings(**{**_explicit(settings), **given}) if given else settings


def _explicit(settings: Settings) -> dict[str, Any]:
    """The fields of ``settings`` as values :func:`load_settings` takes back."""
    return {name: getattr(settings, name) for name in type(settings).model_fields}
