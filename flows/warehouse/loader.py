"""Load validated batches into ``raw`` with their quarantine and ledger rows.

Everything a slice of one source writes — each (file, table)'s raw rows, quarantine rows and
ledger entry — goes in one transaction (:func:`write_slice`), one insert per table, so a crash
leaves either all of it or none. A (source, table, SHA-256) already in the ledger is never
loaded again, which makes re-runs and byte-identical re-deliveries change nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows import faults
from flows.errors import WarehouseWriteError, safe_error_text
from flows.quality.gates import delivery_kind
from flows.schema import SOURCE_ENTRIES, TABLES, Table, identifier, relation, source

from .ddl import OPS_SCHEMA, RAW_SCHEMA, personal_columns


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    source: str
    table_name: str
    file_name: str
    file_sha256: str
    delivery_date: date | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    status: str  # loaded | rejected
    error_rule: str | None = None
    error_message: str | None = None

    @property
    def load_id(self) -> str:
        key = f"{self.source}|{self.table_name}|{self.file_name}|{self.file_sha256}|{self.status}"
        return hashlib.sha256(key.encode()).hexdigest()[:20]


def ledger_of_run(engine: Engine, run_id: str) -> list[LedgerEntry]:
    """The ledger entries a run wrote, in the order it wrote them."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_id, source, table_name, file_name, file_sha256, delivery_date, rows_read, "
                "rows_loaded, rows_quarantined, status, error_rule, error_message "
                f"FROM {OPS_SCHEMA}.load_ledger WHERE run_id = :r ORDER BY loaded_at, file_name, table_name"
            ),
            {"r": run_id},
        ).all()
    return [LedgerEntry(*r) for r in rows]


def already_seen(engine: Engine, source: str) -> set[tuple[str, str, str]]:
    """(table, sha256, status) of every ledger entry of ``source``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT table_name, file_sha256, status FROM {OPS_SCHEMA}.load_ledger WHERE source = :s"
            ),
            {"s": source},
        ).all()
    return {(r[0], r[1], r[2]) for r in rows}


def written(engine: Engine, source: str, run_id: str) -> set[tuple[str, str]]:
    """(table, sha256) of ``source`` batches a retried load must not write again: those loaded
    by any run, and those this run already recorded as rejected."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT table_name, file_sha256 FROM {OPS_SCHEMA}.load_ledger WHERE source = :s "
                "AND (status = 'loaded' OR run_id = :r)"
            ),
            {"s": source, "r": run_id},
        ).all()
    return {(r[0], r[1]) for r in rows}


