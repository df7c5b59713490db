"""The warehouse as the read commands see it: opened read-only, never created, never migrated.

``unionwh figures``, ``quality``, ``audit``, ``report`` and ``status`` only read the warehouse.
:func:`warehouse_engine` (flows/warehouse/engine.py) is the writer's: it makes the DuckDB file
and its folder when they are missing, so a mistyped ``--warehouse`` once left an empty 536 KB
database behind and then said the marts were missing. Here instead:

- :func:`check_readable_warehouse` says in one line what is wrong before anything is read: no
  DuckDB file at the path (or a folder, or not a DuckDB file, or one a run holds open), or a
  PostgreSQL server that does not answer, refuses the login or has no such database
  (:func:`flows.dbcheck.check_database`);
- :func:`reading` yields an engine that opens DuckDB with ``read_only=True`` (no ``.wal`` or
  other side file; a read-only open of a missing file fails instead of creating it) and
  PostgreSQL sessions with ``default_transaction_read_only`` on, and turns a database error
  met while reading into one line;
- :func:`require_ledger` and :func:`require_year` refuse a warehouse without the run ledger,
  and a year the warehouse has no data for, naming the years it has.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows.dbcheck import CONNECT_TIMEOUT_SECONDS, TRANSIENT_KINDS, check_database, classify
from flows.errors import ConfigError, UnionWHError, safe_error_text
from flows.settings import Settings

from . import migrations, snapshot
from .figures import FIGURES_RELATION

SETTING = "UNIONWH_WAREHOUSE (or --warehouse)"
LOCKED = (
    "the DuckDB warehouse is open in another process (a run in progress?); DuckDB allows one process "
    "at a time: try again when it has finished"
)
"""Same words as flows/cli.py's main() for a writer meeting the lock."""
LEDGER_VERSION = 3
"""The schema version from which ``ops.runs`` has its counts (flows/warehouse/runlog.py)."""


def _reason(exc: BaseException) -> str:
    """The driver's words on one short line (DuckDB names the file, never a password)."""
    orig = getattr(exc, "orig", None)
    text = " ".join(str(orig if isinstance(orig, BaseException) else exc).split())
    return text if len(text) <= 200 else text[:199] + "…"


def _duckdb_engine(settings: Settings, path: Path | None = None) -> Engine:
    """A read-only engine on the DuckDB warehouse (or the DuckDB file at ``path``)."""
    warnings.filterwarnings("ignore", module="duckdb_engine")
    return sa.create_engine(
        settings.warehouse_url if path is None else f"duckdb:///{path}",
        poolclass=sa.pool.NullPool,
        connect_args={"read_only": True, "config": {"memory_limit": settings.duckdb_memory_limit}},
    )


class WarehouseInUse(ConfigError):
    """The DuckDB warehouse is open in another process (:data:`LOCKED`)."""


def check_readable_warehouse(settings: Settings) -> None:
    """One line (:class:`ConfigError`) when the warehouse cannot be read: for DuckDB, the file
    must exist and open read-only; for PostgreSQL, the server must answer and take the login."""
    if not settings.is_duckdb:
        check_database(settings.warehouse_url, "warehouse", SETTING)
        return
    database = settings.warehouse_url.database
    if not database or database == ":memory:":
        raise ConfigError(
            f"an in-memory DuckDB warehouse holds nothing to read: name the warehouse file in {SETTING}"
        )
    path = settings.duckdb_path
    if path.is_dir():
        raise ConfigError(f"the DuckDB warehouse {path} is a folder: name the warehouse file in {SETTING}")
    if not path.exists():
        raise ConfigError(
            f"no DuckDB warehouse at {path}: run `unionwh run` first to build it, or fix {SETTING}"
        )
    engine = _duckdb_engine(settings)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        kind = classify(exc)
        if kind == "busy":
            raise WarehouseInUse(LOCKED) from None
        if kind == "file":
            raise ConfigError(
                f"{path} is not a DuckDB warehouse or cannot be read ({_reason(exc)}): fix "
                f"{SETTING} or the file's permissions"
            ) from None
        raise ConfigError(f"cannot open the DuckDB warehouse {path} read-only ({_reason(exc)})") from None
    finally:
        engine.dispose()


