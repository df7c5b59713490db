"""One delivered file through the quality gate, as pure functions (no Prefect, no warehouse).

``read_delivery`` reads a file into its canonical frames (or raises the
BatchError that rejects it whole); ``validate`` (flows.quality.runner) splits a
table's rows; ``gate`` applies the batch gates to the result. The nightly flow's tasks call exactly these, and so do
the malformed-input corpus tests; ``screen_delivery`` chains them per file.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from flows import schema
from flows.errors import BatchError
from flows.quality.gates import duplicate_gate, row_count_gate
from flows.quality.runner import ValidationResult, validate
from flows.settings import QualitySettings
from flows.sources import common

WHOLE_FILE = "*"
"""Table name of a file rejected as a whole (no table was read)."""


def read_delivery(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """Table name -> canonical frame; BatchError when the file cannot be taken at all."""
    if delivery.problem:
        raise BatchError(delivery.rel_name, delivery.rule, delivery.problem)
    frames: dict[str, pl.DataFrame] = schema.source(delivery.source).read(delivery)  # its contract reader
    return frames


def read_delivery_pending(delivery: common.Delivery) -> dict[str, common.PendingFrame | pl.DataFrame]:
    """:func:`read_delivery`, the frames not yet canonical where the reader can leave them so
    (``common.canonical_frames`` then canonicalises many files' at once)."""
    if delivery.problem:
        raise BatchError(delivery.rel_name, delivery.rule, delivery.problem)
    parts: dict[str, common.PendingFrame | pl.DataFrame] = schema.source(delivery.source).read_pending(
        delivery
    )
    return parts


def gate(
    result: ValidationResult, file_name: str, quality: QualitySettings, previous_rows: int | None = None
) -> BatchError | None:
    """The batch gates on a validated batch: the error that holds it back whole, or None."""
    rows = result.passed.height + result.quarantined.height
    for rule, message in (
        (
            "batch.duplicate_keys",
            duplicate_gate(rows, result.failures_by_rule, quality.max_duplicate_key_share),
        ),
        ("batch.row_count_drop", row_count_gate(rows, previous_rows, quality.min_row_share)),
    ):
        if message:
            return BatchError(file_name, rule, message)
    return None


@dataclass
class Outcome:
    """What the gate decided for one table of one file (or for a whole file)."""

    file_name: str
    table_name: str
    rows_read: int
    result: ValidationResult | None = None
    error: BatchError | None = None

    @property
    def rows_loaded(self) -> int:
        return self.result.passed.height if self.result is not None else 0

    @property
    def rows_quarantined(self) -> int:
        return self.result.quarantined.height if self.result is not None else 0


def screen_delivery(
    delivery: common.Delivery, quality: QualitySettings, previous_rows: dict[str, int] | None = None
) -> list[Outcome]:
    """Every table of one delivered file through the gate."""
    try:
        frames = read_delivery(delivery)
    except BatchError as err:
        return [Outcome(delivery.rel_name, WHOLE_FILE, 0, error=err)]
    out = []
    for name, frame in frames.items():
        try:
            result = validate(frame, schema.table(delivery.source, name), delivery.rel_name)
        except BatchError as err:
            out.append(Outcome(delivery.rel_name, name, frame.height, error=err))
            continue
        error = gate(result, delivery.rel_name, quality, (previous_rows or {}).get(name))
        out.append(
            Outcome(delivery.rel_name, name, frame.height, result=None if error else result, error=error)
        )
    return out
