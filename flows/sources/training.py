"""training — training platform export: sessions.jsonl, attendance.jsonl, competitions.jsonl (JSON Lines, UTF-8).

One JSON object per line; ``_row_number`` is the line number (from 1). A line
that is not valid JSON, or whose value is not an object, becomes a
``_parse_error`` row. JSON booleans become ``true``/``false``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows.errors import BatchError
from flows.schema import Table
from flows.sources import common

SOURCE = "training"


def json_text(value: Any) -> str | None:
    """A JSON value as raw text: strings as is, booleans true/false, numbers as written, others as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def read_jsonl(delivery: common.Delivery, table: Table) -> pl.DataFrame:
    file = delivery.rel_name
    data = common.read_bytes(delivery)
    sha = common.sha256_bytes(data)
    text = common.decode(data, delivery.source, file)
    by_key = {common.header_key(c.header): c.name for c in table.columns}
    rows = common.RawRows.empty(c.name for c in table.columns)
    seen_keys: set[str] = set()
    all_keys: set[str] = set()
    objects = 0
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.add_unparseable(number, f"invalid JSON: {exc.msg} (column {exc.colno})", line)
            continue
        except (ValueError, RecursionError) as exc:
            # valid JSON syntax that Python still refuses: an integer over the int-conversion
            # digit limit (ValueError), nesting deeper than the recursion limit (RecursionError)
            rows.add_unparseable(number, f"invalid JSON: {type(exc).__name__}: {exc}", line)
            continue
        if not isinstance(value, dict):
            rows.add_unparseable(number, f"JSON value is not an object but {type(value).__name__}", line)
            continue
        objects += 1
        values: dict[str, str | None] = {}
        for key, v in value.items():
            all_keys.add(common.header_key(str(key)))
            name = by_key.get(common.header_key(str(key)))
            if name is not None:
                seen_keys.add(name)
                values[name] = json_text(v)
        rows.add(number, values, {str(k): json_text(v) for k, v in value.items()})
    if not rows.row_numbers:
        raise BatchError(file, "batch.empty", "the file has no records (only blank lines)")
    if objects:
        missing = [c.header for c in table.columns if c.required and c.name not in seen_keys]
        if missing:
            raise BatchError(file, "batch.columns",
                             f"missing column(s) {', '.join(missing)} (in every record); "
                             f"found: {', '.join(sorted(all_keys)) or '(none)'}")
    return common.canonical_frame(table, rows, source=delivery.source, file_name=file, sha256=sha,
                                  delivery_date=delivery.delivery_date,  # type: ignore[arg-type]
                                  bools=common.JSON_BOOLS)


def read(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """Table name -> canonical frame of one delivered file; BatchError for batch-level problems."""
    common.check_source(delivery, SOURCE)
    common.check_delivery(delivery)
    table = common.table_for_file(SOURCE, Path(delivery.path).name)
    if table is None:  # pragma: no cover - discover() flags these already
        raise BatchError(delivery.rel_name, "batch.unknown_file", "unknown file name")
    return {table.name: read_jsonl(delivery, table)}