def readonly_engine(settings: Settings, snapshot_note: Callable[[str], None] | None = None) -> Engine:
    """An engine that only reads (checked first by :func:`check_readable_warehouse`).
    ``snapshot_note``: a DuckDB warehouse that a run holds is read through its marts snapshot
    instead (flows/warehouse/snapshot.py), when there is one; the function is told which."""
    try:
        check_readable_warehouse(settings)
    except WarehouseInUse:
        snap = settings.marts_snapshot_path
        if snapshot_note is None or snap is None or not snap.is_file():
            raise
        engine = _duckdb_engine(settings, snap)
        try:
            published = snapshot.info(engine)
        except DBAPIError:
            engine.dispose()
            raise WarehouseInUse(LOCKED) from None
        when = f", published {published.published_at:%Y-%m-%d %H:%M}" if published is not None else ""
        snapshot_note(
            f"note: the warehouse is in use by a run; reading the marts snapshot {snap} "
            f"(run {published.run_id if published is not None else '?'}{when})"
        )
        return engine
    if settings.is_duckdb:
        return _duckdb_engine(settings)
    return sa.create_engine(
        settings.warehouse_url,
        poolclass=sa.pool.NullPool,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": "-c default_transaction_read_only=on",
        },
    )


@contextlib.contextmanager
def reading(settings: Settings, snapshot_note: Callable[[str], None] | None = None) -> Iterator[Engine]:
    """The read-only engine for a block (``snapshot_note``: :func:`readonly_engine`); a database
    error inside it ends as one line."""
    engine = readonly_engine(settings, snapshot_note)
    try:
        yield engine
    except DBAPIError as exc:
        kind = classify(exc)
        if kind == "busy" and settings.is_duckdb:
            raise UnionWHError(LOCKED) from exc
        if kind in TRANSIENT_KINDS:
            raise UnionWHError(
                f"lost the warehouse {settings.safe_warehouse()} while reading it "
                f"({safe_error_text(exc)}): try again"
            ) from exc
        raise UnionWHError(
            f"cannot read the warehouse {settings.safe_warehouse()} ({safe_error_text(exc)}): "
            "has `unionwh run` built it?"
        ) from exc
    finally:
        engine.dispose()


def require_ledger(engine: Engine, settings: Settings, version_needed: int = LEDGER_VERSION) -> int:
    """The warehouse's schema version; refuses one without the run ledger, or older than
    ``version_needed`` (never created or upgraded here: a read command does not migrate)."""
    with engine.connect() as conn:
        version = migrations.current_version(conn)
    if version == 0:
        raise ConfigError(
            f"{settings.safe_warehouse()} is not a unionwh warehouse, or no run has written to it "
            f"yet (no ops tables): run `unionwh run` first, or fix {SETTING}"
        )
    if version < version_needed:
        raise ConfigError(
            f"the warehouse's schema is version {version}, older than this unionwh's "
            f"({migrations.LATEST}): run `unionwh warehouse upgrade` (or `unionwh run`) first"
        )
    return version


def span(years: list[int]) -> str:
    """Years as runs: ``2011–2015, 2018, 2020–2021`` (pure)."""
    runs: list[list[int]] = []
    for y in sorted(set(years)):
        if runs and y == runs[-1][1] + 1:
            runs[-1][1] = y
        else:
            runs.append([y, y])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)


def relation_exists(engine: Engine, relation: str) -> bool:
    """Whether ``schema.table`` is there (a table or a view)."""
    schema, name = relation.split(".")
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": schema, "t": name},
            ).scalar()
        )


def report_years(engine: Engine) -> list[int]:
    """The years the figures mart holds (every year a date of the data falls in)."""
    if not relation_exists(engine, FIGURES_RELATION):
        raise UnionWHError(
            f"the warehouse has no figures mart ({FIGURES_RELATION}): run `unionwh run` first "
            "(a run with --load-only does not build it)"
        )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT DISTINCT report_year FROM {FIGURES_RELATION} ORDER BY 1")).all()
    return [int(r[0]) for r in rows]


def require_year(engine: Engine, year: int) -> None:
    """Refuse a year the warehouse has no data for, naming the years it has."""
    years = report_years(engine)
    if year in years:
        return
    if not years:
        raise UnionWHError(
            f"no data for {year} in the warehouse: it has no figures for any year yet; "
            "run `unionwh run` first"
        )
    raise UnionWHError(
        f"no data for {year} in the warehouse: years with data are {span(years)}: choose one with --year"
    )
