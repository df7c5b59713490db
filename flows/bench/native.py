"""The native baseline of the pipeline benchmark: the same landing zone, native readers, the same 42 figures.

    python -m flows.bench.native LANDING WAREHOUSE.duckdb MANIFEST.json

What a competent hand-written script does with the landing zone, in one process and one DuckDB
connection, to measure the pipeline against (issue 22). It reads, normalises, flags and loads one
source at a time, in chunks of whole files (the members tables in pages), so its memory is that
of a chunk, not of the zone:

- read: workbooks with fastexcel (calamine straight to Arrow, every sheet as string columns:
  no per-cell Python), CSV with Polars ``read_csv`` after decoding the bytes once in the
  contract encoding (GB18030, UTF-8 with BOM, UTF-8), JSON Lines with ``pl.read_ndjson``, the
  members tables with ``sqlite3`` + ``pl.read_database`` (no ADBC driver nor connectorx is
  installed here, and DuckDB's ``sqlite`` extension downloads on first use); then every
  table's files at once normalised by Polars expressions (NFKC and strip, dates by coalesced
  ``strptime`` over the contract's forms, Excel serial days, amounts in 元 as exact decimals);
- flags: the contract's row rules (flows/schema.py: required, code lists, USCC and resident-ID
  check characters, union codes, phones, booleans, dates before 1949 or after their delivery
  folder, numbers, the cross-column ``Table.rules``, keys unique per file, control characters,
  JSON types) as one Polars expression per table; the flagged rows are dropped (the pipeline
  quarantines them), and a file whose duplicate keys pass the pipeline's share is dropped whole;
- load: typed columns, pseudonyms (HMAC of each distinct value once per table, joined back), the
  migrations' DDL, one ``INSERT`` per raw table and chunk;
- sql: the SQL dbt compiled for every model (from a pipeline run's ``manifest.json``), as
  ``CREATE TABLE … AS`` in dependency order, then the figures.

No expectations, no quarantine table, no ledger, no Prefect, no dbt process. Prints JSON: each
stage's wall and CPU seconds, rows, peak RSS, the rows each rule-flag pass dropped, and the figures.
Not reproduced (none occurs in the demo zone): the structural checks of a delivery (wrong
encoding, ragged CSV rows, JSON arrays, blank records counted in row numbers), the row-count gate.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import resource
import sqlite3
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import fastexcel
import polars as pl

from flows import schema
from flows.bench.baseline import BENCH_KEY, figures_of, script_main, transform
from flows.checksums import resident_id_valid_expr, union_code_valid_expr, uscc_valid_expr
from flows.sources import common
from flows.warehouse.ddl import RAW_SCHEMA
from flows.warehouse.migrations import MIGRATIONS

MAX_DUPLICATE_SHARE = 0.05
"""The pipeline's default ``max_duplicate_key_share`` (flows/settings.py)."""
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
BOOLS = {"csv": common.CSV_BOOLS, "xlsx": common.CSV_BOOLS, "db": common.DB_BOOLS}
_CONDITION = re.compile(r'^(\w+)(==|!=)"(.*)"$')


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process, all threads (Polars' and DuckDB's pools included)."""
    return time.process_time()


# --------------------------------------------------------------------- read
def _meta(frame: pl.DataFrame, delivery: common.Delivery, sha: str, first_row: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(delivery.source).alias("_source"),
        pl.lit(delivery.rel_name).alias("_file_name"),
        pl.lit(sha).alias("_file_sha256"),
        pl.lit(delivery.delivery_date.isoformat()).alias("_delivery_date"),  # type: ignore[union-attr]
        pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias("_row_number"),
    )


def _by_header(frame: pl.DataFrame, t: schema.Table) -> pl.DataFrame:
    """Contract columns by their (normalised) headers, and ``_factor_<amount column>`` (万元: 10000)."""
    keys = {common.header_key(h): h for h in frame.columns}
    out: list[pl.Expr] = []
    for c in t.columns:
        wanted = {common.header_key(c.header): 1}
        if c.kind == "amount":
            wanted = {common.header_key(c.header + s): f for s, f in common.AMOUNT_SUFFIXES.items()}
        found = [(keys[k], f) for k, f in wanted.items() if k in keys]
        if len(found) != 1:
            raise ValueError(f"{t.source}.{t.name}: column {c.header} missing or doubled")
        out.append(pl.col(found[0][0]).cast(pl.String).alias(c.name))
        if c.kind == "amount":
            out.append(pl.lit(found[0][1], dtype=pl.Int64).alias(f"_factor_{c.name}"))
    return frame.select(out)


def _read_csv(delivery: common.Delivery, data: bytes, t: schema.Table) -> pl.DataFrame:
    text = data.decode(schema.source(delivery.source).encoding or "utf-8").removeprefix("\ufeff")
    frame = pl.read_csv(text.encode("utf-8"), infer_schema=False)
    return _by_header(frame, t)


def _read_jsonl(data: bytes, t: schema.Table) -> pl.DataFrame:
    """Every contract column as text, and ``_type_errors``: the columns whose JSON type is wrong
    (Polars infers one type per column: a text column read as numbers, an integer column read as
    text or fractions, a boolean column read as anything else)."""
    frame = pl.read_ndjson(data, infer_schema_length=None)
    by_key = {common.header_key(k): k for k in frame.columns}
    cols: list[pl.Expr] = []
    wrong: list[pl.Expr] = []
    for c in t.columns:
        name = by_key.get(common.header_key(c.header))
        if name is None:
            cols.append(pl.lit(None, dtype=pl.String).alias(c.name))
            continue
        dtype = frame.schema[name]
        if c.kind == "int":
            ok = dtype.is_integer()
        elif c.kind == "bool":
            ok = dtype == pl.Boolean
        elif c.kind == "amount":
            ok = dtype.is_numeric() or dtype == pl.String
        else:
            ok = dtype == pl.String
        if not ok:
            wrong.append(pl.when(pl.col(name).is_not_null()).then(pl.lit(c.name)))
        cols.append(pl.col(name).cast(pl.String).alias(c.name))
    errors = pl.concat_str(wrong, separator=",", ignore_nulls=True) if wrong else pl.lit(None, pl.String)
    return frame.select(*cols, pl.when(errors != "").then(errors).alias("_type_errors"))


def _read_workbook(data: bytes) -> dict[str, pl.DataFrame]:
    """Each sheet's table as string columns, straight from calamine to Arrow."""
    reader = fastexcel.read_excel(data)
    src = schema.source("welfare")
    out: dict[str, pl.DataFrame] = {}
    for sheet, table_name in src.sheet_tables.items():
        frame = reader.load_sheet_by_name(sheet, dtypes="string").to_polars()
        t = schema.table("welfare", table_name)
        out[table_name] = _by_header(frame, t).with_row_index("_index")
    return out


