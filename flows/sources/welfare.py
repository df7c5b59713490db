"""welfare — service-station ledgers: ``<station-code>_<YYYYMM>.xlsx`` with sheets 慰问, 体检, 救助.

A workbook gives three tables (its contract entry's ``sheets``); ``station_code`` and
``ledger_month`` come from the file name (the entry's ``file_name`` parser). Read with calamine (Rust; cached formula
values), about ten times faster than openpyxl; its cells are turned into the values
openpyxl gives (``openpyxl_value``): date cells as datetimes, whole numbers as ints.
Date columns also accept Excel serial day numbers, numeric cells in text columns become
integer text without ``.0``. ``_row_number`` is the sheet row (the header is row 1).

A sheet is turned into text column by column (``column_texts``): a column of text cells as it
is, date and number cells in one tight pass, only other cells (booleans, times, datetimes)
through ``openpyxl_value`` + ``common.cell_text`` / ``common.original_text``; ``_original`` is
built from the columns by Polars (``common.json_objects``), the same text ``json.dumps`` of
the row's cells gives (tests/sources/test_welfare_frames_frozen.py holds the frames as they
were read row by row).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from python_calamine import CalamineWorkbook

from flows import schema
from flows.errors import BatchError, safe_error_text, scrub_text
from flows.schema import Table
from flows.sources import common

SOURCE = "welfare"
CONTRACT = schema.source(SOURCE)
"""The contract entry: file naming, sheets, replace rule (flows/schema.py)."""


def openpyxl_value(value: Any) -> Any:
    """A calamine cell as openpyxl reads it: a date cell is a datetime, a whole number an int,
    an empty cell None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if type(value) is date:
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str) and value == "":
        return None
    return value


