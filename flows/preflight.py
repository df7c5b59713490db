"""Checks before a run starts Prefect: configuration a run cannot work without fails here, in
a second, as one line naming what to fix — not after the temporary server started, three
retries and a minute later, as a traceback.

``unionwh run`` and ``unionwh backfill`` call :func:`check_before_run`: the pseudonymisation
key of a PostgreSQL warehouse (or a configured one), the warehouse (PostgreSQL: one connection;
DuckDB: its folder can be written, an existing file is a DuckDB database), the members database
(one connection, a short timeout; SQLite read-only, never created) and the landing zone (it
exists and holds a delivery: :func:`check_landing`). ``unionwh warehouse`` calls
:func:`check_warehouse` (``init``) or :func:`check_existing_warehouse` (``upgrade``,
``rotate-key``: a warehouse to upgrade or re-key is never created). :func:`classify` sorts a
database error into what it means for the user; the run's retries use it too
(:func:`db_error_is_transient`): only a refused, lost or timed-out connection is worth another
try, never a refused login, an unknown database or host name, or a missing database file.
Nothing here imports Prefect.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from flows import schema
from flows.dbcheck import check_database
from flows.errors import ConfigError
from flows.settings import Settings
from flows.sources import common
from flows.warehouse import pii


def check_key(settings: Settings) -> None:
    """A PostgreSQL warehouse needs ``UNIONWH_PII_KEY``; a configured key must be long enough.
    (A DuckDB warehouse without one gets its ``pii.key`` from the run.)"""
    configured = settings.pii_key is not None and settings.pii_key.get_secret_value() != ""
    if settings.is_duckdb and not configured:
        return
    pii.resolve_key(settings)


WAREHOUSE_SETTING = "UNIONWH_WAREHOUSE (or --warehouse)"
_DUCKDB_MAGIC = (8, b"DUCK")
"""Where every DuckDB database file says what it is (bytes 8-11 of its header)."""


def _check_duckdb_file(path: Path) -> None:
    """An existing warehouse file is a DuckDB database (read from its header, not opened: a run
    holding it must not make this check fail; the run waits for its lock)."""
    if path.is_dir():
        raise ConfigError(f"the DuckDB warehouse {path} is a folder: name a file in {WAREHOUSE_SETTING}")
    if not path.exists():
        return
    offset, magic = _DUCKDB_MAGIC
    try:
        with path.open("rb") as fh:
            head = fh.read(offset + len(magic))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the DuckDB warehouse {path} ({exc.strerror}): fix its permissions or "
            f"{WAREHOUSE_SETTING}"
        ) from None
    if head[offset:] != magic:
        raise ConfigError(
            f"{path} is not a DuckDB database: fix {WAREHOUSE_SETTING} (or name a path with no "
            "file: a new warehouse is created there)"
        )


def check_warehouse(settings: Settings) -> None:
    """PostgreSQL: the server answers and takes the login. DuckDB: the file's folder exists or
    can be made (the run creates the file, mode 0600); a file already there is a DuckDB database."""
    if not settings.is_duckdb:
        check_database(settings.warehouse_url, "warehouse", WAREHOUSE_SETTING)
        return
    path = settings.duckdb_path
    _check_duckdb_file(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot create the DuckDB warehouse {path}: {folder} is not a writable folder; "
            f"fix {WAREHOUSE_SETTING} or the folder's permissions"
        )


def check_existing_warehouse(settings: Settings, action: str) -> None:
    """For ``warehouse upgrade`` and ``rotate-key``: the warehouse exists already (a DuckDB file
    is never created by them) and can be written; PostgreSQL as :func:`check_warehouse`."""
    if not settings.is_duckdb:
        check_database(settings.warehouse_url, "warehouse", WAREHOUSE_SETTING)
        return
    path = settings.duckdb_path
    _check_duckdb_file(path)
    if not path.exists():
        raise ConfigError(
            f"no DuckDB warehouse at {path}: nothing to {action}; fix {WAREHOUSE_SETTING}, or "
            "create it with `unionwh warehouse init` or `unionwh run`"
        )
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the DuckDB warehouse {path} (or its folder) cannot be written: fix the "
            f"permissions or {WAREHOUSE_SETTING}"
        )


def check_members(settings: Settings) -> None:
    """The members database answers and takes the login (none configured: the run skips it)."""
    url = settings.members_database_url
    if url is not None:
        check_database(url, "members database", "UNIONWH_MEMBERS_URL (or --members-url)")


LANDING_SETTING = "UNIONWH_LANDING (or --landing)"
Window = tuple[date | None, date | None]


def delivery_dates(landing: Path, window: Window = (None, None)) -> list[date]:
    """The distinct dates of the delivery folders (``<source>/<YYYY-MM-DD>/`` holding a file) of
    the file sources within ``window``, in order (as flows/nightly.py's, without Prefect)."""
    lo, hi = window
    return sorted(
        {
            d.delivery_date
            for s in schema.file_sources()
            for d in common.discover(landing, s)
            if d.delivery_date is not None
            and (lo is None or d.delivery_date >= lo)
            and (hi is None or d.delivery_date <= hi)
        }
    )


def check_landing(settings: Settings, window: Window | None = None) -> None:
    """The landing zone exists, can be read and holds a delivery: a file in a
    ``<source>/<YYYY-MM-DD>/`` folder of a file source, or a members database (``members_url``,
    or ``<landing>/members.sqlite``), so an empty landing zone is valid when the members database
    is configured. ``window`` (a backfill's --from/--to): a delivery folder dated within it."""
    landing = settings.landing_dir
    if not landing.exists():
        raise ConfigError(
            f"the landing zone {landing} does not exist: fix {LANDING_SETTING}"
            + (" (for a load of the members database only, create it empty)" if settings.members_url else "")
        )
    if not landing.is_dir():
        raise ConfigError(f"the landing zone {landing} is not a folder: fix {LANDING_SETTING}")
    if not os.access(landing, os.R_OK | os.X_OK):
        raise ConfigError(
            f"the landing zone {landing} cannot be read (permissions): fix them or {LANDING_SETTING}"
        )
    try:
        days = delivery_dates(landing, window or (None, None))
        if window is not None and not days:
            held = delivery_dates(landing)
            there = (
                f"its deliveries are dated {held[0]}..{held[-1]}"
                if held
                else "it holds no delivery folder <source>/<YYYY-MM-DD>/"
            )
            raise ConfigError(
                f"backfill: no delivery folders dated {window[0]}..{window[1]} under {landing}: {there}"
            )
        if days or settings.members_database_url is not None:
            return
        entries = sorted(e.name + ("/" if e.is_dir() else "") for e in landing.iterdir())
    except OSError as exc:
        raise ConfigError(
            f"the landing zone {landing} cannot be read ({exc.strerror}: "
            f"{exc.filename}): fix its permissions or {LANDING_SETTING}"
        ) from None
    found = (
        f"it holds only {', '.join(entries[:4])}{' …' if len(entries) > 4 else ''}"
        if entries
        else "it is empty"
    )
    raise ConfigError(
        f"the landing zone {landing} holds no delivery ({found}): no file in a "
        f"<source>/<YYYY-MM-DD>/ folder of {', '.join(schema.file_sources())}, and no members "
        f"database ({common.MEMBERS_FILE} or UNIONWH_MEMBERS_URL); fix {LANDING_SETTING} "
        "(`unionwh demo --landing DIR` writes an example)"
    )


def check_before_run(settings: Settings, window: Window | None = None) -> None:
    """Everything a run needs that can be checked in about a second, before Prefect starts
    (``window``: a backfill's delivery dates)."""
    check_key(settings)
    check_warehouse(settings)
    check_members(settings)
    check_landing(settings, window)
