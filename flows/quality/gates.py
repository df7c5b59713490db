"""Batch-level gates: whole-batch decisions made after row validation (pure functions).

A gate that trips rejects the batch: none of its rows load, the source keeps its
last good data, and the run ends failed with the file and the rule named.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from flows import schema

DUPLICATE_RULE = "key.unique_in_delivery"


def delivery_kind(file_name: str) -> str:
    """What makes two deliveries comparable: the file name, or the fields of it its source names
    (``Source.kind_fields``: for welfare the station). ``file_name`` is the path under the landing
    zone (``<source>/<date>/<file>``; a database table's ``<source>/<table>``), so its first part
    is the source."""
    src = schema.find_source(PurePosixPath(file_name).parts[0]) if file_name else None
    return src.kind_of(file_name) if src is not None else PurePosixPath(file_name).name


def duplicate_gate(rows: int, failures_by_rule: dict[str, int], max_share: float) -> str | None:
    dupes = failures_by_rule.get(DUPLICATE_RULE, 0)
    if rows and dupes / rows > max_share:
        return (
            f"{dupes} of {rows} rows share a key with another row of the same file "
            f"(more than the allowed {max_share:.0%}); the whole file is held back"
        )
    return None


def row_count_gate(rows: int, previous_rows: int | None, min_share: float | None) -> str | None:
    if min_share is None or not previous_rows:
        return None
    if rows < previous_rows * min_share:
        return (
            f"{rows} rows, less than {min_share:.0%} of the previous delivery's {previous_rows}; "
            "the whole file is held back"
        )
    return None
