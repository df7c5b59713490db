"""Run a table's expectation suite on a canonical frame and split it.

The readers' Polars frames are validated by Great Expectations on Arrow-backed
pandas batches of at most ``CHUNK_ROWS`` rows, so memory stays bounded whatever
the file size, holding only the columns the table's suite reads (and the row key).
A validation's chunks make one result for Data Docs (their counts summed). Every failing row goes to quarantine with *all* the rules it
broke; every other row passes. An expectation that errors (rather than fails)
stops the batch: an errored check is never counted as a pass.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flows.errors import BatchError
from flows.schema import Table, table

from .docs import merge_results, scrub
from .suites import KEY_SCOPE_COLUMN, load_suite_dict, suite_columns, uses_key_scope

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
DETAIL_COLUMNS = ("_control_chars", "_type_errors")
"""Reader columns that say what failed in a row (expectation meta ``detail_column``)."""
ROW_KEY = "_row_key"
FILE_NO = "_file_no"
FILE_COLUMN = "_file_name"


@dataclass
class ValidationResult:
    passed: pl.DataFrame
    quarantined: pl.DataFrame
    """Rejected rows: ``_row_number`` plus ``rules``, ``reasons`` and the lineage columns."""
    expectations_run: int = 0
    failures_by_rule: dict[str, int] = field(default_factory=dict)
    ge_results: list[Any] = field(default_factory=list)
    """GE's validation results per chunk, with the unexpected values removed (for Data Docs)."""


_CONTEXT_LOCK = threading.Lock()


def warm_up() -> None:
    """Import Great Expectations and make its context in a background thread (about 2.5 s),
    so that it overlaps what a run does first (Prefect's server starting, the first reads)."""
    threading.Thread(target=_batch_definition, name="ge-warm-up", daemon=True).start()


def _batch_definition() -> Any:
    with _CONTEXT_LOCK:
        return _make_batch_definition()


@functools.lru_cache(maxsize=1)
def _make_batch_definition() -> Any:
    # deferred: Great Expectations (~2 s), loaded by warm_up() in a thread, overlapping a run's start
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from . import expectations as _registered  # noqa: F401  (registers the custom expectations)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("unionwh").add_dataframe_asset("canonical_rows")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


@functools.cache
def _validator_class() -> Any:
    # deferred: Great Expectations (~2 s), see _make_batch_definition
    from great_expectations.validator.v1_validator import Validator

    return Validator


@functools.cache
def _suite(source: str, name: str) -> Any:
    import great_expectations as gx  # deferred: Great Expectations (~2 s), see _make_batch_definition

    from . import expectations as _registered  # noqa: F401  (registers the custom expectations)

    return gx.ExpectationSuite(**load_suite_dict(table(source, name)))


@functools.cache
def _suite_columns(source: str, name: str) -> frozenset[str] | None:
    """The columns ``source.name``'s suite reads (None: all), as :func:`_suite` reads the suite."""
    return suite_columns(load_suite_dict(table(source, name)))


def _ge_columns(chunk: pl.DataFrame, t: Table) -> list[str]:
    """The chunk's columns Great Expectations is given: those its suite reads and the row key
    (the quarantine split's index). Fewer columns make every step of GE cheaper: the frame's
    conversion, GE's fingerprint of it, and each row filter (``row_condition``, ``ignore_row_if``,
    the unexpected rows' index), which takes every column of the frame it filters."""
    used = _suite_columns(t.source, t.name)
    return [c for c in chunk.columns if used is None or c in used or c == ROW_KEY]


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GE reports errors either flat or keyed by metric id; find any raised one."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _validate_chunk(chunk: pl.DataFrame, t: Table, file: str) -> tuple[dict[int, list[dict[str, str]]], Any]:
    """Map row key -> failed rules' metadata for one chunk."""
    suite = _suite(t.source, t.name)
    if uses_key_scope(t):
        chunk = chunk.with_columns(
            pl.when(pl.any_horizontal([pl.col(k).is_not_null() for k in t.unique_key]))
            .then(pl.col(FILE_COLUMN))
            .otherwise(None)
            .alias(KEY_SCOPE_COLUMN)
        )
    details = {
        c: dict(zip(*chunk.filter(pl.col(c).is_not_null()).select(ROW_KEY, c).get_columns(), strict=True))
        for c in DETAIL_COLUMNS
        if c in chunk.columns
    }
    frame = chunk.select(_ge_columns(chunk, t)).to_pandas(use_pyarrow_extension_array=True)
    # GE's own Validator on the batch definition: it gets the batch (and fingerprints the frame,
    # hashing every value) once; batch_definition.get_batch(...).validate(...) did it twice
    validator = _validator_class()(
        batch_definition=_batch_definition(),
        batch_parameters={"dataframe": frame},
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [ROW_KEY],
            # GE writes each failing rule's row index as a query text (one more filter of the
            # frame per expectation); scrub() drops it unread
            "return_unexpected_index_query": False,
        },
    )
    result = validator.validate_expectation_suite(suite)
    failed: dict[int, list[dict[str, str]]] = {}
    for res in result.results:
        meta = dict(res.expectation_config.meta or {})
        error = _exception_message(res.exception_info)
        if error is not None:
            raise BatchError(
                file,
                "batch.validation_error",
                f"expectation {meta.get('rule', res.expectation_config.type)} errored: {error}",
            )
        if res.success:
            continue
        rows = res.result.get("unexpected_index_list")
        if rows is None:
            raise BatchError(
                file, "batch.validation_error", f"expectation {meta.get('rule')} failed without row indexes"
            )
        detail = meta.get("detail_column")
        for row in rows:
            key = int(row[ROW_KEY])
            failed.setdefault(key, []).append(
                {**meta, "detail": details[detail].get(key)} if detail else meta
            )
    return failed, scrub(result)


