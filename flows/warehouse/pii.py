"""Personal data: keyed pseudonyms for resident IDs, names and phone numbers.

Raw tables keep the delivered values (the restricted layer). Next to each personal
column the loader writes ``<column>_pseudonym``: HMAC-SHA256 of the canonical value
under the warehouse's pseudonymisation key, as 64 hex characters. Every dbt model
downstream of raw reads the pseudonym (and a masked display value), never the raw
value; without the key a pseudonym cannot be turned back into an ID or matched to one.

The key comes from ``UNIONWH_PII_KEY`` (or ``pii_key`` in the config file). With none
configured, an embedded DuckDB warehouse gets a random key created once next to its
file (``pii.key``, mode 0600) and the run says so; a PostgreSQL warehouse refuses to
start. The warehouse records a fingerprint of the key it was loaded with, and a run
with another key stops, because its pseudonyms would not match the stored ones.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.errors import ConfigError
from flows.schema import TABLES, Table
from flows.settings import Settings

from .appendonly import allow_rewrite
from .ddl import OPS_SCHEMA, RAW_SCHEMA, personal_columns
from .loader import insert_frame

KEY_FILE = "pii.key"
SUFFIX = "_pseudonym"
_FINGERPRINT_MESSAGE = b"unionwh pseudonymisation key check"


def pseudonym_column(name: str) -> str:
    return name + SUFFIX


def pseudonym(key: bytes, value: str) -> str:
    return hmac.digest(key, value.encode("utf-8"), "sha256").hex()


CACHE_LIMIT = 2_000_000
"""Pseudonyms kept per process (about 200 bytes each); above it the cache starts again."""


@dataclass
class _Cache:
    """value -> pseudonym under each key, for the life of the process: a run's values (names,
    IDs, phones) repeat across batches and slices, and each distinct one is keyed once."""

    pseudonyms: dict[bytes, dict[str, str]] = field(default_factory=dict)
    size: int = 0
    computed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, key: bytes, values: list[str]) -> list[str]:
        """The pseudonyms of ``values`` (distinct), keying only those not yet cached."""
        with self.lock:
            if self.size + len(values) > CACHE_LIMIT:  # (some may be cached: start again early)
                self.pseudonyms, self.size = {}, 0
            known = self.pseudonyms.setdefault(key, {})
            missing = [v for v in values if v not in known]
            known.update({v: pseudonym(key, v) for v in missing})
            self.size += len(missing)
            self.computed += len(missing)
            return list(map(known.__getitem__, values))


_cache = _Cache()


def pseudonyms_computed() -> int:
    """How many pseudonyms this process has computed (HMACs) for :func:`pseudonymise`: each
    distinct value once per key while it stays in the cache."""
    return _cache.computed


def pseudonymise(frame: pl.DataFrame, t: Table, key: bytes) -> pl.DataFrame:
    """Add ``<column>_pseudonym`` for every personal column of ``t`` (null stays null)."""
    cols = [c for c in personal_columns(t) if c in frame.columns]
    if not cols:
        return frame

    def keyed(values: pl.Series) -> pl.Series:
        # each distinct value once, through the process's cache, then every row mapped through it
        distinct = values.cast(pl.String).drop_nulls().unique().to_list()
        return values.cast(pl.String).replace_strict(
            distinct, _cache.lookup(key, distinct), default=None, return_dtype=pl.String
        )

    # Computed column by column here, not as a map_batches UDF: a Python function that runs
    # Polars operations from inside Polars' thread pool can deadlock that pool while another
    # thread uses Polars too (seen at 100 times the demo: load and validation at once).
    return frame.with_columns(keyed(frame.get_column(c)).alias(pseudonym_column(c)) for c in cols)


def fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def key_file(settings: Settings) -> Path:
    return settings.duckdb_path.parent / KEY_FILE


def resolve_key(settings: Settings, create: bool = False) -> tuple[bytes, str | None]:
    """The pseudonymisation key and, when one was just created, a notice saying where.

    Never logs or returns the key in a message.
    """
    configured = settings.pii_key.get_secret_value() if settings.pii_key is not None else ""
    if configured:
        if len(configured) < 16:
            raise ConfigError("pii_key (UNIONWH_PII_KEY) must be at least 16 characters")
        return configured.encode("utf-8"), None
    if not settings.is_duckdb:
        raise ConfigError(
            "a PostgreSQL warehouse needs a pseudonymisation key: set UNIONWH_PII_KEY "
            "(or pii_key in the config file); it is never stored in the repository"
        )
    path = key_file(settings)
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode("utf-8"), None
    if not create:
        raise ConfigError(
            f"no pseudonymisation key: set UNIONWH_PII_KEY or run `unionwh run` once to create {path}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="ascii").strip().encode("utf-8"), (
        f"created a new pseudonymisation key in {path} (mode 0600): keep it with the warehouse; "
        "loads under another key would not match"
    )


def check_fingerprint(engine: Engine, key: bytes) -> None:
    """Record the key's fingerprint on the first load; refuse a different key later."""
    mine = fingerprint(key)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.text(f"SELECT value FROM {OPS_SCHEMA}.settings WHERE name = 'pii_key_fingerprint'")
        ).scalar_one_or_none()
        if stored is None:
            conn.execute(
                sa.text(f"INSERT INTO {OPS_SCHEMA}.settings VALUES ('pii_key_fingerprint', :v)"), {"v": mine}
            )
        elif stored != mine:
            raise ConfigError(
                "the pseudonymisation key differs from the one this warehouse was loaded with "
                "(ops.settings pii_key_fingerprint); use that key, or load into a new warehouse"
            )


