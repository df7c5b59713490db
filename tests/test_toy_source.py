"""Adding a source is one module (its reader) plus one contract entry: two toy systems, defined
in this file alone, flow through the pipeline's own functions end to end.

discover -> read (the entry's reader) -> validate (Great Expectations, the suite built from the
entry) -> batch gates -> load into a real DuckDB warehouse (raw rows, quarantine, ledger, the
file register) -> the dbt selection the load asks for. Nothing in flows/ names them: each is
registered in the contract (``schema.register``) for its test and removed after.

- ``depot`` is shaped like welfare: files named after what they hold
  (``<depot-code>_<YYYYMM>.csv``), rows without a key of their own, a newer file replacing the
  older one (a register of loaded files), a conditional rule given as data.
- ``kiosk`` is shaped like the registry: a fixed file name, rows keyed by ``visit_id``, the
  latest delivery winning per key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from flows import schema
from flows.checksums import resident_id_check_char
from flows.quality.gates import delivery_kind
from flows.quality.screen import WHOLE_FILE, Outcome, screen_delivery
from flows.schema import FILE_REPLACES, Column, Source, Table, rule
from flows.settings import QualitySettings, load_settings
from flows.sources import common
from flows.warehouse import builds, pii
from flows.warehouse.ddl import (
    META_DDL,
    OPS_SCHEMA,
    RAW_SCHEMA,
    SQL_TYPES,
    personal_columns,
    pseudonym_columns,
)
from flows.warehouse.engine import init_warehouse, warehouse_engine
from flows.warehouse.loader import LedgerEntry, write_batch
from tests.warehouse.pipeline_support import write_delivery_csv

DELIVERY = "2024-04-02"
KEY = b"toy-source-test-pseudonymisation"
ID = "12010519900307123" + resident_id_check_char("12010519900307123")
BAD_ID = ID[:17] + ("0" if ID[17] != "0" else "1")


# ------------------------------------------------------------------ the toy "module": its reader
def read_depot(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """depot's reader: one CSV a file, the file name's fields on every row."""
    common.check_delivery(delivery)
    src, t = schema.source("depot"), schema.table("depot", "tallies")
    fields = src.parse_file_name(Path(delivery.path).name)
    assert fields is not None
    data = common.read_bytes(delivery)
    lines = list(csv.reader(io.StringIO(common.decode(data, "depot", delivery.rel_name), newline="")))
    header = lines[0]
    positions, factors = common.match_headers(header, t, delivery.rel_name)
    raw = common.RawRows.empty(c.name for c in t.columns)
    for number, row in enumerate(lines[1:], start=2):
        raw.add(number, {name: row[i] for name, i in positions.items()}, dict(zip(header, row, strict=True)))
    frame = common.canonical_frame(
        t,
        raw,
        source="depot",
        file_name=delivery.rel_name,
        sha256=common.sha256_bytes(data),
        delivery_date=delivery.delivery_date,
        factors=factors,
        constants=fields,
    )
    return {t.name: frame}


# ----------------------------------------------------------------- the toy contract entries
DEPOT = Source(
    "depot",
    reader=read_depot,
    encoding="utf-8",
    file_name=r"^(?P<depot_code>[A-Z]\d{2})_(?P<ledger_month>\d{4}(?:0[1-9]|1[0-2]))\.csv$",
    file_name_hint="<depot-code>_<YYYYMM>.csv",
    kind_fields=("depot_code",),
    replace=FILE_REPLACES,
    register="files",
    personal=("name",),
)
TALLIES = Table(
    "depot",
    "tallies",
    (
        Column("tally_date", "日期", "date"),
        Column("item", "物品", "code", allowed=("米", "油")),
        Column("name", "姓名", "text"),
        Column("id_card", "身份证号", "resident_id", required=False),
        Column("qty", "数量", "int", min_value=0),
        Column("note", "备注", "text", required=False),
    ),
    key=("depot_code", "ledger_month", "_row_number"),
    file_pattern="<depot-code>_<YYYYMM>.csv",
    wins="file replaces",
    extra_columns=(Column("depot_code", "", "text"), Column("ledger_month", "", "text")),
    rules=(
        rule(
            "note.required_for_oil",
            "expect_column_values_to_not_be_null",
            "备注 is required for 油",
            "物品为油时必须填写备注",
            column="note",
            row_condition='item=="油"',
        ),
    ),
)
KIOSK = Source("kiosk", reader=lambda d: common.read_csv_source(d, "kiosk"), encoding="utf-8")
VISITS = Table(
    "kiosk",
    "visits",
    (Column("visit_id", "编号", "text"), Column("visited_on", "日期", "date")),
    key=("visit_id",),
    file_pattern="visits.csv",
    wins="latest delivery",
)


@pytest.fixture
def toys() -> Iterator[None]:
    schema.register(DEPOT, (TALLIES,))
    schema.register(KIOSK, (VISITS,))
    try:
        yield
    finally:
        schema.unregister("depot")
        schema.unregister("kiosk")


def toy_warehouse(path: Path) -> sa.Engine:
    """A DuckDB warehouse at ``path`` with the toy sources' raw tables (what their migration adds)."""
    eng = warehouse_engine(load_settings(warehouse=f"duckdb:///{path}"))
    init_warehouse(eng)
    with eng.begin() as conn:
        for t in (TALLIES, VISITS):
            cols = (
                [(c.name, SQL_TYPES[c.kind]) for c in t.all_columns] + list(META_DDL) + pseudonym_columns(t)
            )
            conn.execute(
                sa.text(
                    f"CREATE TABLE {RAW_SCHEMA}.{t.raw_table} ("
                    + ", ".join(f"{n} {typ}" for n, typ in cols)
                    + ")"
                )
            )
        fields = ", ".join(f"{f} VARCHAR NOT NULL" for f in DEPOT.file_fields)
        conn.execute(
            sa.text(
                f"CREATE TABLE {RAW_SCHEMA}.{DEPOT.register_table} ({fields}, _load_id VARCHAR NOT "
                "NULL, _file_name VARCHAR NOT NULL, _file_sha256 VARCHAR NOT NULL, _delivery_date "
                "DATE NOT NULL)"
            )
        )
    return eng


