"""Loading into a real DuckDB file: raw rows, quarantine and ledger in one transaction."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from flows.schema import table
from flows.settings import load_settings
from flows.warehouse.engine import init_warehouse, warehouse_engine
from flows.warehouse.loader import LedgerEntry, already_seen, watermarks, write_batch

pytestmark = pytest.mark.unit

T = table("events", "honours")


@pytest.fixture
def engine(tmp_path: Path):
    eng = warehouse_engine(load_settings(warehouse=f"duckdb:///{tmp_path / 'wh.duckdb'}"))
    init_warehouse(eng)
    init_warehouse(eng)  # idempotent
    yield eng
    eng.dispose()


def typed_rows(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "honour_id": [f"H{i}" for i in range(n)],
            "year": [2021] * n,
            "honour": ["优秀志愿者"] * n,
            "level": ["区级"] * n,
            "recipient": ["某某"] * n,
            "_source": ["events"] * n,
            "_file_name": ["events/2021-12-31/honours.csv"] * n,
            "_file_sha256": ["a" * 64] * n,
            "_delivery_date": [date(2021, 12, 31)] * n,
            "_row_number": list(range(2, n + 2)),
        }
    )


def rejected_rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "honour_id": ["HX"],
            "year": ["20x1"],
            "honour": ["优秀志愿者"],
            "level": ["区级"],
            "recipient": ["某某"],
            "_row_number": [9],
            "rules": ["year.integer"],
            "reasons": ['[{"rule": "year.integer"}]'],
            "_original": ['{"年度": "20x1"}'],
        }
    )


def entry(read: int, loaded: int, quarantined: int) -> LedgerEntry:
    return LedgerEntry(
        "run1",
        "events",
        "honours",
        "events/2021-12-31/honours.csv",
        "a" * 64,
        date(2021, 12, 31),
        read,
        loaded,
        quarantined,
        "loaded",
    )


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_batch_writes_raw_quarantine_and_ledger(engine) -> None:
    e = entry(4, 3, 1)
    write_batch(engine, e, T, typed_rows(3), rejected_rows())
    assert count(engine, "select count(*) from raw.events__honours") == 3
    assert count(engine, f"select count(*) from raw.events__honours where _load_id = '{e.load_id}'") == 3
    with engine.connect() as conn:
        q = conn.execute(sa.text("select row_number, rules, original_values from ops.quarantine")).one()
        ledger = conn.execute(
            sa.text("select rows_read, rows_loaded, rows_quarantined, status from ops.load_ledger")
        ).one()
    assert tuple(q) == (9, "year.integer", '{"年度": "20x1"}')
    assert tuple(ledger) == (4, 3, 1, "loaded")
    assert already_seen(engine, "events") == {("honours", "a" * 64, "loaded")}


def test_a_failing_write_leaves_nothing_behind(engine) -> None:
    broken = typed_rows(2).with_columns(pl.lit("not a number").alias("year"))
    with pytest.raises(Exception):  # noqa: B017 - any error of the database or driver: what matters is what is left
        write_batch(engine, entry(3, 2, 1), T, broken, rejected_rows())
    for relation in ("raw.events__honours", "ops.quarantine", "ops.load_ledger"):
        assert count(engine, f"select count(*) from {relation}") == 0


def test_watermark_moves_with_its_batch(engine) -> None:
    e = LedgerEntry(
        "run1", "members", "member", "members/member", "b" * 64, date(2022, 1, 1), 0, 0, 0, "loaded"
    )
    write_batch(engine, e, table("members", "member"), None, None, watermark=datetime(2021, 12, 1, 8))
    write_batch(engine, e, table("members", "member"), None, None, watermark=datetime(2022, 1, 1, 8))
    assert watermarks(engine, "members") == {"member": datetime(2022, 1, 1, 8)}


def test_rows_whose_load_has_no_completed_ledger_entry_are_found(engine) -> None:
    """All or nothing: rows written by the loader carry a load id with a completed ledger
    entry; a row written around it (here by hand) is counted, per table."""
    from flows.warehouse.loader import rows_without_completed_load

    write_batch(engine, entry(4, 3, 1), T, typed_rows(3), rejected_rows())
    assert rows_without_completed_load(engine) == {}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into raw.events__honours (honour_id, year, honour, level, recipient, _source, _file_name, "
                "_file_sha256, _delivery_date, _row_number, _load_id) values ('HZ', 2021, '优秀志愿者', '区级', '某某', "
                "'events', 'events/2022-01-01/honours.csv', 'b', '2022-01-01', 2, 'no-such-load')"
            )
        )
        conn.execute(sa.text("update ops.load_ledger set status = 'rejected'"))  # (not what the loader does)
    assert rows_without_completed_load(engine) == {"raw.events__honours": 4, "ops.quarantine": 1}
