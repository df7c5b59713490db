"""Full refresh: reload every file source from the landing zone, and prove the result equals
the incremental warehouse it replaces.

The landing zone is the record of the six file sources, so their raw tables, their
workbook register and their ledger and quarantine entries can be rebuilt from it. The
members source is a live database without history: its raw versions, ledger entries and
watermarks are kept, never re-derived. Before clearing, :func:`fingerprints` takes each
rebuilt table's row count and an order-independent digest of its rows; after the reload,
the same fingerprints and the run's figures (``ops.figure_changes`` against the previous
run) show whether the rebuild equals the incremental result.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.schema import all_tables, file_sources, sources

from .appendonly import allow_rewrite
from .ddl import OPS_SCHEMA, RAW_SCHEMA

_LEDGER_COLUMNS = (
    "source, table_name, file_name, file_sha256, delivery_date, rows_read, rows_loaded, "
    "rows_quarantined, status, error_rule, error_message"
)
_QUARANTINE_COLUMNS = (
    "source, table_name, file_name, file_sha256, delivery_date, row_number, row_key, rules, "
    "reasons, original_values"
)


def _relations(names: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """name -> (SELECT list, FROM/WHERE) of every relation of ``sources`` a full refresh
    rebuilds; run ids and load times are left out (they differ by construction)."""
    listed = ", ".join(f"'{s}'" for s in names)
    rel = {
        f"{RAW_SCHEMA}.{t.raw_table}": ("*", f"{RAW_SCHEMA}.{t.raw_table}")
        for t in all_tables()
        if t.source in names
    }
    for src in sources():  # the file registers (welfare's workbooks)
        if src.name in names and src.register is not None:
            rel[f"{RAW_SCHEMA}.{src.register_table}"] = ("*", f"{RAW_SCHEMA}.{src.register_table}")
    rel[f"{OPS_SCHEMA}.load_ledger"] = (
        _LEDGER_COLUMNS,
        f"{OPS_SCHEMA}.load_ledger WHERE source IN ({listed})",
    )
    rel[f"{OPS_SCHEMA}.quarantine"] = (
        _QUARANTINE_COLUMNS,
        f"{OPS_SCHEMA}.quarantine WHERE source IN ({listed})",
    )
    return rel


def fingerprints(engine: Engine, names: tuple[str, ...] | None = None) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the sorted row texts) of every relation of the sources ``names`` (default: the
    file sources, what a full refresh rebuilds): raw tables, ledger and quarantine entries."""
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for name, (cols, source) in _relations(file_sources() if names is None else names).items():
            texts = sorted(str(tuple(r)) for r in conn.execute(sa.text(f"SELECT {cols} FROM {source}")))
            digest = hashlib.md5("\n".join(texts).encode("utf-8"), usedforsecurity=False).hexdigest()
            out[name] = (len(texts), digest)
    return out


def differences(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """Relations whose fingerprint changed, as readable lines (pure)."""
    out = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if b != a:
            out.append(
                f"{name}: {b[0] if b else '-'} rows before, {a[0] if a else '-'} after"
                + (" (same count, different rows)" if b and a and b[0] == a[0] else "")
            )
    return out


def clear_file_sources(engine: Engine) -> int:
    """Delete what a full refresh rebuilds, in one transaction; returns the raw rows deleted."""
    names = file_sources()
    listed = ", ".join(f"'{s}'" for s in names)
    deleted = 0
    with engine.begin() as conn:
        allow_rewrite(
            conn, "full-refresh"
        )  # the one DELETE of raw and the ledger (flows/warehouse/appendonly.py)
        for t in all_tables():
            if t.source in names:
                deleted += conn.execute(sa.text(f"DELETE FROM {RAW_SCHEMA}.{t.raw_table}")).rowcount or 0
        for src in sources():
            if src.name in names and src.register is not None:
                conn.execute(sa.text(f"DELETE FROM {RAW_SCHEMA}.{src.register_table}"))
        conn.execute(sa.text(f"DELETE FROM {OPS_SCHEMA}.quarantine WHERE source IN ({listed})"))
        conn.execute(sa.text(f"DELETE FROM {OPS_SCHEMA}.load_ledger WHERE source IN ({listed})"))
    return deleted