def previous_rows(engine: Engine, source: str) -> dict[tuple[str, str], int]:
    """Rows read by the newest loaded delivery of each (table, kind) of ``source``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT table_name, file_name, rows_read FROM {OPS_SCHEMA}.load_ledger "
                "WHERE source = :s AND status = 'loaded' ORDER BY delivery_date, loaded_at, file_name"
            ),
            {"s": source},
        ).all()
    return {(r[0], delivery_kind(r[1])): int(r[2]) for r in rows}


def insert_frame(conn: Connection, target: str, frame: pl.DataFrame) -> None:
    """Append ``frame`` to the table ``target`` (``schema.table``); names are checked as SQL
    identifiers before they reach the statement.

    A value the warehouse refuses is a :class:`WarehouseWriteError` naming the table and, when
    the database tells (PostgreSQL's COPY does), the file, row and column, never the value:
    the COPY error's CONTEXT line quotes the whole row, DuckDB's conversion errors the value,
    and this text would reach ops.runs, the console, Prefect and the notification. A lost
    connection is raised as it is (its text holds no data, and retries look at its type)."""
    if frame.height == 0:
        return
    target = relation(target)
    cols = ", ".join(identifier(c) for c in frame.columns)
    driver = conn.connection.driver_connection
    try:
        if conn.dialect.name == "duckdb":
            driver.register("_unionwh_batch", frame.to_arrow())
            try:
                conn.exec_driver_sql(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _unionwh_batch")
            except Exception:
                # the failed INSERT aborted the transaction, which refuses the unregister too: that
                # error ("transaction is aborted") would hide the one that says what went wrong
                with contextlib.suppress(Exception):
                    driver.unregister("_unionwh_batch")
                raise
            driver.unregister("_unionwh_batch")
            return
        # PostgreSQL: COPY, never row-by-row INSERTs; the rows as CSV written by Polars
        _copy_csv(driver, target, cols, frame)
    except Exception as exc:
        if _lost_connection(exc):
            raise
        raise WarehouseWriteError(_refusal(target, frame, exc)) from None


COPY_CHUNK_ROWS = 50_000
"""Rows per CSV chunk sent to PostgreSQL's COPY (bounds the text held in memory at once)."""


def _copy_csv(driver: Any, target: str, cols: str, frame: pl.DataFrame) -> None:
    """COPY ``frame`` as CSV written by Polars, in chunks of :data:`COPY_CHUNK_ROWS` rows.

    Polars writes a null as an empty unquoted field and an empty string as ``""``, which is
    how PostgreSQL's CSV format tells NULL from ''; strings are quoted (a lone ``\\.`` is then
    data, never the end-of-data marker); dates, timestamps, decimals and booleans are written
    as text PostgreSQL reads back as the same value. Should the COPY fail (a refused value, or
    a value CSV cannot carry, such as a NUL), the rows are copied again one by one with
    ``write_row``, inside a savepoint, as before this fast path existed: that one fails the way
    it always did (the error naming the file, row and column), or stores the rows."""
    savepoint = not driver.autocommit  # (in autocommit, a failed COPY leaves nothing behind)
    with driver.cursor() as cur:
        if savepoint:
            cur.execute("SAVEPOINT unionwh_copy")
        try:
            with cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for start in range(0, frame.height, COPY_CHUNK_ROWS):
                    chunk = frame.slice(start, COPY_CHUNK_ROWS)
                    copy.write(chunk.write_csv(include_header=False, quote_style="non_numeric"))
        except Exception as exc:
            if _lost_connection(exc):
                raise
            if savepoint:
                cur.execute("ROLLBACK TO SAVEPOINT unionwh_copy")
            with cur.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
                for row in frame.iter_rows():
                    copy.write_row(row)
        else:
            if cur.rowcount != frame.height:  # (a CSV misread: never seen; fail the transaction)
                raise WarehouseWriteError(f"COPY stored {cur.rowcount} of {frame.height} rows")
        if savepoint:
            cur.execute("RELEASE SAVEPOINT unionwh_copy")


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([A-Za-z_][A-Za-z0-9_]*))?")


def _lost_connection(exc: BaseException) -> bool:
    """A connection that dropped or a server that went away (what retries are for), as opposed
    to a value the warehouse refuses."""
    if isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.DisconnectionError
        | ConnectionError
        | TimeoutError,
    ):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return type(exc).__name__ in ("OperationalError", "InterfaceError") or sqlstate.startswith(("08", "57P"))


def _refusal(target: str, frame: pl.DataFrame, exc: BaseException) -> str:
    """One line for a refused write: the table, the file/row/column when PostgreSQL's COPY
    context names a line (line N is the frame's row N), and the error without values."""
    where = ""
    diag = getattr(exc, "diag", None)
    m = _COPY_CONTEXT.search(getattr(diag, "context", None) or "")
    if m and 1 <= int(m.group(1)) <= frame.height:
        i = int(m.group(1)) - 1
        file_col = next((c for c in ("_file_name", "file_name") if c in frame.columns), None)
        row_col = next((c for c in ("_row_number", "row_number") if c in frame.columns), None)
        parts = [f"file {frame[file_col][i]}" if file_col else f"line {i + 1} of the batch"]
        if row_col and frame[row_col][i] is not None:
            parts.append(f"row {frame[row_col][i]}")
        if m.group(2):
            parts.append(f"column {m.group(2)}")
        where = f" at {', '.join(parts)}"
    return (
        f"the warehouse refused a value of {target}{where} ({safe_error_text(exc)}): the value cannot be "
        "stored there; correct it in the delivery and deliver the file again"
    )


