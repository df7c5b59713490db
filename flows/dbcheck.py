"""Reaching a database, as every part of unionwh does it: one connection with a short timeout,
and an error sorted into what it means for the user (:func:`classify`): a refused login, an
unknown database or host name, a missing file, or a refused, lost or timed-out connection — only
the last kinds are worth another try (:func:`db_error_is_transient`). flows/preflight.py checks a
run's databases with it before Prefect starts; the warehouse's read-only opening and the run's
retries use it too. Nothing here imports Prefect or the warehouse.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL

from flows.errors import ConfigError, TransientError

CONNECT_TIMEOUT_SECONDS = 5
"""How long a check waits for a database server to answer (libpq's minimum is 2)."""

Kind = Literal["auth", "database", "host", "file", "unreachable", "timeout", "busy", "lost", "other"]
TRANSIENT_KINDS: frozenset[str] = frozenset({"unreachable", "timeout", "busy", "lost"})
"""Worth another try: refused (nothing listening, too many connections), timed out, busy (a
lock held by another process or transaction, a deadlock) or lost (dropped, server restarted)."""

# MySQL/MariaDB client and server error codes (pymysql's args[0]).
_MYSQL_KINDS: dict[int, Kind] = {
    1044: "auth",
    1045: "auth",
    1698: "auth",
    1130: "auth",
    1129: "auth",
    1251: "auth",
    1862: "auth",
    2059: "auth",
    1227: "auth",
    1142: "auth",  # denied, no such user, host not allowed/blocked, plugin
    1049: "database",  # unknown database
    2002: "unreachable",
    2003: "unreachable",
    1040: "unreachable",  # refused, too many connections
    1053: "lost",
    0: "lost",  # server shutdown; pymysql's InterfaceError(0, "") on a dropped connection
    2006: "lost",
    2013: "lost",
    2055: "lost",
    1927: "lost",
    4031: "lost",  # gone away, lost, killed
    1205: "busy",
    3024: "timeout",
    1213: "busy",  # lock wait timeout, query timeout, deadlock
}
# PostgreSQL SQLSTATEs (psycopg ``sqlstate``, psycopg2 ``pgcode``); class 28 and 08 by prefix below.
_PG_KINDS: dict[str, Kind] = {
    "3D000": "database",
    "57P01": "lost",
    "57P02": "lost",
    "57P03": "unreachable",
    "53300": "unreachable",
    "57014": "timeout",
    "55P03": "busy",
    "40001": "busy",
    "40P01": "busy",
}
_UNKNOWN_HOST = re.compile(
    r"failed to resolve host|could not translate host name|name or service not known|"
    r"nodename nor servname|no address associated with hostname"
)
# A connection refused by PostgreSQL before it is made carries no SQLSTATE (libpq gives only its
# text), nor does SQLite's or DuckDB's: these phrases decide, checked in this order.
_TEXT_KINDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (
        "auth",
        re.compile(
            r"password authentication failed|authentication failed|no pg_hba\.conf entry|"
            r"role \"[^\"]*\" does not exist|no password supplied|access denied|"
            r"permission denied for database"
        ),
    ),
    ("database", re.compile(r"database \"[^\"]*\" does not exist|unknown database")),
    ("unreachable", re.compile(r"temporary failure in name resolution")),  # DNS itself down: try again
    ("host", _UNKNOWN_HOST),
    (
        "file",
        re.compile(
            r"unable to open database file|cannot open file|no such file or directory|"
            r"file is not a database|not a valid duckdb database file"
        ),
    ),
    ("timeout", re.compile(r"timeout expired|timed out")),
    # another process has the DuckDB file open (`unionwh status` from a monitor), SQLite's busy lock
    ("busy", re.compile(r"could not set lock on file|conflicting lock|database is locked")),
    (
        "unreachable",
        re.compile(
            r"connection refused|could not connect|can't connect|is the server running|"
            r"the database system is (starting up|shutting down)|"
            r"too many (clients|connections)"
        ),
    ),
    (
        "lost",
        re.compile(
            r"server closed the connection|terminating connection|connection is closed|"
            r"connection already closed|lost connection|server has gone away|connection reset|"
            r"broken pipe|ssl syscall error|consuming input failed|connection was lost"
        ),
    ),
)


def classify(exc: BaseException) -> Kind:
    """What a database error means for the user: a refused login, an unknown database, an
    unknown host name, a missing or broken database file, a server not reachable (refused or
    busy), a timeout, a lost connection — or something else (a statement, the data, a bug)."""
    if isinstance(exc, sa.exc.DisconnectionError):
        return "lost"
    orig = getattr(exc, "orig", None)
    driver: BaseException = orig if isinstance(orig, BaseException) else exc
    code = driver.args[0] if driver.args and type(driver).__module__.startswith("pymysql") else None
    if isinstance(code, int):
        kind = _MYSQL_KINDS.get(code)
        if kind == "unreachable" and _UNKNOWN_HOST.search(str(driver).lower()):
            return "host"  # 2003 "Can't connect … (Name or service not known)"
        if kind is not None:
            return kind
    sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        if sqlstate.startswith("28"):
            return "auth"
        if sqlstate.startswith("08"):
            return "lost"
        if sqlstate in _PG_KINDS:
            return _PG_KINDS[sqlstate]
        return "other"  # a SQLSTATE outside these is a statement or data error
    if isinstance(driver, ConnectionRefusedError):
        return "unreachable"
    if isinstance(driver, TimeoutError):
        return "timeout"
    if isinstance(driver, ConnectionError):
        return "lost"
    text = str(driver).lower()
    for kind, pattern in _TEXT_KINDS:
        if pattern.search(text):
            return kind
    return "other"