CHUNK_ROWS = 1_000_000
"""The script reads, flags and loads about this many rows at a time (whole files; the members tables
in pages of this many): its memory is that of a chunk, not of a source or of the zone."""

Raw = dict[str, list[pl.DataFrame]]
"""Raw table -> raw text frames (contract columns, file lineage)."""


def _read_file(delivery: common.Delivery, source: str) -> tuple[Raw, list[dict[str, Any]]]:
    """The raw text frames of one delivered file; for a workbook, its row of welfare's register."""
    frames: Raw = {}
    src = schema.source(source)
    data = Path(delivery.path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if src.sheets:
        fields = src.parse_file_name(Path(delivery.path).name) or {}
        for name, frame in _read_workbook(data).items():
            keep = frame.filter(~pl.all_horizontal(pl.exclude("_index", "^_factor_.*$").is_null()))
            part = _meta(keep.drop("_index"), delivery, sha, 0).with_columns(
                (keep["_index"].cast(pl.Int64) + 2).alias("_row_number"),
                *(pl.lit(v).alias(k) for k, v in fields.items()),
            )
            frames.setdefault(schema.table(source, name).raw_table, []).append(part)
        row = {
            **fields,
            "_load_id": sha,
            "_file_name": delivery.rel_name,
            "_file_sha256": sha,
            "_delivery_date": delivery.delivery_date,
        }
        return frames, [row]
    t = common.table_for_file(source, Path(delivery.path).name)
    if t is not None:
        frame = _read_jsonl(data, t) if src.json_types else _read_csv(delivery, data, t)
        frames[t.raw_table] = [_meta(frame, delivery, sha, 1 if src.json_types else 2)]
    return frames, []


def read_source(
    landing: Path, source: str, rows: int | None = None
) -> Iterator[tuple[Raw, list[dict[str, Any]]]]:
    """``source``'s files, a chunk of whole files of about ``rows`` rows at a time (None: all at
    once): their raw text frames and, for welfare, their rows of its register of workbooks."""
    frames: Raw = {}
    register: list[dict[str, Any]] = []
    held = 0
    for delivery in common.discover(landing, source):
        if delivery.problem or delivery.delivery_date is None:
            continue  # the pipeline reports these and loads nothing of them
        got, rows_of_register = _read_file(delivery, source)
        register += rows_of_register
        for raw_table, parts in got.items():
            frames.setdefault(raw_table, []).extend(parts)
            held += sum(p.height for p in parts)
        if rows is not None and held >= rows:
            yield frames, register
            frames, register, held = {}, [], 0
    if frames or register:
        yield frames, register


def read_members(landing: Path, rows: int | None = None) -> Iterator[tuple[Raw, list[dict[str, Any]]]]:
    """The members tables as raw text, in pages of ``rows`` rows (None: each table at once); none
    without ``members.sqlite``."""
    db = landing / common.MEMBERS_FILE
    if not db.exists():
        return
    conn = sqlite3.connect(db)
    try:
        for t in schema.tables_of("members"):
            names = ", ".join(c.name for c in t.columns)
            query = f"SELECT {names} FROM {t.name} ORDER BY updated_at, {t.key[0]}"
            pages = (
                [pl.read_database(query, conn, infer_schema_length=None)]
                if rows is None
                else pl.read_database(
                    query, conn, iter_batches=True, batch_size=rows, infer_schema_length=None
                )
            )
            first = 1
            for page in pages:
                frame = page.select(pl.all().cast(pl.String))
                yield (
                    {
                        t.raw_table: [
                            frame.with_columns(
                                pl.lit("members").alias("_source"),
                                pl.lit(f"members/{t.name}").alias("_file_name"),
                                pl.lit("members").alias("_file_sha256"),
                                pl.lit(date.today().isoformat()).alias("_delivery_date"),
                                pl.int_range(first, first + frame.height, dtype=pl.Int64).alias(
                                    "_row_number"
                                ),
                            )
                        ]
                    },
                    [],
                )
                first += frame.height
    finally:
        conn.close()


SOURCES = (*schema.FILE_SOURCES, "members")
"""What the script reads, one source at a time."""


def read_raw(
    landing: Path, source: str, rows: int | None = None
) -> Iterator[tuple[Raw, list[dict[str, Any]]]]:
    """:func:`read_source` or :func:`read_members`, in chunks of about ``rows`` rows."""
    return read_members(landing, rows) if source == "members" else read_source(landing, source, rows)


# ---------------------------------------------------------------- normalise
def _text(e: pl.Expr) -> pl.Expr:
    t = e.str.normalize("NFKC").str.strip_chars(common.STRIP_CHARS)
    return pl.when(t != "").then(t)


def _date(t: pl.Expr, serials: bool) -> pl.Expr:
    """The contract's date forms by coalesced ``strptime`` -> ``YYYY-MM-DD``; else the text as is."""
    bare = t.str.replace(r"^(\d{4}[-/]\d{1,2}[-/]\d{1,2}) 00:00(?::00)?$", "${1}")
    parsed = [bare.str.strptime(pl.Date, f, strict=False, exact=True) for f in DATE_FORMATS[:3]]
    parsed.append(
        pl.when(bare.str.len_bytes() == 8).then(
            bare.str.strptime(pl.Date, "%Y%m%d", strict=False, exact=True)
        )
    )
    if serials:  # an Excel serial day number (a date cell's value)
        serial = bare.str.extract(r"^(\d{1,7})$", 1).cast(pl.Int64, strict=False)
        ok = (serial >= 1) & (serial <= common.EXCEL_MAX_SERIAL)
        parsed.append(pl.when(ok).then(pl.lit(common.EXCEL_EPOCH) + pl.duration(days=serial)))
    day = pl.coalesce(parsed)
    return pl.when(day.is_not_null()).then(day.dt.to_string("%Y-%m-%d")).otherwise(t)


def _timestamp(t: pl.Expr) -> pl.Expr:
    bare = t.str.replace(r"\.\d+$", "").str.replace(r"^(\S+)T", "${1} ")
    parsed = [bare.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in TIMESTAMP_FORMATS]
    ts = pl.coalesce(parsed)
    return pl.when(ts.is_not_null()).then(ts.dt.to_string("%Y-%m-%d %H:%M:%S")).otherwise(t)


def _plain(t: pl.Expr) -> pl.Expr:
    return (
        pl.when(t.str.contains(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"))
        .then(t.str.replace_all(",", ""))
        .otherwise(t)
    )


def _int(t: pl.Expr) -> pl.Expr:
    p = _plain(t)
    return pl.coalesce(p.str.extract(r"^(-?\d+)(?:\.0+)?$", 1), t)


def _amount(t: pl.Expr, factor: pl.Expr) -> pl.Expr:
    number = (
        _plain(t).str.extract(r"^(-?\d{1,24}(?:\.\d{1,10})?)\d*$", 1).cast(pl.Decimal(38, 10), strict=False)
    )
    yuan = (number * factor.cast(pl.Decimal(38, 0))).round(2, mode="half_away_from_zero")
    return pl.coalesce(yuan.cast(pl.Decimal(38, 2)).cast(pl.String), t)


def normalise(frame: pl.DataFrame, t: schema.Table) -> pl.DataFrame:
    """The canonical text of every contract column (flows/schema.py's kinds), and
    ``_control_chars``: whether a value as delivered holds a control character."""
    src = schema.source(t.source)
    kind = "db" if t.source == "members" else "xlsx" if src.sheets else "json" if src.json_types else "csv"
    control = common.CONTROL_RE if kind == "csv" else f"{common.CONTROL_RE}|{common.LINE_BREAK_RE}"
    exprs: list[pl.Expr] = []
    for c in t.all_columns:
        v = _text(pl.col(c.name))
        if c.kind in common.UPPER_KINDS:
            v = v.str.to_uppercase()
        elif c.kind == "date":
            v = _date(v, serials=kind == "xlsx")
        elif c.kind == "timestamp":
            v = _timestamp(v)
        elif c.kind == "int":
            v = _int(v)
        elif c.kind == "amount":
            v = _amount(v, pl.col(f"_factor_{c.name}") if f"_factor_{c.name}" in frame.columns else pl.lit(1))
        elif c.kind == "bool":
            v = v.replace(dict(BOOLS[kind])) if kind in BOOLS else v  # JSON: true/false already
        exprs.append(v.alias(c.name))
    hit = pl.any_horizontal(pl.col(c.name).str.contains(control).fill_null(False) for c in t.all_columns)
    meta = [m for m in ("_type_errors",) if m in frame.columns]
    return (
        frame.lazy()
        .select(
            *exprs,
            "_source",
            "_file_name",
            "_file_sha256",
            "_delivery_date",
            "_row_number",
            *meta,
            hit.alias("_control_chars"),
        )
        .collect()
    )


def normalised(raw: Raw) -> dict[str, pl.DataFrame]:
    """Raw table -> the canonical frame of its raw frames (normalised at once)."""
    return {
        t.raw_table: normalise(pl.concat(raw[t.raw_table], how="diagonal_relaxed"), t)
        for t in schema.TABLES
        if raw.get(t.raw_table)
    }


def read_tables(landing: Path) -> tuple[dict[str, pl.DataFrame], list[dict[str, Any]]]:
    """Raw table -> the canonical frame of all its files (normalised once per table)."""
    out: dict[str, pl.DataFrame] = {}
    register: list[dict[str, Any]] = []
    for source in SOURCES:
        for raw, rows in read_raw(landing, source):
            register += rows
            out |= normalised(raw)
    return out, register


# -------------------------------------------------------------------- flags
def _day(e: pl.Expr) -> pl.Expr:
    return e.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False, exact=True)


def _condition(text: str) -> pl.Expr:
    """A rule's pandas ``row_condition`` (``col=="v"`` or ``col!="v"``) as Polars (null != v)."""
    m = _CONDITION.match(text)
    if m is None:
        raise ValueError(f"row_condition not understood: {text}")
    col, op, value = m.groups()
    return (pl.col(col) == value).fill_null(False) if op == "==" else (pl.col(col) != value).fill_null(True)


def _rule(r: schema.Rule) -> pl.Expr:
    """A row breaks ``r`` (a ``Table.rules`` entry)."""
    a = dict(r.args)
    cond = _condition(a["row_condition"]) if "row_condition" in a else pl.lit(True)
    if r.expectation == "expect_column_values_to_not_be_null":
        return cond & pl.col(a["column"]).is_null()
    if r.expectation == "expect_column_values_to_be_null":
        return cond & pl.col(a["column"]).is_not_null()
    if r.expectation == "expect_column_values_to_match_regex":
        col = pl.col(a["column"])
        return cond & col.is_not_null() & ~col.str.contains(a["regex"]).fill_null(False)
    if r.expectation == "expect_column_pair_values_to_be_date_not_after":
        return cond & (_day(pl.col(a["column_A"])) > _day(pl.col(a["column_B"]))).fill_null(False)
    raise ValueError(f"{r.id}: expectation {r.expectation} not translated")


def _column_fails(c: schema.Column) -> list[pl.Expr]:
    """Ways a value of ``c`` breaks its kind's rules (null is only the required rule's business)."""
    v = pl.col(c.name)
    out: list[pl.Expr] = [v.is_null()] if c.required else []
    bad: pl.Expr | None = None
    if c.kind == "code":
        bad = ~v.is_in(list(c.allowed))
    elif c.kind == "uscc":
        bad = ~uscc_valid_expr(v)
    elif c.kind == "resident_id":
        bad = ~resident_id_valid_expr(v)
    elif c.kind == "payee_code":
        bad = ~(uscc_valid_expr(v) | union_code_valid_expr(v))
    elif c.kind == "union_code":
        bad = ~union_code_valid_expr(v)
    elif c.kind == "phone":
        bad = ~v.str.contains(r"^\d{11}$")
    elif c.kind == "bool":
        bad = ~v.is_in(["true", "false"])
    elif c.kind in ("date", "timestamp"):
        pattern = r"^\d{4}-\d{2}-\d{2}$" if c.kind == "date" else r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
        fmt = "%Y-%m-%d" if c.kind == "date" else "%Y-%m-%d %H:%M:%S"
        real = v.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True).is_not_null()
        bad = ~(v.str.contains(pattern) & real)
        day = _day(v)
        out += [
            (day < date(1949, 1, 1)).fill_null(False),
            (day > _day(pl.col("_delivery_date"))).fill_null(False),
        ]
    elif c.kind in ("int", "amount"):
        pattern = r"^-?\d{1,18}$" if c.kind == "int" else r"^-?\d{1,16}(?:\.\d+)?$"
        ok = v.str.contains(pattern)
        if c.min_value is not None:
            ok = ok & (v.cast(pl.Float64, strict=False) >= c.min_value)
        bad = ~ok
    if bad is not None:
        out.append(v.is_not_null() & bad.fill_null(True))
    return out


def flag_rows(frame: pl.DataFrame, t: schema.Table) -> tuple[pl.DataFrame, int]:
    """The rows of ``frame`` that break no rule of the contract, and how many were dropped."""
    fails: list[pl.Expr] = [pl.col("_control_chars")]
    if "_type_errors" in frame.columns:
        fails.append(pl.col("_type_errors").is_not_null())
    for c in t.columns:
        fails += _column_fails(c)
    fails += [_rule(r) for r in t.rules]
    dup = pl.lit(False)
    if t.unique_key:
        keyed = ~pl.all_horizontal(pl.col(k).is_null() for k in t.unique_key)
        dup = keyed & (pl.len().over("_file_name", *t.unique_key) > 1)
    flagged = (
        frame.lazy()
        .with_columns(pl.any_horizontal(fails).alias("_bad"), dup.alias("_dup"))
        .with_columns(  # the pipeline's duplicate gate: too many shared keys hold back the whole file
            (
                pl.col("_dup").sum().over("_file_name") / pl.len().over("_file_name") > MAX_DUPLICATE_SHARE
            ).alias("_held")
        )
        .filter(~(pl.col("_bad") | pl.col("_dup") | pl.col("_held")))
        .drop("_bad", "_dup", "_held")
        .collect()
    )
    return flagged, frame.height - flagged.height


# --------------------------------------------------------------------- load
def pseudonymise(frame: pl.DataFrame, t: schema.Table, key: bytes) -> pl.DataFrame:
    """``<column>_pseudonym`` of every personal column: an HMAC per distinct value, joined back."""
    for c in schema.personal_columns(t):
        distinct = frame.get_column(c).drop_nulls().unique()
        digests = [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in distinct]
        lookup = pl.DataFrame(
            {c: distinct, f"{c}_pseudonym": digests}, schema={c: pl.String, f"{c}_pseudonym": pl.String}
        )
        frame = frame.join(lookup, on=c, how="left", nulls_equal=False, coalesce=True)
    return frame


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The pipeline's DDL: raw tables, empty ops tables."""
    for migration in MIGRATIONS:
        for statement in migration.statements():
            con.execute(statement)


def load(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame], register: list[dict[str, Any]]
) -> int:
    rows = 0
    by_raw = {t.raw_table: t for t in schema.TABLES}
    for raw_table, frame in tables.items():
        t = by_raw[raw_table]
        typed = pseudonymise(common.to_typed(frame, t), t, BENCH_KEY).with_columns(
            pl.col("_file_sha256").alias("_load_id")
        )
        con.register("_frame", typed.to_arrow())
        con.execute(f"INSERT INTO {RAW_SCHEMA}.{raw_table} BY NAME SELECT * FROM _frame")
        con.unregister("_frame")
        rows += typed.height
    if register:
        src = schema.source("welfare")
        con.register("_wb", pl.DataFrame(register).to_arrow())
        con.execute(f"INSERT INTO {RAW_SCHEMA}.{src.register_table} BY NAME SELECT * FROM _wb")
        con.unregister("_wb")
    return rows