@pytest.fixture
def engine(tmp_path: Path, toys: None):
    eng = toy_warehouse(tmp_path / "wh.duckdb")
    yield eng
    eng.dispose()


def write_csv(landing: Path, source: str, name: str, header: list[str], rows: list[list[str]]) -> None:
    """A delivered CSV file in the registered source's own encoding (UTF-8 for both toys)."""
    write_delivery_csv(landing / source / DELIVERY / name, header, rows)


def load(engine, delivery: common.Delivery, outcomes: list[Outcome]) -> None:
    """What the nightly load task does with a screened file (flows/nightly.py load_batches)."""
    src = schema.source(delivery.source)
    sha = common.delivery_sha256(delivery)
    for o in outcomes:
        assert o.error is None and o.result is not None, o.error
        t = schema.table(delivery.source, o.table_name)
        passed, quarantined = o.result.passed, o.result.quarantined
        entry = LedgerEntry(
            "toy-run",
            src.name,
            t.name,
            delivery.rel_name,
            sha,
            delivery.delivery_date,
            o.rows_read,
            passed.height,
            quarantined.height,
            "loaded",
        )
        write_batch(
            engine,
            entry,
            t,
            pii.pseudonymise(common.to_typed(passed, t), t, KEY),
            pii.pseudonymise(quarantined, t, KEY),
            workbook=src.file_key(delivery.rel_name) if src.register is not None else None,
        )


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def test_a_welfare_shaped_source_flows_end_to_end(tmp_path: Path, engine) -> None:
    landing = tmp_path / "landing"
    header = ["日期", "物品", "姓名", "身份证号", "数量", "备注"]
    write_csv(
        landing,
        "depot",
        "D01_202403.csv",
        header,
        [
            ["2024-03-05", "米", "测试甲", ID, "10", ""],
            ["2024/3/6", "米", "测试乙", BAD_ID, "5", ""],  # id_card.resident_id
            ["2024-03-07", "油", "测试丙", "", "3", ""],  # note.required_for_oil (a rule given as data)
            ["2024-03-08", "米", "测试丁", "", "-1", ""],  # qty.integer
            ["2024-05-01", "油", "测试戊", "", "2", "补发"],  # tally_date.after_delivery
            ["2024-03-05", "米", "测试甲", ID, "10", ""],  # the same row again: no key, it counts
        ],
    )
    write_csv(landing, "depot", "D01_202413.csv", header, [])  # month 13: not a name depot delivers

    assert common.discover_unknown(landing) == []  # a registered source is no stranger at the top
    found = common.discover(landing, "depot")
    assert [(d.rel_name, d.problem) for d in found] == [
        ("depot/2024-04-02/D01_202403.csv", None),
        (
            "depot/2024-04-02/D01_202413.csv",
            "unknown file name 'D01_202413.csv': depot delivers <depot-code>_<YYYYMM>.csv",
        ),
    ]
    good, unknown = found
    [rejected] = screen_delivery(unknown, QualitySettings())
    assert (rejected.table_name, rejected.error and rejected.error.rule) == (WHOLE_FILE, "batch.unknown_file")

    from flows.pipeline.extract import tables_of_file as _tables_of_file

    assert _tables_of_file("depot", good) == ["tallies"]
    outcomes = screen_delivery(good, QualitySettings())
    [o] = outcomes
    assert (o.table_name, o.rows_read, o.rows_loaded, o.rows_quarantined) == ("tallies", 6, 2, 4)
    by_row = dict(zip(o.result.quarantined["_row_number"], o.result.quarantined["rules"], strict=True))
    assert by_row == {
        3: "id_card.resident_id",
        4: "note.required_for_oil",
        5: "qty.integer",
        6: "tally_date.after_delivery",
    }
    assert delivery_kind(good.rel_name) == "D01"  # the row-count gate compares a depot's files

    load(engine, good, outcomes)
    [ledger] = rows(
        engine,
        f"SELECT table_name, rows_read, rows_loaded, rows_quarantined, status FROM {OPS_SCHEMA}.load_ledger",
    )
    assert ledger == ("tallies", 6, 2, 4, "loaded")
    assert ledger[1] == ledger[2] + ledger[3]  # every row in is loaded or quarantined
    assert rows(
        engine,
        f"SELECT depot_code, ledger_month, count(*), count(id_card_pseudonym), "
        f"count(name_pseudonym) FROM {RAW_SCHEMA}.depot__tallies GROUP BY ALL",
    ) == [("D01", "202403", 2, 2, 2)]
    # the quarantine's row key is the file's fields, as for a welfare ledger row
    assert rows(engine, f"SELECT DISTINCT row_key FROM {OPS_SCHEMA}.quarantine") == [("D01|202403",)]
    assert rows(engine, f"SELECT depot_code, ledger_month, _file_name FROM {RAW_SCHEMA}.depot__files") == [
        ("D01", "202403", "depot/2024-04-02/D01_202403.csv")
    ]
    assert personal_columns(TALLIES) == schema.personal_columns(TALLIES) == ("name", "id_card")

    # the dbt build this load asks for: the table and the source's register, with what is downstream
    builds.record(engine, "earlier", "hash", builds.Plan((), None, "test"), succeeded=True)
    chosen = builds.plan(engine, "hash")
    assert chosen.selectors == (
        builds.OPS_SELECTOR,
        "source:depot.depot__files+",
        "source:depot.depot__tallies+",
    )