def _set_pseudonyms(conn: Connection, key: bytes, only_missing: bool) -> tuple[int, int]:
    """Compute the pseudonym columns of raw under ``key`` (``only_missing``: where they are
    null), on ``conn``'s transaction; returns (distinct values keyed, rows updated). The only
    UPDATEs of raw, named as such for the append-only triggers (flows/warehouse/appendonly.py)."""
    allow_rewrite(conn, "pseudonym-backfill" if only_missing else "rotate-key")
    values_keyed = rows = 0
    scratch = f"{OPS_SCHEMA}.pseudonym_scratch"
    for t in TABLES:
        for col in personal_columns(t):
            target, pcol = f"{RAW_SCHEMA}.{t.raw_table}", pseudonym_column(col)
            missing = f" AND {pcol} IS NULL" if only_missing else ""
            values = (
                conn.execute(sa.text(f"SELECT DISTINCT {col} FROM {target} WHERE {col} IS NOT NULL{missing}"))
                .scalars()
                .all()
            )
            if not values:
                continue
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {scratch}")
            conn.exec_driver_sql(f"CREATE TABLE {scratch} (v VARCHAR, p VARCHAR)")
            insert_frame(
                conn,
                scratch,
                pl.DataFrame(
                    {"v": values, "p": [pseudonym(key, v) for v in values]},
                    schema={"v": pl.String, "p": pl.String},
                ),
            )
            result = conn.exec_driver_sql(
                f"UPDATE {target} SET {pcol} = {scratch}.p FROM {scratch} "
                f"WHERE {target}.{col} = {scratch}.v{missing.replace(pcol, f'{target}.{pcol}')}"
            )
            rows += max(result.rowcount or 0, 0)  # (read before the next statement on the cursor)
            conn.exec_driver_sql(f"DROP TABLE {scratch}")
            values_keyed += len(values)
    return values_keyed, rows


def backfill(engine: Engine, key: bytes) -> int:
    """Fill the pseudonym columns of rows loaded before they existed (a warehouse upgraded by
    ``ALTER TABLE ... ADD COLUMN``); returns the number of values filled. Idempotent."""
    with engine.begin() as conn:
        return _set_pseudonyms(conn, key, only_missing=True)[1]


def rotate(engine: Engine, old: bytes, new: bytes) -> int:
    """Re-key the warehouse: every pseudonym column of raw recomputed under ``new`` and the
    stored fingerprint replaced, in one transaction (a crash leaves the old key in force, whole).
    ``old`` must be the key the warehouse was loaded with. Returns the distinct values re-keyed.
    The marts still hold the old pseudonyms until the next build, which rebuilds every model
    (the key's fingerprint is part of what a build depends on, see flows/warehouse/builds.py)."""
    if len(new) < 16:
        raise ConfigError("the new pseudonymisation key must be at least 16 characters")
    if new == old:
        raise ConfigError("the new pseudonymisation key is the current one")
    check_fingerprint(engine, old)
    with engine.begin() as conn:
        rekeyed, _ = _set_pseudonyms(conn, new, only_missing=False)
        conn.execute(
            sa.text(f"UPDATE {OPS_SCHEMA}.settings SET value = :v WHERE name = 'pii_key_fingerprint'"),
            {"v": fingerprint(new)},
        )
    return rekeyed


def replace_key_file(settings: Settings, new: bytes) -> Path:
    """After :func:`rotate` on an embedded warehouse that keeps its key in ``pii.key``: the new
    key replaces it (written beside it, then renamed over it; mode 0600)."""
    path = key_file(settings)
    tmp = path.with_suffix(".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(new.decode("utf-8") + "\n")
    os.replace(tmp, path)
    return path