# ---------------------------------------------------------------------- run
class _Stages:
    """Wall and CPU seconds per stage, summed over the sources (each is read, flagged and loaded
    before the next is read), and the process's peak memory when each stage last ended."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def timed(self, name: str, **extra: int) -> Iterator[None]:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        yield
        stage = self.stages.setdefault(name, {"stage": name, "seconds": 0.0, "cpu_seconds": 0.0})
        stage["seconds"] += time.perf_counter() - wall0
        stage["cpu_seconds"] += cpu_seconds() - cpu0
        stage["peak_mb"] = peak_mb()
        for k, v in extra.items():
            stage[k] = stage.get(k, 0) + v


def run(landing: Path, warehouse: Path, manifest_path: Path) -> dict[str, Any]:
    """Each source read, normalised, flagged and loaded in turn, a chunk of about ``CHUNK_ROWS``
    rows at a time (memory: a chunk's), then the models' SQL and the figures; stages are summed
    over the chunks."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    timer = _Stages()
    dropped: dict[str, int] = {}
    by_raw = {t.raw_table: t for t in schema.TABLES}
    con = duckdb.connect(str(warehouse))
    rows_read = rows_loaded = 0
    with timer.timed("load"):
        create_tables(con)
    for source in SOURCES:
        chunks = read_raw(landing, source, CHUNK_ROWS)
        while True:
            with timer.timed("read"):
                chunk = next(chunks, None)
                tables, register = ({}, []) if chunk is None else (normalised(chunk[0]), chunk[1])
            if chunk is None:
                break
            rows_read += sum(f.height for f in tables.values())
            timer.stages["read"]["rows"] = rows_read
            with timer.timed("flags"):
                for raw_table in list(tables):
                    tables[raw_table], n = flag_rows(tables[raw_table], by_raw[raw_table])
                    dropped[raw_table] = dropped.get(raw_table, 0) + n
            timer.stages["flags"]["rows"] = rows_read
            with timer.timed("load"):
                rows_loaded += load(con, tables, register)
                del tables
            timer.stages["load"]["rows"] = rows_loaded
    timer.stages["flags"]["dropped"] = sum(dropped.values())
    with timer.timed("sql"):
        built = transform(con, manifest)
        figures = figures_of(con)
        con.close()
    timer.stages["sql"] |= {"rows": rows_loaded, "models": built}
    stages = [timer.stages[name] for name in ("read", "flags", "load", "sql")]
    return {"stages": stages, "dropped": {k: v for k, v in dropped.items() if v}, "figures": figures}


def main(argv: list[str] | None = None) -> int:
    return script_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