def test_a_keyed_source_flows_end_to_end(tmp_path: Path, engine) -> None:
    landing = tmp_path / "landing"
    write_csv(
        landing,
        "kiosk",
        "visits.csv",
        ["编号", "日期"],
        [
            ["V1", "2024-03-01"],
            ["V2", "2024-03-02"],
            ["V2", "2024-03-03"],
            ["V3", "3月4日"],
        ],
    )
    [delivery] = common.discover(landing, "kiosk")
    assert delivery.problem is None
    # two of four rows share a key: more than the default 5%, the batch gate holds the file back
    [held] = screen_delivery(delivery, QualitySettings())
    assert held.error is not None and held.error.rule == "batch.duplicate_keys"

    outcomes = screen_delivery(delivery, QualitySettings(max_duplicate_key_share=0.6))
    [o] = outcomes
    assert (o.rows_read, o.rows_loaded, o.rows_quarantined) == (4, 1, 3)
    load(engine, delivery, outcomes)
    assert rows(engine, f"SELECT rows_read, rows_loaded, rows_quarantined FROM {OPS_SCHEMA}.load_ledger") == [
        (4, 1, 3)
    ]
    assert rows(engine, f"SELECT row_key, rules FROM {OPS_SCHEMA}.quarantine ORDER BY row_number") == [
        ("V2", "key.unique_in_delivery"),
        ("V2", "key.unique_in_delivery"),
        ("V3", "visited_on.date_format"),
    ]
    assert rows(engine, f"SELECT visit_id, visited_on FROM {RAW_SCHEMA}.kiosk__visits") == [
        ("V1", date(2024, 3, 1))
    ]


def test_registering_is_undone() -> None:
    assert schema.find_source("depot") is None and schema.find_source("kiosk") is None
    with pytest.raises(ValueError):
        schema.register(schema.source("welfare"), ())
    assert all(personal_columns(t) == schema.personal_columns(t) for t in schema.TABLES)
