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


TEXT_KINDS = frozenset(
    {"text", "code", "uscc", "resident_id", "union_code", "payee_code", "date", "timestamp", "phone"}
)
JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number with a fraction or exponent",
}


def type_problem(kind: str, value: Any) -> str | None:
    """Why a JSON value does not have the type its column's kind wants, or None. Checked on
    the value as JSON gives it (contract v1.1): text wants a string, an integer a JSON integer
    (not ``"120"``, ``1e3`` or ``12.5``), a boolean ``true``/``false``; null is for the
    column's own ``required`` rule."""
    if value is None:
        return None
    if kind in TEXT_KINDS:
        wanted, ok = "a string", isinstance(value, str)
    elif kind == "int":
        wanted, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif kind == "bool":
        wanted, ok = "true or false", isinstance(value, bool)
    elif kind == "amount":
        wanted, ok = "a number", isinstance(value, int | float | str) and not isinstance(value, bool)
    else:
        return None
    if ok:
        return None
    return f"{JSON_TYPE_NAMES.get(type(value), type(value).__name__)} where {wanted} is wanted"


def _structure(text: str, file: str) -> None:
    """A file that is one JSON document (an array, a pretty-printed object) is not JSON Lines."""
    body = text.strip()
    if not body.startswith(("[", "{")) or "\n" not in body and body.startswith("{"):
        return
    try:
        whole = json.loads(body)
    except (ValueError, RecursionError):
        return
    if isinstance(whole, list):
        raise BatchError(
            file,
            common.STRUCTURE,
            f"the file is one JSON array of {len(whole)} items, not JSON Lines (one object per line)",
        )
    if isinstance(whole, dict) and "\n" in body:
        raise BatchError(
            file,
            common.STRUCTURE,
            "the file is one pretty-printed JSON object, not JSON Lines (one object per line)",
        )


def read_jsonl(delivery: common.Delivery, table: Table) -> common.PendingFrame:
    """One JSON Lines delivery of ``table``, to be canonicalised (:func:`common.canonical_frames`)."""
    file = delivery.rel_name
    data = common.read_bytes(delivery)
    sha = common.sha256_bytes(data)
    common.check_text_file(data, file)
    text = common.decode(data, delivery.source, file)
    _structure(text, file)
    kinds = {c.name: c.kind for c in table.columns}
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
        wrong: list[str] = []
        for key, v in value.items():
            all_keys.add(common.header_key(str(key)))
            name = by_key.get(common.header_key(str(key)))
            if name is not None:
                seen_keys.add(name)
                values[name] = json_text(v)
                problem = type_problem(kinds[name], v)
                if problem:
                    wrong.append(f"{name}: {problem}")
        rows.add(
            number,
            values,
            {str(k): json_text(v) for k, v in value.items()},
            type_error="; ".join(wrong) or None,
        )
    if not rows.row_numbers:
        raise BatchError(file, "batch.empty", "the file has no records (only blank lines)")
    if not objects:
        raise BatchError(
            file,
            common.STRUCTURE,
            f"not one of its {len(rows.row_numbers)} non-blank lines is a JSON "
            "object: the file is not JSON Lines of this table",
        )
    if objects:
        missing = [c.header for c in table.columns if c.required and c.name not in seen_keys]
        if missing:
            raise BatchError(
                file,
                "batch.columns",
                f"missing column(s) {', '.join(missing)} (in every record); "
                # other keys are counted, not quoted: {"<a name>": …} makes a name a key
                + common.found_text(
                    sorted(all_keys), by_key, item="key", what="contract key", positions=False
                ),
            )
    return common.pending_frame(
        table,
        rows,
        source=delivery.source,
        file_name=file,
        sha256=sha,
        delivery_date=delivery.delivery_date,  # type: ignore[arg-type]
        bools=common.JSON_BOOLS,
    )


def read(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """Table name -> canonical frame of one delivered file; BatchError for batch-level problems."""
    return common.canonical_dict(read_pending(delivery))


def read_pending(delivery: common.Delivery) -> dict[str, common.PendingFrame]:
    """:func:`read`, the frames not yet canonical (the extract canonicalises a slice of files at once)."""
    common.check_source(delivery, SOURCE)
    common.check_delivery(delivery)
    table = common.table_for_file(SOURCE, Path(delivery.path).name)
    if table is None:  # pragma: no cover - discover() flags these already
        raise BatchError(delivery.rel_name, "batch.unknown_file", "unknown file name")
    return {table.name: read_jsonl(delivery, table)}