def _quarantine_frame(entry: LedgerEntry, t: Table, rejected: pl.DataFrame, now: datetime) -> pl.DataFrame:
    contract_cols = [c.name for c in t.all_columns]
    originals = rejected.get_column("_original") if "_original" in rejected.columns else None
    values: list[str] = []
    for i, row in enumerate(rejected.select(contract_cols).iter_rows(named=True)):
        values.append(
            originals[i]
            if originals is not None and originals[i] is not None
            else json.dumps(row, ensure_ascii=False)
        )
    return pl.DataFrame(
        {
            "load_id": [entry.load_id] * rejected.height,
            "source": [entry.source] * rejected.height,
            "table_name": [entry.table_name] * rejected.height,
            "file_name": [entry.file_name] * rejected.height,
            "file_sha256": [entry.file_sha256] * rejected.height,
            "delivery_date": [entry.delivery_date] * rejected.height,
            "row_number": rejected.get_column("_row_number").cast(pl.Int64),
            # a key may hold the very control character its row is quarantined for
            "row_key": rejected.select(
                row_key_expr(t).str.replace_all(CONTROL_CHARS.pattern, "\ufffd")
            ).to_series(),
            "rules": rejected.get_column("rules"),
            "reasons": rejected.get_column("reasons"),
            "original_values": values,
            "quarantined_at": [now] * rejected.height,
        },
        schema_overrides={"delivery_date": pl.Date, "quarantined_at": pl.Datetime("us")},
    )


def row_key_expr(t: Table) -> pl.Expr:
    """The row's key as text (``Table.row_key_columns``: its key, or its file's fields for a
    welfare ledger row), the same way the dbt model int_source_keys_listed builds it from
    raw; a personal key column (attendance's id_card and name) enters as its pseudonym."""
    personal = set(personal_columns(t))
    cols = list(t.row_key_columns)
    cols = [f"{c}_pseudonym" if c in personal else c for c in cols]
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in cols], separator="|")


CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def storable(text: str | None) -> str | None:
    """Text every warehouse can store: control characters (NUL above all, which PostgreSQL
    refuses) shown as U+FFFD. For what the pipeline writes about a file (messages, keys), never
    for source values: a source value holding one is quarantined by ``row.control_characters``."""
    return None if text is None else CONTROL_CHARS.sub("\ufffd", text)


def _ledger_frame(entry: LedgerEntry, now: datetime) -> pl.DataFrame:
    row: dict[str, Any] = {"load_id": entry.load_id, **entry.__dict__, "loaded_at": now}
    row["error_message"] = storable(entry.error_message)
    row["file_name"] = storable(entry.file_name)
    return pl.DataFrame([row], schema_overrides={"delivery_date": pl.Date, "loaded_at": pl.Datetime("us")})


@dataclass(frozen=True)
class BatchWrite:
    """What one (file, table) writes: its ledger entry and, for a loaded batch, its table, raw
    rows (typed, pseudonymised), quarantined rows, for a source that keeps a register of its
    files (``Source.register``) the file's register row (``workbook``: its file fields, as
    ``Source.file_key`` gives them) and, for database sources, the new watermark."""

    entry: LedgerEntry
    table: Table | None = None
    typed: pl.DataFrame | None = None
    rejected: pl.DataFrame | None = None
    workbook: tuple[str, ...] | None = None
    watermark: datetime | None = None


def write_batch(
    engine: Engine | Connection,
    entry: LedgerEntry,
    t: Table | None,
    typed: pl.DataFrame | None,
    rejected: pl.DataFrame | None,
    workbook: tuple[str, ...] | None = None,
    watermark: datetime | None = None,
) -> None:
    """Write one (file, table) atomically: :func:`write_slice` of a slice of one batch."""
    write_slice(engine, [BatchWrite(entry, t, typed, rejected, workbook, watermark)])


