"""SQLAlchemy engines for the warehouse and the members database."""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from flows.errors import ConfigError
from flows.settings import Settings

from . import migrations


def warehouse_engine(settings: Settings) -> Engine:
    url = settings.warehouse_url
    if settings.is_duckdb:
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        # duckdb-engine warns about its own reflection caveats; they do not apply to us.
        warnings.filterwarnings("ignore", module="duckdb_engine")
        return sa.create_engine(url, poolclass=sa.pool.NullPool,
                                connect_args={"config": {"memory_limit": settings.duckdb_memory_limit}})
    return sa.create_engine(url, pool_pre_ping=True)


def members_engine(url: URL | None) -> Engine:
    if url is None:
        raise ConfigError("no members database: set UNIONWH_MEMBERS_URL or run `unionwh demo` first")
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def init_warehouse(engine: Engine) -> list[migrations.Migration]:
    """Create or upgrade the raw and ops schemas and tables (versioned migrations); returns the
    migrations applied."""
    return migrations.upgrade(engine)
