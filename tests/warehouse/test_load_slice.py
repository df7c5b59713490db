"""A slice of many batches, several tables, written in one transaction with one insert per table,
into a real DuckDB file (and PostgreSQL, which must store exactly what DuckDB stores); the
pseudonyms computed once per distinct value of a process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import faults
from flows.errors import BatchError, WarehouseWriteError
from flows.pipeline.load import check_conservation, load_slice
from flows.pipeline.state import Batch
from flows.schema import table
from flows.settings import load_settings
from flows.warehouse import pii
from flows.warehouse.ddl import personal_columns
from flows.warehouse.engine import init_warehouse, warehouse_engine
from flows.warehouse.loader import insert_frame, ledger_of_run
from tests.support import postgres_or_skip, throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("condolence", "health_checks", "relief")
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静"]
IDS = ["110101199003077777", "110101199003071234", "11010119900307123X", "440301198812120011"]


def _value(kind: str, column: str, i: int) -> str:
    if column == "name":
        return NAMES[i % len(NAMES)]
    if column == "id_card":
        return IDS[i % len(IDS)]
    return {
        "date": f"2021-03-{1 + i % 28:02d}",
        "amount": f"{100 + i}.50",
        "int": str(i),
        "bool": "true" if i % 2 else "false",
        "timestamp": f"2021-03-01 08:00:{i % 60:02d}",
    }.get(kind, f"v{i}")


def canonical(table_name: str, file_name: str, rows: range) -> pl.DataFrame:
    """Validated canonical text of a welfare table, as validation leaves it."""
    t = table("welfare", table_name)
    data: dict[str, list[object]] = {c.name: [_value(c.kind, c.name, i) for i in rows] for c in t.all_columns}
    data |= {
        "_source": ["welfare"] * len(rows),
        "_file_name": [file_name] * len(rows),
        "_file_sha256": [file_name.ljust(64, "0")[:64]] * len(rows),
        "_delivery_date": [date(2021, 4, 5)] * len(rows),
        "_row_number": [i + 2 for i in rows],
    }
    return pl.DataFrame(data)


def quarantined(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit("amount_yuan.amount").alias("rules"),
        pl.lit('[{"rule": "amount_yuan.amount"}]').alias("reasons"),
    )


def welfare_slice(files: range, rows: int = 5) -> list[Batch]:
    """Three tables of each workbook: ``rows`` loaded and one quarantined row each; one file's
    last table is rejected."""
    batches = []
    for f in files:
        name = f"welfare/2021-04-05/WS{f:02d}_2021-03.xlsx"
        for k, tn in enumerate(TABLES):
            frame = canonical(tn, name, range(f * 10 + k, f * 10 + k + rows + 1))
            b = Batch(
                "welfare",
                tn,
                name,
                name.ljust(64, "0")[:64],
                date(2021, 4, 5),
                workbook=(f"WS{f:02d}", "2021-03"),
            )
            b.frame, b.passed, b.quarantined = frame, frame.head(rows), quarantined(frame.tail(1))
            batches.append(b)
    batches[-1].error = BatchError(batches[-1].file_name, "batch.columns", "a column is missing")
    return batches


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = warehouse_engine(load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}"))
    init_warehouse(eng)
    yield eng
    eng.dispose()


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row the load writes, without timestamps, in a fixed order."""
    got = {
        f"raw.welfare__{tn}": rows(
            engine, f"SELECT * FROM raw.welfare__{tn} ORDER BY _file_name, _row_number"
        )
        for tn in TABLES
    }
    got["workbooks"] = rows(engine, "SELECT * FROM raw.welfare__workbooks ORDER BY _load_id")
    got["quarantine"] = rows(
        engine,
        "SELECT load_id, source, table_name, file_name, file_sha256, delivery_date, row_number, row_key, "
        "rules, reasons, original_values FROM ops.quarantine ORDER BY file_name, table_name, row_number",
    )
    got["ledger"] = rows(
        engine,
        "SELECT load_id, run_id, source, table_name, file_name, file_sha256, delivery_date, rows_read, "
        "rows_loaded, rows_quarantined, status, error_rule, error_message FROM ops.load_ledger "
        "ORDER BY file_name, table_name, status",
    )
    return got


