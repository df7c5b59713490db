"""members — member service platform (a SQL database read through SQLAlchemy).

Tables ``member`` and ``member_card``, pulled incrementally by ``updated_at``
(``WHERE updated_at > :since``, all rows when there is no watermark yet),
ordered by ``updated_at`` then the primary key. ``since`` is the stored watermark
minus a small overlap window, so a row committed late with an older ``updated_at``
is still picked up; rows re-read in the window that the warehouse already holds
(same key and ``updated_at``) are dropped by :func:`drop_seen` before loading. The window's
versions are read first (:func:`window_versions`: two columns), so a pull reads in full only
the window's rows the warehouse does not hold (:class:`Window`). The watermark is
the newest ``updated_at`` of the rows that were loaded, never later than the pull itself
(:func:`watermark_of`): a row dated in the future is quarantined and moves nothing. SQLite hands dates and
timestamps back as TEXT, MariaDB/PostgreSQL as date/datetime objects: both
end up in the same canonical text. ``is_migrant``/``is_veteran`` 0/1 become
``true``/``false``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import NoneType
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flows import schema
from flows.errors import BatchError, safe_error_text
from flows.schema import Table
from flows.sources import common

SOURCE = "members"


def db_text(value: Any) -> str | None:
    """A database value as raw text (timestamps keep their microseconds here)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return common.timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return common.number_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _check_columns(conn: Connection, t: Table) -> None:
    file = f"{SOURCE}/{t.name}"
    inspector = sa.inspect(conn)
    try:
        columns = [c["name"].lower() for c in inspector.get_columns(t.name)]
    except sa.exc.NoSuchTableError:
        raise BatchError(
            file, "batch.columns", f"table {t.name} does not exist in the members database"
        ) from None
    missing = [c.name for c in t.columns if c.name not in columns]
    if missing:
        # a table imported from a file without its header row (SQLite's .import) is named by
        # its first record: only contract column names are quoted
        raise BatchError(
            file,
            "batch.columns",
            f"missing column(s) {', '.join(missing)} in table {t.name}; "
            + common.found_text(
                columns,
                (c.name for c in t.columns),
                what="contract column",
                hint="was the table imported without its header row?",
            ),
        )


@dataclass(frozen=True)
class Window:
    """What a pull still reads of its overlap window: the window's end (the stored watermark)
    and, of the rows changed at or before it, the keys of those the warehouse does not hold
    (:func:`window_versions`); every row changed after the end is read."""

    end: datetime
    keys: Sequence[Any]


WINDOW_KEYS_MAX = 5000
"""At most this many keys are named in a pull (a longer list reads the whole window instead)."""


def _since_param(conn: Connection, since: datetime) -> Any:
    if conn.dialect.name == "sqlite":
        # TEXT timestamps compare as strings: bind the same 'YYYY-MM-DD HH:MM:SS[.ffffff]' form.
        return common.timestamp_text(since)
    return since


