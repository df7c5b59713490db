"""Versioned schema migrations on real DuckDB files and the real PostgreSQL server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.cli import main
from flows.errors import ConfigError
from flows.schema import TABLES
from flows.warehouse import migrations
from flows.warehouse.ddl import personal_columns
from tests.support import Env, create_database, drop_database, postgres_or_skip

HONOUR = (
    "INSERT INTO raw.events__honours (honour_id, year, honour, level, recipient, _load_id, _source, "
    "_file_name, _file_sha256, _delivery_date, _row_number) VALUES "
    "('H1', 2021, '优秀志愿者', '区级', '张三', 'l', 'events', 'f', 'h', DATE '2021-12-31', 2)"
)


def columns(engine: Engine, schema: str, table: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                "AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        )
        return [r[0] for r in rows]


def versions(engine: Engine) -> list[int]:
    return [v for v, _, _ in migrations.history(engine)]


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Engine]:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}", poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def pg() -> Iterator[Engine]:
    server = postgres_or_skip()
    name = f"unionwh_migr_{secrets.token_hex(4)}"
    create_database(server, name)
    engine = sa.create_engine(f"{server}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(server, name)


@pytest.mark.unit
def test_fresh_warehouse_gets_every_version_once(duck: Engine) -> None:
    every = [m.version for m in migrations.MIGRATIONS]
    assert every == list(range(1, migrations.LATEST + 1))
    assert [m.version for m in migrations.upgrade(duck)] == every
    assert migrations.upgrade(duck) == []
    assert versions(duck) == every
    for t in TABLES:
        cols = columns(duck, "raw", t.raw_table)
        assert cols[: len(t.all_columns)] == [c.name for c in t.all_columns]
        assert cols[len(t.all_columns) + 6 :] == [f"{c}_pseudonym" for c in personal_columns(t)]


def _upgrades_in_place(engine: Engine) -> None:
    assert [m.version for m in migrations.upgrade(engine, to=1)] == [1]
    assert "recipient_pseudonym" not in columns(engine, "raw", "events__honours")
    with engine.begin() as conn:
        conn.exec_driver_sql(HONOUR)
    assert [m.version for m in migrations.upgrade(engine)] == list(range(2, migrations.LATEST + 1))
    assert columns(engine, "raw", "events__honours")[-1] == "recipient_pseudonym"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT honour_id, recipient, recipient_pseudonym FROM raw.events__honours"
        ).all()
    assert [tuple(r) for r in rows] == [
        ("H1", "张三", None)
    ]  # the nightly run's backfill fills it (test_pii)
    assert versions(engine) == list(range(1, migrations.LATEST + 1))


@pytest.mark.unit
def test_version_1_warehouse_upgrades_in_place_duckdb(duck: Engine) -> None:
    _upgrades_in_place(duck)


@pytest.mark.postgres
def test_version_1_warehouse_upgrades_in_place_postgres(pg: Engine) -> None:
    _upgrades_in_place(pg)


@pytest.mark.unit
def test_warehouse_from_before_versioning_is_adopted(duck: Engine) -> None:
    """A warehouse made by the unversioned init (the same DDL, no ops.schema_migrations)."""
    with duck.begin() as conn:
        for m in migrations.MIGRATIONS:
            for stmt in m.statements():
                conn.exec_driver_sql(stmt)
        conn.exec_driver_sql(HONOUR)
    with duck.connect() as conn:
        assert migrations.current_version(conn) == 0
    assert [m.version for m in migrations.upgrade(duck)] == list(range(1, migrations.LATEST + 1))
    with duck.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw.events__honours").scalar() == 1


@pytest.mark.unit
def test_newer_warehouse_is_refused(duck: Engine) -> None:
    migrations.upgrade(duck)
    with duck.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO ops.schema_migrations VALUES (99, 'from the future', TIMESTAMP '2030-01-01')"
        )
    with pytest.raises(ConfigError, match="version 99, newer than this unionwh knows"):
        migrations.upgrade(duck)


@pytest.mark.unit
def test_cli_upgrade_lists_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "c.duckdb")).close()  # an empty database: upgrade never creates one
    with Env(UNIONWH_WAREHOUSE=f"duckdb:///{tmp_path / 'c.duckdb'}"):
        assert main(["warehouse", "upgrade"]) == 0
        out = capsys.readouterr().out
        assert "schema version 1," in out and "schema version 3," in out
        assert out.count("(applied now)") == migrations.LATEST
        assert main(["warehouse", "upgrade"]) == 0
        assert "(applied now)" not in capsys.readouterr().out
