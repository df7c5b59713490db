"""The migrations are frozen SQL files (flows/warehouse/migrations/), never generated from code.

Two checks keep them honest without the code that once generated them:

- applying every migration to a fresh DuckDB file and a fresh PostgreSQL database gives raw
  tables whose columns and types are those the contract (flows/schema.py ``TABLES``) and the
  loader (lineage and pseudonym columns, flows/warehouse/ddl.py) expect: a contract change
  without a new migration fails here, naming the table and column;
- the released files are history: their SHA-256 sums are kept in
  ``flows/warehouse/migrations/CHECKSUMS``, and an edited, removed or unlisted file fails here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.errors import ConfigError
from flows.schema import TABLES, Column, Table
from flows.warehouse import appendonly, migrations
from flows.warehouse.ddl import META_DDL, SQL_TYPES, pseudonym_columns
from tests.support import throwaway_postgres

ADVICE = (
    "add a migration (a new flows/warehouse/migrations/NNNN_<name>.sql) that brings existing "
    "warehouses to the contract; never edit a released migration"
)


def _type(data_type: str, precision: int | None, scale: int | None) -> str:
    """A column type as information_schema reports it, in the spelling of :data:`SQL_TYPES`."""
    t = data_type.upper()
    if t in ("NUMERIC", "DECIMAL") or t.startswith("DECIMAL("):
        return f"DECIMAL({precision},{scale})"
    return {"CHARACTER VARYING": "VARCHAR", "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP"}.get(t, t)


def expected_columns(t: Table) -> dict[str, tuple[str, bool]]:
    """name -> (type, nullable) of a raw table: contract columns, lineage, pseudonyms."""
    cols = {c.name: (SQL_TYPES[c.kind].replace(" ", ""), True) for c in t.all_columns}
    cols.update({name: (ddl.split()[0], "NOT NULL" not in ddl) for name, ddl in META_DDL})
    cols.update({name: (typ, True) for name, typ in pseudonym_columns(t)})
    return cols


def contract_problems(engine: Engine, tables: Iterable[Table] = TABLES) -> list[str]:
    """How the raw tables of a migrated warehouse differ from what the contract says they are."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable "
                "FROM information_schema.columns WHERE table_schema = 'raw'"
            )
        ).all()
    actual: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, data_type, precision, scale, nullable in rows:
        actual.setdefault(table, {})[column] = (_type(data_type, precision, scale), nullable == "YES")
    problems: list[str] = []
    tables = list(tables)
    for t in tables:
        have = actual.get(t.raw_table)
        if have is None:
            problems.append(f"raw.{t.raw_table}: in the contract, but no migration creates it")
            continue
        want = expected_columns(t)
        for name, (typ, nullable) in want.items():
            if name not in have:
                problems.append(f"raw.{t.raw_table}.{name}: expected {typ}, but no migration creates it")
            elif have[name] != (typ, nullable):
                problems.append(
                    f"raw.{t.raw_table}.{name}: the migrations make it {have[name][0]}"
                    f"{'' if have[name][1] else ' NOT NULL'}, the contract says {typ}"
                    f"{'' if nullable else ' NOT NULL'}"
                )
        problems += [
            f"raw.{t.raw_table}.{name}: made by a migration, not in the contract"
            for name in have
            if name not in want
        ]
    known = {t.raw_table for t in tables} | {"welfare__workbooks"}
    problems += [
        f"raw.{name}: made by a migration, no longer in the contract" for name in actual if name not in known
    ]
    return problems


def _assert_matches_contract(engine: Engine) -> None:
    problems = contract_problems(engine)
    assert not problems, (
        "the migrated raw tables differ from the contract (flows/schema.py):\n  "
        + "\n  ".join(problems)
        + f"\n{ADVICE}"
    )