def _pull(
    conn: Connection,
    t: Table,
    since: datetime | None,
    after: tuple[Any, Any] | None = None,
    limit: int | None = None,
    *,
    columns: Sequence[str] | None = None,
    until: datetime | None = None,
    window: Window | None = None,
) -> list[tuple[Any, ...]]:
    """Rows changed after ``since``, in (``updated_at``, key) order; ``after``: only rows past
    this (``updated_at``, key) pair, as the database gave them (a page's last row);
    ``limit``: at most this many; ``columns``: only these (default: the table's);
    ``until``: only rows changed at or before it; ``window``: of the rows changed at or before
    its end, only those with one of its keys."""
    names = [c.name for c in t.columns]
    tbl = sa.table(t.name, *[sa.column(n) for n in names])
    query = sa.select(*[tbl.c[n] for n in (columns or names)])
    updated, key = tbl.c["updated_at"], tbl.c[t.key[0]]
    if since is not None:
        query = query.where(updated > sa.bindparam("since", _since_param(conn, since)))
    if until is not None:
        query = query.where(updated <= sa.bindparam("until", _since_param(conn, until)))
    if window is not None:
        end = updated > sa.bindparam("window_end", _since_param(conn, window.end))
        if window.keys:
            query = query.where(
                sa.or_(end, key.in_(sa.bindparam("window_keys", list(window.keys), expanding=True)))
            )
        else:
            query = query.where(end)
    # A row without updated_at (only a full pull reads one: `updated > since` drops it) sorts
    # first, as SQLite and MySQL/MariaDB sort NULL; PostgreSQL is told so. A page ending on such
    # a row must go on with the rest of them and then every dated row (`updated > NULL` is
    # never true: comparing with it would end the pull there and lose the rows after it).
    nulls_first = since is None and conn.dialect.name == "postgresql"
    if after is not None:
        last_updated, last_key = after
        if last_updated is None:
            query = query.where(
                sa.or_(
                    sa.and_(updated.is_(None), key > sa.bindparam("after_k", last_key)), updated.is_not(None)
                )
            )
        else:
            query = query.where(
                sa.or_(
                    updated > sa.bindparam("after_u", last_updated),
                    sa.and_(
                        updated == sa.bindparam("after_u2", last_updated),
                        key > sa.bindparam("after_k", last_key),
                    ),
                )
            )
    query = query.order_by(sa.nulls_first(updated) if nulls_first else updated, key)
    if limit is not None:
        query = query.limit(limit)
    return _fetch_all(conn, query)


