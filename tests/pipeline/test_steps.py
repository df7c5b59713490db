"""Each step of the pipeline core on its own, as plain functions (no Prefect, no flow run):
extract a slice, validate it, load it; on the toy sources of tests/test_toy_source.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.errors import RunFailed
from flows.pipeline.extract import extract_files, in_window
from flows.pipeline.load import check_conservation, load_slice
from flows.pipeline.state import Batch
from flows.pipeline.validate import validate_slice
from flows.quality.screen import WHOLE_FILE
from flows.settings import QualitySettings
from flows.sources import common
from flows.warehouse.ddl import OPS_SCHEMA
from flows.warehouse.loader import already_seen
from tests.pipeline.test_core import toy_landing
from tests.test_toy_source import KEY, toy_warehouse, toys, write_csv

__all__ = ["toys"]  # (the fixture, used by name)
pytestmark = pytest.mark.unit


def depot(landing: Path) -> list[common.Delivery]:
    return common.discover(landing, "depot")


def test_extract_reads_new_files_skips_known_ones_and_stops_at_max_rows(tmp_path: Path, toys: None) -> None:
    landing = tmp_path / "landing"
    toy_landing(landing)
    header = ["日期", "物品", "姓名", "身份证号", "数量", "备注"]
    write_csv(landing, "depot", "D02_202403.csv", header, [["2024-03-05", "米", "测试", "", "1", ""]])
    found = depot(landing)
    assert [d.rel_name.rsplit("/", 1)[1] for d in found] == [
        "D01_202403.csv",
        "D01_202413.csv",
        "D02_202403.csv",
    ]

    batches, skipped, done, this_run = extract_files("depot", set(), found)
    assert (skipped, done) == (0, 3)
    assert [(b.table_name, b.frame.height if b.frame is not None else None) for b in batches] == [
        ("tallies", 4),
        (WHOLE_FILE, None),  # the unknown name: one batch, rejected whole with its rule
        ("tallies", 1),
    ]
    assert batches[1].error is not None and batches[1].error.rule == "batch.unknown_file"
    assert batches[0].workbook == ("D01", "202403")  # the file's fields, for the source's register
    assert len(this_run) == 3

    # what the warehouse holds already, or this run read already, is not read again
    seen = {("tallies", batches[0].sha256, "loaded")}
    again, skipped, done, _ = extract_files("depot", seen, found, {batches[2].sha256})
    assert [b.file_name for b in again] == [batches[1].file_name] and (skipped, done) == (2, 3)

    # a slice ends once max_rows are read: the next starts at ``done``
    first, _, done, this_run = extract_files("depot", set(), found, max_rows=1)
    assert [b.file_name for b in first] == [batches[0].file_name] and done == 1
    rest, _, done, _ = extract_files("depot", set(), found[done:], this_run)
    assert [b.file_name for b in rest] == [batches[1].file_name, batches[2].file_name] and done == 2


def test_validate_splits_rows_and_gates_hold_a_batch_back(tmp_path: Path, toys: None) -> None:
    landing = tmp_path / "landing"
    toy_landing(landing)
    batches, *_ = extract_files("depot", set(), depot(landing))
    docs = tmp_path / "run" / "data_docs"
    validate_slice("depot", batches, QualitySettings(), {}, docs)
    good, unknown = batches
    assert good.error is None and good.passed is not None and good.quarantined is not None
    assert (good.passed.height, good.quarantined.height) == (1, 3)
    assert sorted(good.quarantined["rules"]) == [
        "id_card.resident_id",
        "note.required_for_oil",
        "qty.integer",
    ]
    assert [p.rows for p in good.doc_pages] == [4] and good.doc_pages[0].path.exists()
    assert unknown.error is not None and unknown.doc_pages == []  # rejected before validation

    # a gate: far fewer rows than this depot's files had before holds the file back whole
    batches, *_ = extract_files("depot", set(), depot(landing))
    validate_slice("depot", batches, QualitySettings(min_row_share=0.5), {("tallies", "D01"): 100}, docs)
    assert batches[0].error is not None and batches[0].error.rule == "batch.row_count_drop"
    assert batches[0].passed is None


def test_load_writes_each_batch_once_with_its_ledger_entry(tmp_path: Path, toys: None) -> None:
    landing = tmp_path / "landing"
    toy_landing(landing)
    engine = toy_warehouse(tmp_path / "wh.duckdb")
    try:
        batches, *_ = extract_files("depot", set(), depot(landing))
        validate_slice("depot", batches, QualitySettings(), {}, tmp_path / "docs")
        entries = load_slice(engine, "run-1", "depot", batches, KEY)
        assert [
            (e.table_name, e.rows_read, e.rows_loaded, e.rows_quarantined, e.status) for e in entries
        ] == [
            ("tallies", 4, 1, 3, "loaded"),
            (WHOLE_FILE, 0, 0, 0, "rejected"),
        ]
        check_conservation(engine)
        # a retry of the same step writes nothing twice
        assert load_slice(engine, "run-1", "depot", batches, KEY) == []
        with engine.connect() as conn:
            ledger = conn.execute(sa.text(f"SELECT count(*) FROM {OPS_SCHEMA}.load_ledger")).scalar()
            quarantined = conn.execute(sa.text(f"SELECT count(*) FROM {OPS_SCHEMA}.quarantine")).scalar()
        assert (ledger, quarantined) == (2, 3)
        assert {(t, s) for t, _, s in already_seen(engine, "depot")} == {
            ("tallies", "loaded"),
            (WHOLE_FILE, "rejected"),
        }
    finally:
        engine.dispose()


def test_conservation_fails_a_ledger_that_does_not_add_up(tmp_path: Path, toys: None) -> None:
    engine = toy_warehouse(tmp_path / "wh.duckdb")
    try:
        batch = Batch("kiosk", "visits", "kiosk/2024-04-02/visits.csv", "0" * 64, None, error=None)
        load_slice(engine, "run-1", "kiosk", [batch], KEY)  # no frame: rejected, nothing loaded
        check_conservation(engine)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {OPS_SCHEMA}.load_ledger SET rows_loaded = 1"))
        with pytest.raises(RunFailed, match="row conservation broken for kiosk/2024-04-02/visits.csv"):
            check_conservation(engine)
    finally:
        engine.dispose()


def test_a_window_takes_its_days_and_an_open_one_everything() -> None:
    from datetime import date

    d = date(2024, 4, 2)
    assert in_window(d, (None, None)) and in_window(None, (None, None))
    assert (
        in_window(d, (d, d)) and not in_window(d, (date(2024, 4, 3), None)) and not in_window(None, (d, None))
    )