def write_slice(bind: Engine | Connection, writes: Sequence[BatchWrite]) -> None:
    """Write the batches of a slice in one transaction: each table's raw rows of every batch in
    one insert (every batch's rows with its own ``_load_id``), then the quarantine rows, the
    register rows and the ledger entries, each in one insert, and the watermarks in batch
    order. Given a Connection, the transaction is on it: a run keeps one connection per source
    (with DuckDB, opening the file per write and checkpointing it at every close costs ~25 ms).
    The ledger entries share one ``loaded_at`` (to the second, as one batch's always did).
    Nothing to write (no batches): no transaction, no fail points."""
    if not writes:
        return
    now = datetime.now().replace(microsecond=0)
    raw: dict[str, list[pl.DataFrame]] = {}
    quarantine: list[pl.DataFrame] = []
    registers: dict[str, list[pl.DataFrame]] = {}
    for w in writes:
        entry, t, typed, rejected = w.entry, w.table, w.typed, w.rejected
        if (typed is not None and typed.height) or (rejected is not None and rejected.height):
            assert t is not None, "rows to write need their table"
        if t is not None and typed is not None and typed.height:
            frame = typed.with_columns(pl.lit(entry.load_id).alias("_load_id"))
            raw.setdefault(f"{RAW_SCHEMA}.{t.raw_table}", []).append(frame)
        if t is not None and rejected is not None and rejected.height:
            quarantine.append(_quarantine_frame(entry, t, rejected, now))
        if w.workbook is not None:
            assert t is not None, "a register row needs its table's source"
            src = source(t.source)
            registers.setdefault(f"{RAW_SCHEMA}.{src.register_table}", []).append(
                _register_frame(src.file_fields, w.workbook, entry)
            )
    with _transaction(bind) as conn:
        for target, frames in raw.items():
            insert_frame(conn, target, _stacked(frames))
        if quarantine:
            insert_frame(conn, f"{OPS_SCHEMA}.quarantine", _stacked(quarantine))
        for target, frames in registers.items():
            insert_frame(conn, target, _stacked(frames))
        for w in writes:
            if w.watermark is not None:
                _set_watermark(conn, w.entry, w.watermark)
        insert_frame(
            conn, f"{OPS_SCHEMA}.load_ledger", _stacked([_ledger_frame(w.entry, now) for w in writes])
        )
        faults.checkpoint("load.in_transaction")
    faults.checkpoint("load.committed")