def chunks(keyed: pl.DataFrame, t: Table, chunk_rows: int = CHUNK_ROWS) -> list[pl.DataFrame]:
    """Split a frame into validation chunks of about ``chunk_rows`` rows.

    Key uniqueness is a property of the whole delivered file, so when a table has
    a key rule and the file is larger than one chunk, rows are spread over the
    chunks by a hash of their key: equal keys always share a chunk, and GE's
    uniqueness check on each chunk is exactly the check on the whole file.
    """
    if keyed.height <= chunk_rows:
        return [keyed]
    n = -(-keyed.height // chunk_rows)
    if not t.unique_key:
        return [keyed.slice(offset, chunk_rows) for offset in range(0, keyed.height, chunk_rows)]
    part = (pl.struct(list(t.unique_key)).hash(seed=0) % n).alias("_chunk")
    return [c.drop("_chunk") for c in keyed.with_columns(part).partition_by("_chunk", maintain_order=True)]


def validate_files(
    frames: list[pl.DataFrame], t: Table, label: str, chunk_rows: int = CHUNK_ROWS
) -> tuple[list[ValidationResult], list[Any]]:
    """Validate several files of one table in one go (Great Expectations' fixed cost per
    validation, paid once instead of once per file) and split the result back per file.
    Every rule is a rule on a row or on a key within its own file (``_file_name``), so this
    equals validating each file alone. Returns one result per frame, and GE's result (one, its
    chunks' results merged: Data Docs render one page per table per call)."""
    if not frames:
        return [], []
    tagged = [f.with_columns(pl.lit(i, pl.UInt32).alias(FILE_NO)) for i, f in enumerate(frames)]
    result = validate(pl.concat(tagged, how="diagonal_relaxed"), t, label, chunk_rows)
    passed = result.passed.partition_by(FILE_NO, as_dict=True, include_key=False)
    quarantined = result.quarantined.partition_by(FILE_NO, as_dict=True, include_key=False)
    out = []
    for i, frame in enumerate(frames):
        p = passed.get((i,), result.passed.drop(FILE_NO).clear())
        q = quarantined.get((i,), result.quarantined.drop(FILE_NO).clear())
        counts: dict[str, int] = {}
        for rules in q["rules"]:
            for rule in rules.split(";"):
                counts[rule] = counts.get(rule, 0) + 1
        out.append(
            ValidationResult(
                passed=p, quarantined=q, expectations_run=result.expectations_run, failures_by_rule=counts
            )
        )
    return out, [merge_results(result.ge_results)]


def validate(frame: pl.DataFrame, t: Table, file: str, chunk_rows: int = CHUNK_ROWS) -> ValidationResult:
    """Validate ``frame`` (a reader's canonical output) against ``t``'s suite."""
    if FILE_COLUMN not in frame.columns:  # keys are unique per file; a bare frame is one file
        result = validate(frame.with_columns(pl.lit(file).alias(FILE_COLUMN)), t, file, chunk_rows)
        result.passed, result.quarantined = (
            result.passed.drop(FILE_COLUMN),
            result.quarantined.drop(FILE_COLUMN),
        )
        return result
    missing = [c for c in DETAIL_COLUMNS if c not in frame.columns]
    if missing:  # a frame not made by a reader (a test's, the benchmark's): nothing was flagged
        frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
    keyed = frame.with_row_index(ROW_KEY)
    failed: dict[int, list[dict[str, str]]] = {}
    ge_results = []
    for chunk in chunks(keyed, t, chunk_rows):
        chunk_failed, ge_result = _validate_chunk(chunk, t, file)
        failed.update(chunk_failed)
        ge_results.append(ge_result)

    counts: dict[str, int] = {}
    keys, rules, reasons = [], [], []
    for key in sorted(failed):
        metas = failed[key]
        ids = [m["rule"] for m in metas]
        for rid in ids:
            counts[rid] = counts.get(rid, 0) + 1
        keys.append(key)
        rules.append(";".join(ids))
        reasons.append(
            json.dumps(
                [
                    {"rule": m["rule"], "en": m["reason_en"], "zh": m["reason_zh"]}
                    | ({"detail": m["detail"]} if m.get("detail") else {})
                    for m in metas
                ],
                ensure_ascii=False,
            )
        )
    bad = pl.DataFrame(
        {ROW_KEY: keys, "rules": rules, "reasons": reasons},
        schema={ROW_KEY: keyed.schema[ROW_KEY], "rules": pl.String, "reasons": pl.String},
    )
    quarantined = keyed.join(bad, on=ROW_KEY, how="inner").drop(ROW_KEY)
    passed = keyed.join(bad, on=ROW_KEY, how="anti").drop(ROW_KEY)
    if passed.height + quarantined.height != frame.height:  # pragma: no cover - a bug, not data
        raise AssertionError(f"{file}: row conservation broken in validation")
    runs = len(ge_results[0].results) if ge_results else 0
    return ValidationResult(
        passed=passed,
        quarantined=quarantined,
        expectations_run=runs,
        failures_by_rule=counts,
        ge_results=ge_results,
    )