@pytest.mark.unit
def test_fresh_duckdb_matches_the_contract(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}", poolclass=sa.pool.NullPool)
    try:
        assert [m.version for m in migrations.upgrade(engine)] == list(range(1, migrations.LATEST + 1))
        _assert_matches_contract(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_fresh_postgresql_matches_the_contract() -> None:
    with throwaway_postgres("unionwh_frozen") as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            assert [m.version for m in migrations.upgrade(engine)] == list(range(1, migrations.LATEST + 1))
            _assert_matches_contract(engine)
            with engine.connect() as conn:
                triggered = set(
                    conn.execute(
                        sa.text(
                            "SELECT n.nspname || '.' || c.relname FROM pg_trigger t "
                            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE t.tgname = 'unionwh_append_only'"
                        )
                    ).scalars()
                )
            missing = sorted(set(appendonly.append_only_tables()) - triggered)
            assert not missing, f"append-only tables without their trigger: {missing}; {ADVICE}"
        finally:
            engine.dispose()


@pytest.mark.unit
def test_the_check_names_a_contract_change_without_its_migration(tmp_path: Path) -> None:
    """A contract with one more column and one retyped column than the migrations made."""
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}", poolclass=sa.pool.NullPool)
    try:
        migrations.upgrade(engine)
        honours = next(t for t in TABLES if t.raw_table == "events__honours")
        year = honours.column("year")
        changed = dataclasses.replace(
            honours,
            columns=tuple(dataclasses.replace(c, kind="text") if c is year else c for c in honours.columns)
            + (Column("citation", "表彰文号", "text", required=False),),
        )
        problems = contract_problems(engine, [changed if t is honours else t for t in TABLES])
    finally:
        engine.dispose()
    assert problems == [
        "raw.events__honours.year: the migrations make it BIGINT, the contract says VARCHAR",
        "raw.events__honours.citation: expected VARCHAR, but no migration creates it",
    ]


# --- the released files are history -------------------------------------------------------------------------


def checksum_problems(folder: Path) -> list[str]:
    """How the migration files in ``folder`` differ from its ``CHECKSUMS`` (``sha256sum`` format)."""
    listed: dict[str, str] = {}
    for line in (folder / "CHECKSUMS").read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            listed[name.lstrip("*")] = digest
    problems: list[str] = []
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: a released migration is gone; put it back as it was")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(
                f"{name}: a released migration was edited; restore it (git checkout) and put the "
                "change in a new migration file instead"
            )
    problems += [
        f"{path.name}: not in CHECKSUMS; when the migration is released, append its line: "
        f"cd {folder} && sha256sum {path.name} >> CHECKSUMS"
        for path in sorted(folder.glob("*.sql"))
        if path.name not in listed
    ]
    return problems


@pytest.mark.unit
def test_released_migrations_are_unchanged() -> None:
    problems = checksum_problems(migrations.MIGRATIONS_DIR)
    assert not problems, "flows/warehouse/migrations/ differs from its CHECKSUMS:\n  " + "\n  ".join(problems)


@pytest.mark.unit
def test_every_migration_file_is_a_listed_migration() -> None:
    files = sorted(p.name for p in migrations.MIGRATIONS_DIR.glob("*.sql"))
    used = sorted(f for m in migrations.MIGRATIONS for f in (m.file, m.postgresql_file) if f)
    assert files == used
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, migrations.LATEST + 1))
    assert all(m.description and m.statements_for("postgresql") for m in migrations.MIGRATIONS)


@pytest.mark.unit
def test_the_check_names_an_edited_or_unlisted_file(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, folder)
    first = migrations.MIGRATIONS[0].file
    with (folder / first).open("a", encoding="utf-8") as edited:
        edited.write("\n-- a note\n")
    (folder / "0099_later.sql").write_text("-- description:\n--   later\nSELECT 1;\n", encoding="utf-8")
    problems = checksum_problems(folder)
    assert len(problems) == 2
    assert problems[0].startswith(f"{first}: a released migration was edited")
    assert problems[1].startswith("0099_later.sql: not in CHECKSUMS")


# --- reading the files --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_split_sql_keeps_quoted_and_dollar_bodies_whole() -> None:
    text = """-- a header; with a semicolon
CREATE TABLE "a;b" (x VARCHAR DEFAULT 'it''s; fine');  -- trailing note
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'no; never';
END $$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
"""
    assert migrations.split_sql(text) == [
        """CREATE TABLE "a;b" (x VARCHAR DEFAULT 'it''s; fine')""",
        (
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n  RAISE EXCEPTION 'no; never';\nEND $$"
        ),
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$",
    ]
    with pytest.raises(ConfigError, match="no closing ';'"):
        migrations.split_sql("SELECT 1")
    with pytest.raises(ConfigError, match=r"unterminated \$\$ body"):
        migrations.split_sql("SELECT $$ 1;")


@pytest.mark.unit
def test_discover_refuses_a_gap_in_the_numbers(tmp_path: Path) -> None:
    for name in ("0001_a.sql", "0003_c.sql"):
        (tmp_path / name).write_text(f"-- description:\n--   {name}\nSELECT 1;\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[1, 3\] are not 1, 2"):
        migrations.discover(tmp_path)