def check_xlsx(data: bytes, file: str) -> None:
    """An .xlsx is a zip holding a workbook part; calamine would also read an .xls, .xlsb or .ods
    under that name, and a CSV renamed .xlsx is no workbook at all: both are batch.structure."""
    if not data.startswith(b"PK\x03\x04"):
        what = (
            "an OLE2 file (an .xls workbook?)"
            if data.startswith(b"\xd0\xcf\x11\xe0")
            else "not a zip archive"
        )
        raise BatchError(file, common.STRUCTURE, f"not an xlsx workbook: {what}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
    except zipfile.BadZipFile as exc:
        raise BatchError(
            file, "batch.unreadable", f"not a readable xlsx workbook (damaged zip: {scrub_text(str(exc))})"
        ) from None
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise BatchError(
            file,
            common.STRUCTURE,
            "not an xlsx workbook: the zip holds no xl/workbook.xml "
            "(an .ods, .docx or other zip under an .xlsx name?)",
        )
    if "xl/workbook.bin" in names:
        raise BatchError(
            file, common.STRUCTURE, "not an xlsx workbook: an .xlsb (binary workbook) under an .xlsx name"
        )


def _read_sheet_rows(wb: CalamineWorkbook, file: str, sheet: str) -> list[list[Any]]:
    """The sheet's rows as calamine gives them (row 1 first, padded to the used range; an empty
    cell is ``""``), without the empty rows at the end."""
    try:
        rows = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except Exception as exc:  # noqa: BLE001 - a damaged sheet part: zlib, XML or zip errors
        raise BatchError(
            file, "batch.unreadable", f"sheet {sheet} cannot be read ({safe_error_text(exc)})"
        ) from None
    while rows and _is_blank_raw(rows[-1], strip=False):  # calamine pads to the used range
        rows.pop()
    return rows


def _is_blank_raw(cells: Sequence[Any], strip: bool = True) -> bool:
    """Whether a calamine row holds nothing (``strip``: nothing but whitespace): every cell an
    empty (or blank) string or None; any other value (a number, a date) is something."""
    for v in cells:
        if v is None or v == "":
            continue
        if not strip or type(v) is not str or common.normalise_str(v):
            return False
    return True


def column_texts(cells: Sequence[Any], kind: str) -> tuple[list[str | None], list[str | None]]:
    """A column of calamine cells as (``cell_text`` for ``kind``, ``original_text``) of their
    openpyxl values: text, date and number cells converted here in one pass, any other cell by
    those functions themselves."""
    if set(map(type, cells)) <= {str}:
        texts: list[str | None] = [v or None for v in cells]
        return texts, texts
    texts, originals = [], []
    dates = kind == "date"
    for v in cells:
        t = type(v)
        if t is str:
            text = original = v or None
        elif t is float and v.is_integer():
            original = str(int(v))
            text = (common.excel_serial_date(int(v)) or original) if dates else original
        elif t is float and "e" not in (r := repr(v)):  # repr is number_text's text then
            text = original = r
        elif t is date and v.year >= 1000:
            iso = v.isoformat()
            original = iso + " 00:00:00"
            text = iso if dates else original
        else:
            value = openpyxl_value(v)
            text, original = common.cell_text(value, kind), common.original_text(value)
        texts.append(text)
        originals.append(original)
    return texts, originals


_COL_NAME = re.compile(r"_col\d+#*")


def _original_keys(header: Sequence[str | None], width: int) -> list[tuple[str, bool]] | None:
    """The ``_original`` key of each of ``width`` columns and whether it is left out where the
    cell is empty (a column without a header), as the row-by-row build names them: ``_col<N>``
    for a column without a header, ``#`` added to a name already taken. None when a header
    could take a ``_col<N>`` name, where the names would depend on the row's empty cells."""
    if any(h is not None and _COL_NAME.fullmatch(h) for h in header):
        return None
    keys: list[tuple[str, bool]] = []
    taken: set[str] = set()
    for i in range(width):
        name = header[i] if i < len(header) and header[i] is not None else None
        optional = name is None
        if name is None:
            name = f"_col{i + 1}"
        while name in taken:
            name += "#"
        taken.add(name)
        keys.append((name, optional))
    return keys


def _original_rows(header: Sequence[str | None], rows: Sequence[Sequence[Any]]) -> list[str]:
    """``_original`` row by row (the general case of :func:`_original_keys`)."""
    width = len(header)
    out = []
    for cells in rows:
        cells = [openpyxl_value(v) for v in cells]
        cells += [None] * (width - len(cells))
        original: dict[str, Any] = {}
        for i, v in enumerate(cells):
            name = header[i] if i < width and header[i] is not None else None
            if name is None:
                if v is None:
                    continue
                name = f"_col{i + 1}"
            while name in original:
                name += "#"
            original[name] = common.original_text(v)
        out.append(json.dumps(original, ensure_ascii=False))
    return out


def sheet_pending(
    rows: list[list[Any]],
    table: Table,
    *,
    sheet: str,
    file: str,
    sha256: str,
    delivery: common.Delivery,
    station_code: str,
    ledger_month: str,
) -> common.PendingFrame:
    """One sheet's rows (calamine values, row 1 first), column by column, to be canonicalised
    (:func:`common.canonical_frames`)."""
    header_at = next((i for i, r in enumerate(rows) if not _is_blank_raw(r)), None)
    if header_at is None:
        raise BatchError(file, "batch.empty", f"sheet {sheet} is empty (no header row)")
    header = [common.cell_text(openpyxl_value(v), "text") for v in rows[header_at]]
    positions, factors = common.match_headers(header, table, file, where=f"sheet {sheet}")
    kinds = {c.name: c.kind for c in table.columns}
    numbers = [i + 1 for i in range(header_at + 1, len(rows)) if not _is_blank_raw(rows[i])]
    records = [rows[i - 1] for i in numbers]
    width = max([len(header), *map(len, records)])
    if any(len(r) != width for r in records):
        records = [list(r) + [""] * (width - len(r)) for r in records]
    columns = list(zip(*records, strict=True)) if records else [() for _ in range(width)]
    converted: dict[tuple[int, str], tuple[list[str | None], list[str | None]]] = {}

    def texts(i: int, kind: str) -> tuple[list[str | None], list[str | None]]:
        if (i, kind) not in converted:
            converted[i, kind] = column_texts(columns[i], kind)
        return converted[i, kind]

    values = {name: texts(i, kinds[name])[0] for name, i in positions.items()}
    keys = _original_keys(header, width)
    if keys is None:
        originals = _original_rows(header, records)
    else:
        kind_at = {i: kinds[name] for name, i in positions.items()}
        fields = [(key, texts(i, kind_at.get(i, "text"))[1], opt) for i, (key, opt) in enumerate(keys)]
        originals = common.json_objects(fields, len(records))
    raw = common.RawRows.from_columns((c.name for c in table.columns), values, numbers, originals)
    return common.pending_frame(
        table,
        raw,
        source=SOURCE,
        file_name=file,
        sha256=sha256,
        delivery_date=delivery.delivery_date,  # type: ignore[arg-type]
        factors=factors,
        constants={"station_code": station_code, "ledger_month": ledger_month},
    )


def read(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """condolence / health_checks / relief canonical frames of one workbook."""
    return common.canonical_dict(read_pending(delivery))


def read_pending(delivery: common.Delivery) -> dict[str, common.PendingFrame]:
    """:func:`read`, the frames not yet canonical (the extract canonicalises a slice of files at once)."""
    common.check_source(delivery, SOURCE)
    common.check_delivery(delivery)
    file = delivery.rel_name
    fields = CONTRACT.parse_file_name(Path(delivery.path).name)
    if fields is None:  # pragma: no cover - discover() flags these already
        raise BatchError(
            file, "batch.unknown_file", common.file_problem(SOURCE, Path(delivery.path).name) or ""
        )
    station_code, ledger_month = fields["station_code"], fields["ledger_month"]
    data = common.read_bytes(delivery)
    sha = common.sha256_bytes(data)
    check_xlsx(data, file)
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a boundary: any error becomes a line, not a crash
        raise BatchError(
            file, "batch.unreadable", f"not a readable xlsx workbook ({safe_error_text(exc)})"
        ) from None
    try:
        by_name: dict[str, list[str]] = {}
        for name in wb.sheet_names:
            by_name.setdefault(common.normalise_str(name), []).append(name)
        missing = [s for s in CONTRACT.sheet_tables if s not in by_name]
        doubled = [s for s in CONTRACT.sheet_tables if len(by_name.get(s, [])) > 1]
        # a sheet's name can be data (one sheet per person): only contract sheet names are quoted
        found = common.found_text(
            [common.normalise_str(n) for n in wb.sheet_names],
            CONTRACT.sheet_tables,
            item="sheet",
            what="contract sheet",
        )
        if missing:
            raise BatchError(file, "batch.sheets", f"missing sheet(s) {', '.join(missing)}; {found}")
        if doubled:
            raise BatchError(file, "batch.sheets", f"sheet(s) present more than once: {', '.join(doubled)}")
        out: dict[str, common.PendingFrame] = {}
        for sheet, table_name in CONTRACT.sheet_tables.items():
            rows = _read_sheet_rows(wb, file, by_name[sheet][0])
            out[table_name] = sheet_pending(
                rows,
                schema.table(SOURCE, table_name),
                sheet=sheet,
                file=file,
                sha256=sha,
                delivery=delivery,
                station_code=station_code,
                ledger_month=ledger_month,
            )
        return out
    finally:
        wb.close()
