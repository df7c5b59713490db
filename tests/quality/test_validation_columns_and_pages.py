"""What Great Expectations is given and what Data Docs get (flows/quality/runner.py): only the
columns a suite reads (plus the row key), one batch fingerprint per chunk, and one merged
result per validation (one page per table and slice), whose counts are the chunks' sums."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from great_expectations.execution_engine import pandas_execution_engine

from flows.quality.docs import merge_results, page_name, write_page
from flows.quality.runner import ROW_KEY, validate, validate_files
from flows.quality.suites import load_suite_dict, suite_columns
from flows.schema import table
from tests.quality.test_runner import BAD_USCC, canonical, case

pytestmark = pytest.mark.unit


@pytest.fixture
def fingerprinted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The column lists of the frames GE fingerprints (GE's own function, still run)."""
    seen: list[list[str]] = []
    real = pandas_execution_engine.hash_pandas_dataframe

    def spy(df: pd.DataFrame) -> str:
        seen.append(list(df.columns))
        return str(real(df))

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", spy)
    yield seen


def test_suite_columns_include_conditions_and_keys() -> None:
    cols = suite_columns(load_suite_dict(table("rights", "cases")))
    assert cols is not None
    assert {"case_no", "case_type", "mediation_result", "recovered_yuan", "_file_name"} <= cols
    assert {"_delivery_date", "_parse_error", "_control_chars"} <= cols
    assert not {"_original", "_row_number", "_file_sha256", "_source"} & cols
    table_level = {"expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {}}]}
    assert suite_columns(table_level) is None  # a table-level expectation sees every column


def test_ge_gets_only_the_suites_columns_and_fingerprints_each_chunk_once(
    fingerprinted: list[list[str]],
) -> None:
    rows = [case(case_no=f"C{i:03d}") for i in range(30)]
    rows[4]["uscc"] = BAD_USCC
    frame, t = canonical("rights", "cases", rows)
    result = validate(frame, t, "f.csv", chunk_rows=7)
    chunks = len(result.ge_results)
    assert chunks >= 4 and len(fingerprinted) == chunks  # once per chunk (get_batch + validate: twice)
    used = suite_columns(load_suite_dict(t))
    assert used is not None
    for columns in fingerprinted:
        assert ROW_KEY in columns and set(columns) - {ROW_KEY} <= used
        assert "_original" not in columns and "_row_number" not in columns
    assert result.quarantined["_row_number"].to_list() == [6]  # the lineage columns stay in the split
    assert set(result.quarantined.columns) == set(frame.columns) | {
        "_control_chars",
        "_type_errors",
        "rules",
        "reasons",
    }


def test_one_page_per_validation_with_the_chunks_summed(tmp_path: Path) -> None:
    rows = [case(case_no=f"C{i:03d}") for i in range(30)]
    rows[4]["uscc"] = BAD_USCC
    rows[20]["received_on"] = "2021-02-30"
    frame, t = canonical("rights", "cases", rows)
    per_chunk = validate(frame, t, "f.csv", chunk_rows=7).ge_results
    merged = merge_results(per_chunk)
    assert merged is not per_chunk[0] and len(per_chunk) > 1
    assert [r.expectation_config.type for r in merged.results] == [
        r.expectation_config.type for r in per_chunk[0].results
    ]
    for i, res in enumerate(merged.results):
        parts = [c.results[i].result for c in per_chunk]
        assert res.result["element_count"] == sum(p["element_count"] for p in parts)
        if "row_condition" not in res.expectation_config.kwargs:
            assert res.result["element_count"] == 30
        assert res.result["unexpected_count"] == sum(p["unexpected_count"] for p in parts)
        assert res.success == all(c.results[i].success for c in per_chunk)
        if (
            res.result.get("missing_count") is not None
            and res.result["element_count"] > res.result["missing_count"]
        ):
            nonmissing = res.result["element_count"] - res.result["missing_count"]
            assert res.result["unexpected_percent"] == pytest.approx(
                res.result["unexpected_count"] / nonmissing * 100
            )
    failed = {r.expectation_config.meta["rule"] for r in merged.results if not r.success}
    assert failed == {"uscc.uscc", "received_on.date_format"}
    assert merged.success is False
    assert merged.statistics["unsuccessful_expectations"] == 2
    assert merged.statistics["evaluated_expectations"] == len(merged.results)
    assert "pandas_data_fingerprint" not in merged.meta["batch_markers"]  # (one chunk's, not the page's)
    assert merge_results(per_chunk[:1]) is per_chunk[0]
    json.dumps(merged.to_json_dict())  # (a page renders from it)

    # what validate_files hands the pipeline: one result, the same merge, one page for the table
    results, ge_results = validate_files([frame], t, "f.csv", chunk_rows=7)
    assert len(ge_results) == 1 and results[0].quarantined.height == 2
    assert [r.result["unexpected_count"] for r in ge_results[0].results] == [
        r.result["unexpected_count"] for r in merged.results
    ]
    docs = tmp_path / "20260101T000000-abcdef" / "data_docs"
    docs.mkdir(parents=True)
    page = write_page(
        docs / page_name("rights", "cases", "f.csv", 0), ge_results[0], docs.parent.name, "f.csv"
    )
    html = page.path.read_text(encoding="utf-8")
    assert page.success is False and "rights.cases" in html
