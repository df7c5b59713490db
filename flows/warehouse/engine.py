"""SQLAlchemy engines for the warehouse and the members database."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from flows.dbcheck import sqlite_read_only
from flows.errors import ConfigError
from flows.settings import Settings

from . import migrations


def warehouse_engine(settings: Settings) -> Engine:
    url = settings.warehouse_url
    if settings.is_duckdb:
        path = settings.duckdb_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if url.database not in (None, "", ":memory:") and not path.exists():
            create_private_duckdb(path)
        # duckdb-engine warns about its own reflection caveats; they do not apply to us.
        warnings.filterwarnings("ignore", module="duckdb_engine")
        engine = sa.create_engine(
            url,
            poolclass=sa.pool.NullPool,
            connect_args={"config": {"memory_limit": settings.duckdb_memory_limit}},
        )
        sa.event.listen(engine, "connect", lambda *_: _private_wal(path))
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_private_duckdb(path: Path) -> None:
    """Create an empty DuckDB database at ``path`` readable by its owner only (0600), whatever the
    process umask: the warehouse holds raw personal data, like ``pii.key`` next to it. DuckDB
    creates files 0666 minus the umask and refuses an empty file it did not write, so the
    database is made in a private (0700) scratch folder beside it, set to 0600, then linked into
    place: no other user can open it between its creation and its chmod. The CLI's umask 0o077
    (flows/cli.py) covers the ``.wal`` DuckDB writes next to it; :func:`_private_wal` is for
    library use."""
    import duckdb  # deferred: duckdb (~0.1 s), only a new DuckDB warehouse (not PostgreSQL) needs it

    scratch = Path(tempfile.mkdtemp(prefix=".unionwh-new-", dir=path.parent))
    try:
        fresh = scratch / path.name
        duckdb.connect(str(fresh)).close()
        fresh.chmod(0o600)
        try:
            os.link(fresh, path)
        except FileExistsError:
            pass  # another process created it at the same moment: theirs stands
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _private_wal(path: Path) -> None:
    """A ``.wal`` left by an earlier process (crash, or library use without the CLI's umask)
    becomes 0600 when the warehouse is opened."""
    wal = path.with_name(path.name + ".wal")
    with contextlib.suppress(OSError):
        if wal.stat().st_mode & 0o077:
            wal.chmod(0o600)


def members_engine(url: URL | None) -> Engine:
    """The members database, only ever read: a SQLite file is opened read-only, so a path that
    names no file is an error instead of an empty database created in its place."""
    if url is None:
        raise ConfigError("no members database: set UNIONWH_MEMBERS_URL or run `unionwh demo` first")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return sqlite_read_only(url)
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def init_warehouse(engine: Engine) -> list[migrations.Migration]:
    """Create or upgrade the raw and ops schemas and tables (versioned migrations); returns the
    migrations applied."""
    return migrations.upgrade(engine)