def _stacked(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames one under the other, by column name; a column all null in one frame (Polars
    type Null) takes the others' type."""
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _register_frame(fields: tuple[str, ...], workbook: tuple[str, ...], entry: LedgerEntry) -> pl.DataFrame:
    row: dict[str, Any] = {identifier(f): v for f, v in zip(fields, workbook, strict=True)}
    row |= {
        "_load_id": entry.load_id,
        "_file_name": entry.file_name,
        "_file_sha256": entry.file_sha256,
        "_delivery_date": entry.delivery_date,
    }
    return pl.DataFrame(
        {c: [v] for c, v in row.items()}, schema={**{c: pl.String for c in row}, "_delivery_date": pl.Date}
    )


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        with bind.begin():
            yield bind
    else:
        with bind.begin() as conn:
            yield conn


def _set_watermark(conn: Connection, entry: LedgerEntry, watermark: datetime) -> None:
    """Move the (source, table) watermark forward to ``watermark``, in the batch's transaction.

    Never back: a full re-pull, or a page of late commits read in the overlap window, loads rows
    older than the stored watermark, and a lower one would only make later pulls re-read more.
    An equal one keeps the load that set it first. (One later than the pull is dropped before
    the pull: :func:`drop_watermark`.)"""
    key = {"s": entry.source, "t": entry.table_name}
    # (all rows fetched: DuckDB refuses the next register() while a result is left unfinished)
    [(stored,)] = conn.execute(
        sa.text(f"SELECT max(watermark) FROM {OPS_SCHEMA}.watermarks WHERE source = :s AND table_name = :t"),
        key,
    ).all()
    if stored is not None and stored >= watermark:
        return
    conn.execute(sa.text(f"DELETE FROM {OPS_SCHEMA}.watermarks WHERE source = :s AND table_name = :t"), key)
    conn.execute(
        sa.text(f"INSERT INTO {OPS_SCHEMA}.watermarks VALUES (:s, :t, :w, :l)"),
        {**key, "w": watermark, "l": entry.load_id},
    )


def drop_watermark(engine: Engine, source: str, table: str) -> None:
    """Forget a table's watermark: the next pull reads every row (those held are not loaded
    again) and its load sets a new one. For a watermark later than the pull, which a row
    dated in the future set before issue 18: it hides every change dated before it and
    :func:`_set_watermark` would never move it back. Dropped in its own transaction: a run
    that stops before its load leaves no watermark, and the next run pulls in full too."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"DELETE FROM {OPS_SCHEMA}.watermarks WHERE source = :s AND table_name = :t"),
            {"s": source, "t": table},
        )


def watermarks(engine: Engine, source: str) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT table_name, watermark FROM {OPS_SCHEMA}.watermarks WHERE source = :s"),
            {"s": source},
        ).all()
    return {r[0]: r[1] for r in rows}


def seen_versions(
    engine: Engine,
    t: Table,
    since: datetime | None,
    until: datetime | None = None,
    not_run: str | None = None,
    quarantined: bool = True,
) -> tuple[set[str], set[str]]:
    """What the warehouse already holds of a database table, from ``since`` on (None: all of it)
    and, for its raw rows, up to ``until`` (a pulled page's newest ``updated_at``); ``not_run``:
    leaving out what that run loaded (a pull's pages never overlap: a key is in one page).

    Returns the version keys (``<key>|<updated_at>``) of its raw rows and the original
    values of its quarantined rows (not looked up, an empty set, without ``quarantined``); the
    members pull drops re-read rows found here.
    """
    raw_where, q_where = ["TRUE"], ["source = :s", "table_name = :t"]
    raw_params: dict[str, Any] = {}
    q_params: dict[str, Any] = {"s": t.source, "t": t.name}
    if since is not None:
        raw_where.append("updated_at >= :since")
        raw_params["since"] = since
        # A row is pulled on or after its updated_at, so older pulls cannot hold it (a day's
        # margin for a platform clock in another time zone) -- unless its updated_at was itself
        # what was wrong: a row dated after its pull (or not a timestamp) is quarantined on its
        # pull's day and re-read by every later pull (it stays above the watermark) until the
        # platform corrects it; it must be found here on each of them, not quarantined again.
        q_where.append("(delivery_date >= :since_day OR rules LIKE :stamp_rules)")
        q_params["stamp_rules"] = "%updated_at.%"
        q_params["since_day"] = since.date() - timedelta(days=1)
    if until is not None:
        raw_where.append("updated_at <= :until")
        raw_params["until"] = until
    if not_run is not None:
        this_run = f"(SELECT load_id FROM {OPS_SCHEMA}.load_ledger WHERE run_id = :run)"
        raw_where.append(f"_load_id NOT IN {this_run}")
        q_where.append(f"load_id NOT IN {this_run}")
        raw_params["run"] = q_params["run"] = not_run
    raw_sql = f"SELECT {t.key[0]}, updated_at FROM {RAW_SCHEMA}.{t.raw_table} WHERE {' AND '.join(raw_where)}"
    q_sql = f"SELECT original_values FROM {OPS_SCHEMA}.quarantine WHERE {' AND '.join(q_where)}"
    with engine.connect() as conn:
        raw = conn.execute(sa.text(raw_sql), raw_params).all()
        held = conn.execute(sa.text(q_sql), q_params).all() if quarantined else []
    loaded = {
        f"{'' if k is None else k}|{'' if u is None else u.strftime('%Y-%m-%d %H:%M:%S')}" for k, u in raw
    }
    return loaded, {r[0] for r in held}


def rows_without_completed_load(engine: Engine) -> dict[str, int]:
    """Per raw table, and ``ops.quarantine``: how many rows carry a load id that has no
    ledger entry of a completed load (``status = 'loaded'``). The ledger entry is written in
    the rows' own transaction, so every count is 0 unless the warehouse was written around
    the loader; a run checks it at its end. Returns only the tables with such rows."""
    completed = f"(SELECT load_id FROM {OPS_SCHEMA}.load_ledger WHERE status = 'loaded')"
    checks = {f"{RAW_SCHEMA}.{t.raw_table}": "_load_id" for t in TABLES}
    checks |= {f"{RAW_SCHEMA}.{s.register_table}": "_load_id" for s in SOURCE_ENTRIES if s.register}
    checks[f"{OPS_SCHEMA}.quarantine"] = "load_id"
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for relation, column in checks.items():
            n = conn.execute(
                sa.text(
                    f"SELECT count(*) FROM {relation} WHERE {column} IS NULL OR {column} NOT IN {completed}"
                )
            ).scalar_one()
            if n:
                found[relation] = int(n)
    return found