def db_error_is_transient(exc: BaseException) -> bool:
    """A database error worth retrying: the connection was refused, lost or timed out."""
    return classify(exc) in TRANSIENT_KINDS


TRANSIENT_DB_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)
"""The SQLAlchemy error classes that *may* be transient; :func:`is_transient` then asks the
driver's error which one it is (a wrong password is an OperationalError too)."""


def is_transient(exc: BaseException | None) -> bool:
    """Worth retrying: a file still being written, a database that dropped, refused or timed out
    the connection. Never a data or configuration error (those fail the same way every time): a
    refused login, an unknown database or host name, a missing database file, a bad statement —
    retrying those only delays the one-line error by a minute (:func:`classify` tells them apart)."""
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, TRANSIENT_DB_ERRORS):  # (never a ProgrammingError, DataError or IntegrityError)
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True  # the dialect saw a disconnect
        return db_error_is_transient(exc)
    return False


# ------------------------------------------------------------------ the checks
def _reason(exc: BaseException, url: URL) -> str:
    """The driver's own words, one short line, without libpq's "connection to server … failed:"
    preamble and never the password (no driver prints it; this makes sure)."""
    orig = getattr(exc, "orig", None)
    driver = orig if isinstance(orig, BaseException) else exc
    code = driver.args[0] if driver.args and type(driver).__module__.startswith("pymysql") else None
    text = str(driver.args[1]) if isinstance(code, int) and len(driver.args) > 1 else str(driver)
    if not isinstance(code, int):  # libpq: "connection to server at … failed: FATAL:  <reason>\n\tHint"
        text = re.sub(r"^.*failed: (FATAL: )?", "", " ".join(text.strip().split("\n")[0].split()))
    text = " ".join(text.split())
    if url.password:
        text = text.replace(str(url.password), "***")
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"error {code}: {text}" if isinstance(code, int) else text


def _connect_args(url: URL) -> dict[str, object]:
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb", "postgresql"):
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return {}


def check_database(url: URL, what: str, setting: str) -> None:
    """Connect once and run one query; a failure is a :class:`ConfigError` naming the server
    (host:port, user, database), what is wrong and ``setting``, never the password."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = Path(url.database or "")
        if path.is_dir():
            raise ConfigError(
                f"the {what} file {path} is a folder, not a database file: fix the path in {setting}"
            )
        if not url.database or url.database == ":memory:" or not path.is_file():
            raise ConfigError(f"the {what} file {path} does not exist: fix the path in {setting}")
    host = url.host or "localhost"
    port = url.port or {"mysql": 3306, "mariadb": 3306, "postgresql": 5432}.get(backend)
    where = f"{host}:{port}" if port else host
    user = f"user {url.username}" if url.username else "no user"
    engine = (
        sqlite_read_only(url)
        if backend == "sqlite"
        else sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=_connect_args(url))
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master" if backend == "sqlite" else "SELECT 1")
    except sa.exc.DBAPIError as exc:
        kind, reason = classify(exc), _reason(exc, url)
        if backend == "sqlite":
            raise ConfigError(
                f"the {what} file {url.database} cannot be read ({reason}): fix the path in {setting}"
            ) from None
        if kind == "auth":
            raise ConfigError(
                f"the {what} at {where} refused the login of {user} ({reason}): fix the user "
                f"or password in {setting}"
            ) from None
        if kind == "database":
            raise ConfigError(
                f"the {what} server at {where} has no database {url.database!r}: create it, or "
                f"fix the database name in {setting}"
            ) from None
        if kind == "host":
            raise ConfigError(
                f"the {what} host {host!r} is unknown ({reason}): fix the host in {setting}"
            ) from None
        if kind in TRANSIENT_KINDS:
            raise ConfigError(
                f"cannot reach the {what} at {where} ({reason}): is the server running and "
                f"reachable from here? Else fix the host or port in {setting}"
            ) from None
        raise ConfigError(
            f"the {what} at {where} ({user}) cannot be used ({reason}): check {setting}"
        ) from None
    finally:
        engine.dispose()


def sqlite_read_only(url: URL) -> sa.Engine:
    """An engine on a SQLite file opened read-only (a ``file:…?mode=ro`` URI): a missing file is
    an error, never created empty (the members database is the platform's: only ever read)."""
    uri = Path(url.database or "").resolve().as_uri() + "?mode=ro"
    return sa.create_engine(
        "sqlite://",
        poolclass=sa.pool.NullPool,
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
    )