@pytest.mark.unit
def test_a_slice_is_one_transaction_with_one_insert_per_table(
    engine: Engine, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    key = secrets.token_bytes(20)
    batches = welfare_slice(range(1, 7))
    statements: Counter[str] = Counter()
    commits: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO"):
            statements[statement.split()[2]] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    sa.event.listen(engine, "commit", lambda conn: commits.append(1))
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv(faults.TRACE_ENV, str(trace))
    entries = load_slice(engine, "run-1", "welfare", batches, key)
    monkeypatch.delenv(faults.TRACE_ENV)

    assert len(entries) == 18 and [e.status for e in entries].count("rejected") == 1
    assert dict(statements) == {
        "raw.welfare__condolence": 1,
        "raw.welfare__health_checks": 1,
        "raw.welfare__relief": 1,
        "ops.quarantine": 1,
        "raw.welfare__workbooks": 1,
        "ops.load_ledger": 1,
    }
    assert len(commits) == 1
    assert trace.read_text(encoding="utf-8").split() == ["load.in_transaction", "load.committed"]
    check_conservation(engine)  # every row's load id has its completed ledger entry
    got = snapshot(engine)
    assert [len(got[f"raw.welfare__{tn}"]) for tn in TABLES] == [30, 30, 25]
    assert len(got["quarantine"]) == 17 and len(got["workbooks"]) == 17 and len(got["ledger"]) == 18
    # each batch's rows carry its own load id
    by_batch = {(e.file_name, e.table_name): e.load_id for e in entries}
    for tn in TABLES:
        loaded = rows(engine, f"SELECT DISTINCT _file_name, _load_id FROM raw.welfare__{tn}")
        assert all(by_batch[(f, tn)] == load_id for f, load_id in loaded) and loaded
    # the ledger in the order the slice wrote it
    assert ledger_of_run(engine, "run-1") == sorted(entries, key=lambda e: (e.file_name, e.table_name))
    # every pseudonym is the keyed HMAC of its value
    for tn in TABLES:
        for col in personal_columns(table("welfare", tn)):
            pairs = rows(engine, f"SELECT {col}, {col}_pseudonym FROM raw.welfare__{tn}")
            assert pairs and all(p == pii.pseudonym(key, v) for v, p in pairs)


SLICE_SCRIPT = """
import sys
from flows.pipeline.load import load_slice
from flows.settings import load_settings
from flows.warehouse.engine import init_warehouse, warehouse_engine
from tests.warehouse.test_load_slice import welfare_slice
engine = warehouse_engine(load_settings(warehouse=sys.argv[1]))
init_warehouse(engine)
load_slice(engine, "run-1", "welfare", welfare_slice(range(1, 5)), b"k" * 20)
"""


def load_in_a_process(url: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", SLICE_SCRIPT, url],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        check=False,
    )


@pytest.mark.unit
def test_a_load_killed_inside_its_transaction_leaves_nothing_of_any_batch(
    engine: Engine, tmp_path: Path
) -> None:
    """SIGKILL at the last ``load.in_transaction`` an undisturbed load of the slice passes
    (every table of every batch written, not committed): the warehouse holds nothing of the
    slice; the same load run again writes all of it once."""
    trace = tmp_path / "trace.txt"
    clean = load_in_a_process(f"duckdb:///{tmp_path / 'clean.duckdb'}", **{faults.TRACE_ENV: str(trace)})
    assert clean.returncode == 0, clean.stderr.decode()[-2000:]
    passes = trace.read_text(encoding="utf-8").split().count("load.in_transaction")
    url = str(engine.url)
    engine.dispose()
    killed = load_in_a_process(url, **{faults.ENV: f"load.in_transaction#{passes}"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert all(v == [] for v in snapshot(engine).values())
    again = load_in_a_process(url)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    got = snapshot(engine)
    assert len(got["ledger"]) == 12 and [len(got[f"raw.welfare__{tn}"]) for tn in TABLES] == [20, 20, 15]


@pytest.mark.unit
def test_a_retried_slice_writes_nothing_twice(engine: Engine) -> None:
    """A retry of the step after its commit writes nothing; a slice holding batches an earlier
    load wrote writes only the others."""
    key = secrets.token_bytes(20)
    batches = welfare_slice(range(1, 5))
    first = load_slice(engine, "run-1", "welfare", batches[:5], key)
    assert len(first) == 5
    rest = load_slice(engine, "run-1", "welfare", batches, key)
    assert [(e.file_name, e.table_name) for e in rest] == [(b.file_name, b.table_name) for b in batches[5:]]
    whole = snapshot(engine)
    assert load_slice(engine, "run-1", "welfare", batches, key) == []
    assert snapshot(engine) == whole
    check_conservation(engine)
    assert [len(whole[f"raw.welfare__{tn}"]) for tn in TABLES] == [20, 20, 15]
    assert len(whole["ledger"]) == 12 and len(whole["quarantine"]) == 11


@pytest.mark.unit
def test_pseudonyms_are_computed_once_per_distinct_value_across_slices(engine: Engine) -> None:
    key = secrets.token_bytes(20)  # a key of its own: nothing of it cached by another test
    before = pii.pseudonyms_computed()
    load_slice(engine, "run-1", "welfare", welfare_slice(range(1, 4)), key)
    assert pii.pseudonyms_computed() - before == len(NAMES) + len(IDS)
    load_slice(engine, "run-1", "welfare", welfare_slice(range(4, 8)), key)  # the same people again
    assert pii.pseudonyms_computed() - before == len(NAMES) + len(IDS)
    frame = pl.DataFrame({"name": NAMES + [None, "新名字"], "id_card": IDS + [None] * 3})
    got = pii.pseudonymise(frame, table("welfare", "relief"), key)
    assert pii.pseudonyms_computed() - before == len(NAMES) + len(IDS) + 1
    assert got["name_pseudonym"].to_list() == [pii.pseudonym(key, v) for v in NAMES] + [
        None,
        pii.pseudonym(key, "新名字"),
    ]
    assert got["id_card_pseudonym"].to_list() == [pii.pseudonym(key, v) for v in IDS] + [None] * 3


@pytest.mark.unit
def test_a_full_pseudonym_cache_starts_again_and_still_gives_the_same_pseudonyms(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    key = secrets.token_bytes(20)
    monkeypatch.setattr(pii, "CACHE_LIMIT", 3)
    frame = pl.DataFrame({"name": NAMES * 2})
    for _ in range(2):
        got = pii.pseudonymise(frame, table("welfare", "relief"), key)
        assert got["name_pseudonym"].to_list() == [pii.pseudonym(key, v) for v in NAMES * 2]


# ----------------------------------------------------------------- PostgreSQL's COPY from CSV
AWKWARD = [
    None,
    "",
    '"',
    'say "hi", then go',
    "a,b,c",
    "line\nbreak\r\nand CR\r",
    "tab\there",
    "back\\slash \\N \\. \\\\",
    "\\.",
    "中文，全角“引号”",
    " leading and trailing ",
    "NULL",
    "\x01\x1f control",
]
COLUMNS = (
    "s text, d date, ts timestamp, amount numeric(18,2), flag boolean, n bigint, x double precision, "
    "_file_name text, _row_number bigint"
)


def awkward_frame() -> pl.DataFrame:
    n = len(AWKWARD)
    return pl.DataFrame(
        {
            "s": AWKWARD,
            "d": [None if i % 5 == 1 else date(2021, 1 + i % 12, 1 + i) for i in range(n)],
            "ts": [
                None if i % 4 == 2 else datetime(2021, 3, 1, 8, i, 59, 123456 * (i % 2)) for i in range(n)
            ],
            "amount": [None if i % 6 == 3 else Decimal(f"{i * 1000}.{i:02d}") for i in range(n)],
            "flag": [None if i % 3 == 0 else bool(i % 2) for i in range(n)],
            "n": [None if i == 4 else (-(2**62) if i == 5 else i) for i in range(n)],
            "x": [None if i == 6 else 0.1 * i for i in range(n)],
            "_file_name": ["a.csv"] * n,
            "_row_number": list(range(2, n + 2)),
        },
        schema_overrides={"amount": pl.Decimal(18, 2), "ts": pl.Datetime("us")},
    )


def stored(url: str, target: str, frame: pl.DataFrame, ddl: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(ddl)
        with engine.begin() as conn:
            insert_frame(conn, target, frame)
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {target} ORDER BY _row_number").all()
            ]
    finally:
        engine.dispose()


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A schema of its own on the test server's ``test`` database; dropped afterwards."""
    url = f"{postgres_or_skip()}/test"
    name = f"unionwh_load_{secrets.token_hex(4)}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        yield url, name
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_stores_exactly_what_duckdb_stores(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, name = pg_schema
    frame = awkward_frame()
    pg = stored(url, f"{name}.t", frame, f"CREATE TABLE {name}.t ({COLUMNS})")
    duck = stored(f"duckdb:///{tmp_path / 'w.duckdb'}", "main.t", frame, f"CREATE TABLE main.t ({COLUMNS})")
    assert pg == duck
    assert pg == [tuple(r) for r in frame.iter_rows()]
    assert pg[0][0] is None and pg[1][0] == ""  # NULL stays NULL, '' stays ''
    # a text column alone on its line: a lone \. is data, not the end of the COPY
    single = pl.DataFrame({"_row_number": [1, 2, 3], "s": ["\\.", None, ""]})
    assert stored(
        url,
        f"{name}.one",
        single.select("s", "_row_number"),
        f"CREATE TABLE {name}.one (s text, _row_number bigint)",
    ) == [
        ("\\.", 1),
        (None, 2),
        ("", 3),
    ]


@pytest.mark.postgres
def test_a_refused_value_on_postgresql_still_names_its_file_row_and_column(
    pg_schema: tuple[str, str],
) -> None:
    """The COPY's first attempt fails; the error names the row (a NUL, which PostgreSQL text
    cannot hold, is refused as before: without a row, never with its value)."""
    url, name = pg_schema
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {name}.t (_file_name text, _row_number bigint, note text, n integer)"
            )
        frame = pl.DataFrame(
            {
                "_file_name": ["a.csv"] * 3,
                "_row_number": [2, 3, 4],
                "note": ['x,\n"y"', "", None],
                "n": ["1", "2", "秘密"],
            }
        )
        with pytest.raises(WarehouseWriteError) as refused, engine.begin() as conn:
            insert_frame(conn, f"{name}.t", frame)
        assert str(refused.value).startswith(
            f"the warehouse refused a value of {name}.t at file a.csv, row 4, column n (SQLSTATE 22P02"
        ), str(refused.value)
        assert "秘密" not in str(refused.value)
        with pytest.raises(WarehouseWriteError) as nul, engine.begin() as conn:
            insert_frame(
                conn,
                f"{name}.t",
                frame.with_columns(pl.Series("note", ["ok", "a\x00b", None]), pl.lit("1").alias("n")),
            )
        assert str(nul.value).startswith(f"the warehouse refused a value of {name}.t ("), str(nul.value)
        with engine.connect() as conn:  # nothing of either insert stayed
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {name}.t").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_slice_on_postgresql_stores_what_it_stores_on_duckdb(tmp_path: Path) -> None:
    key = secrets.token_bytes(20)
    snaps = []
    with throwaway_postgres("unionwh_load_slice") as url:
        for target in (f"duckdb:///{tmp_path / 'wh.duckdb'}", url):
            engine = warehouse_engine(load_settings(warehouse=target))
            try:
                init_warehouse(engine)
                load_slice(engine, "run-1", "welfare", welfare_slice(range(1, 4)), key)
                check_conservation(engine)
                snaps.append(snapshot(engine))
            finally:
                engine.dispose()
    assert snaps[0] == snaps[1] and len(snaps[0]["ledger"]) == 9