def _fetch_all(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as the DB-API cursor gives them: its columns are untyped (SQLAlchemy
    processes no value), so these are the values its rows would hold, without building a Row per
    record (~30% of a pull's CPU). A driver error while fetching (SQLite steps through the rows
    then: a text that is no UTF-8) is raised as SQLAlchemy raises it."""
    result = conn.execute(query)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        return list(result.cursor.fetchall())
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(None, None, exc, dbapi_error, dialect=conn.dialect) from exc
    finally:
        result.close()


def column_text(values: Sequence[Any]) -> list[str | None]:
    """A pulled column as raw text: :func:`db_text` of each value, without a Python call per cell for
    the columns that need none (text, the common case, as it is; integers as ``str``)."""
    kinds = set(map(type, values))
    if kinds <= {str, NoneType}:
        return list(values)
    if kinds <= {int, NoneType}:
        return [None if v is None else str(v) for v in values]
    if kinds <= {datetime, NoneType}:
        stamps = _timestamps_text(values)
        if stamps is not None:
            return stamps
    return [db_text(v) for v in values]


def _timestamps_text(values: Sequence[datetime | None]) -> list[str | None] | None:
    """:func:`common.timestamp_text` of each naive timestamp (a server database's column), by
    Polars; None when one is aware (its wall time is kept, Polars would move it to UTC) or
    before the year 1000 (Python writes no 4-digit year there)."""
    if any(v is not None and v.tzinfo is not None for v in values):
        return None
    stamps = pl.Series(values, dtype=pl.Datetime("us"))
    if stamps.dt.year().lt(1000).any():
        return None
    return (
        stamps.to_frame("t")
        .select(
            pl.when(pl.col("t").dt.microsecond() == 0)
            .then(pl.col("t").dt.strftime("%Y-%m-%d %H:%M:%S"))
            .otherwise(pl.col("t").dt.strftime("%Y-%m-%d %H:%M:%S%.6f"))
        )
        .to_series()
        .to_list()
    )


def json_text(column: pl.Expr) -> pl.Expr:
    """Each text as ``json.dumps(text, ensure_ascii=False)`` does it, ``null`` for None."""
    return common.json_string(column).fill_null(pl.lit("null"))


def table_frame(t: Table, rows: list[tuple[Any, ...]], pulled_on: date) -> pl.DataFrame:
    """Canonical frame of pulled rows (tuples in ``t.columns`` order).

    Column by column: the rows are transposed once, each column turned into text
    (:func:`column_text`) and JSON-encoded once by Polars; ``_original`` (``json.dumps`` of the
    row's texts) and the batch digest (``json.dumps`` of the table, its columns and every row's
    texts, compact) are concatenations of those encodings.
    """
    names = [c.name for c in t.columns]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    texts = {name: column_text(col) for name, col in zip(names, columns, strict=True)}
    frame = pl.DataFrame(texts, schema=dict.fromkeys(names, pl.String))
    encoded = [json_text(pl.col(name)) for name in names]
    pieces: list[pl.Expr] = []
    for i, (name, value) in enumerate(zip(names, encoded, strict=True)):
        pieces += [pl.lit(("{" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "), value]
    coded = (
        frame.lazy()
        .select(
            pl.concat_str([*pieces, pl.lit("}")]).alias("original"),
            pl.concat_str([pl.lit("["), pl.concat_str(encoded, separator=","), pl.lit("]")]).alias("row"),
        )
        .collect()
    )
    head = json.dumps({"table": t.name, "columns": names}, ensure_ascii=False, separators=(",", ":"))
    digest = common.sha256_bytes(
        (head[:-1] + ',"rows":[' + coded.get_column("row").str.join(",").item() + "]}").encode("utf-8")
    )
    return common.canonical_frame(
        t,
        common.RawRows.from_columns(
            names, texts, range(1, len(rows) + 1), coded.get_column("original").to_list()
        ),
        source=SOURCE,
        file_name=f"{SOURCE}/{t.name}",
        sha256=digest,
        delivery_date=pulled_on,
        bools=common.DB_BOOLS,
    )


def lower_bound(watermark: datetime | None, overlap: timedelta) -> datetime | None:
    """Where a pull starts: the watermark minus the overlap window (None: everything)."""
    return None if watermark is None else watermark - overlap


def read(
    connection: Connection, pulled_on: date, since: dict[str, datetime | None]
) -> dict[str, pl.DataFrame]:
    """Canonical frames of ``member`` and ``member_card`` rows changed after ``since[table]``."""
    out: dict[str, pl.DataFrame] = {}
    for t in schema.tables_of(SOURCE):
        out[t.name], _ = read_page(connection, t, pulled_on, since.get(t.name))
    return out


def _read(connection: Connection, t: Table, check: bool, *args: Any, **kwargs: Any) -> Sequence[Any]:
    """:func:`_pull`'s rows (``check``: the table's columns checked first); a database error is
    the table's ``batch.unreadable``."""
    if check:
        _check_columns(connection, t)
    try:
        return _pull(connection, t, *args, **kwargs)
    except sa.exc.DBAPIError as exc:
        raise BatchError(
            f"{SOURCE}/{t.name}", "batch.unreadable", f"cannot read table {t.name}: {safe_error_text(exc)}"
        ) from None


def read_page(
    connection: Connection,
    t: Table,
    pulled_on: date,
    since: datetime | None,
    after: tuple[Any, Any] | None = None,
    limit: int | None = None,
    window: Window | None = None,
) -> tuple[pl.DataFrame, tuple[Any, Any] | None]:
    """One page of table ``t``'s rows changed after ``since``: at most ``limit`` rows past the
    cursor ``after``, as a canonical frame, and the cursor of the page's last row (None when
    the page is short, i.e. nothing is left). Pages follow (``updated_at``, key) order, so
    a run that stops between pages has loaded a prefix of that order and its watermark holds.
    ``window``: of the rows changed at or before its end, only those with one of its keys (a
    window comes from :func:`window_versions`, which checked the table's columns on this
    connection already)."""
    rows = _read(connection, t, window is None, since, after, limit, window=window)
    names = [c.name for c in t.columns]
    cursor = None
    if limit is not None and len(rows) == limit:
        last = rows[-1]
        cursor = (last[names.index("updated_at")], last[names.index(t.key[0])])
    return table_frame(t, rows, pulled_on), cursor


def window_versions(
    connection: Connection, t: Table, since: datetime, until: datetime, after: tuple[Any, Any] | None = None
) -> tuple[list[Any], list[str]]:
    """The keys (as the database gives them) and version keys (:func:`version_key`) of table
    ``t``'s rows changed after ``since`` and at or before ``until`` (past the cursor ``after``):
    only those two columns are read. A pull's overlap window is mostly rows the warehouse
    already holds; reading their versions first, a pull reads in full only the others
    (:class:`Window`)."""
    key = t.key[0]
    rows = _read(connection, t, True, since, after, columns=(key, "updated_at"), until=until)
    keys = [r[0] for r in rows]
    texts = {key: column_text(keys), "updated_at": column_text([r[1] for r in rows])}
    versions = common.canonical_columns(t, texts, bools=common.DB_BOOLS).select(version_key(t)).to_series()
    return keys, versions.to_list()


def max_updated_at(frame: pl.DataFrame) -> datetime | None:
    """The newest ``updated_at`` of a pulled frame, for the watermark (None when there is none).

    Taken from the value as the database gave it (``_original``), so sub-second
    precision is kept; falls back to the canonical ``updated_at``.
    """
    if frame.height == 0:
        return None
    original = (
        frame.get_column("_original")
        .str.json_path_match("$.updated_at")
        .str.replace("T", " ", literal=True)
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
    )
    canonical = frame.get_column("updated_at").str.to_datetime(
        "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"
    )
    value = pl.select(pl.coalesce(pl.lit(original), pl.lit(canonical)).max()).item()
    return value


def watermark_of(loaded: pl.DataFrame, pulled_at: datetime) -> datetime | None:
    """Where the next pull may start, after ``loaded`` (the rows of a pull that passed validation)
    went into the warehouse: their newest ``updated_at``, but never past ``pulled_at``, the moment
    the pull started (naive, in the settings' time zone, like the platform's timestamps). None when
    nothing was loaded: the stored watermark stays.

    Only loaded rows count: a row dated after its pull is quarantined, and were its ``updated_at``
    the watermark, every later change (dated before it) would never be pulled again. The cap
    covers a row dated hours ahead that is still on the pull's day (it passes the date-level rule
    and is loaded): a watermark past the pull would skip rows the platform commits after the pull
    with an earlier ``updated_at``. Such a row is re-read until the watermark passes it, and
    :func:`drop_seen` drops it each time. A row quarantined for another reason does not hold the
    watermark back: the platform bumps ``updated_at`` when it corrects a row, so the correction
    is pulled again.
    """
    newest = max_updated_at(loaded)
    return None if newest is None else min(newest, pulled_at)


def updated_range(frame: pl.DataFrame) -> tuple[datetime | None, datetime | None]:
    """The oldest and newest canonical ``updated_at`` of a pulled frame (to the second; None
    when it has none): the span of raw rows a page can collide with."""
    if frame.height == 0:
        return None, None
    stamps = frame.get_column("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    return stamps.min(), stamps.max()  # type: ignore[return-value]


def version_key(t: Table) -> pl.Expr:
    """A row version as text: ``<primary key>|<updated_at>`` (canonical values)."""
    return pl.concat_str([pl.col(t.key[0]).fill_null(""), pl.col("updated_at").fill_null("")], separator="|")


def drop_seen(
    frame: pl.DataFrame, t: Table, loaded: set[str], quarantined: set[str]
) -> tuple[pl.DataFrame, int]:
    """Rows of a pull the warehouse does not hold yet, and how many were dropped.

    ``loaded``: version keys (:func:`version_key`) of rows already in raw;
    ``quarantined``: the original values (JSON, as in ``ops.quarantine``) of rows
    already quarantined. A version is its key and ``updated_at``: the platform
    bumps ``updated_at`` on every change.
    """
    if frame.height == 0 or not (loaded or quarantined):
        return frame, 0
    keep = ~(version_key(t).is_in(list(loaded)) | pl.col("_original").is_in(list(quarantined)))
    kept = frame.filter(keep)
    return kept, frame.height - kept.height
