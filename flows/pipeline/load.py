"""Load: a slice's rows, quarantine and ledger entries in one transaction, one insert per table;
the run's conservation check (rows read = loaded + quarantined, nothing loaded without its
completed ledger entry)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import schema
from flows.errors import BatchError, RunFailed
from flows.orchestration.progress import Progress
from flows.pipeline.state import LOG, Batch, Log
from flows.sources import common, members
from flows.warehouse import pii
from flows.warehouse.ddl import OPS_SCHEMA
from flows.warehouse.loader import (
    BatchWrite,
    LedgerEntry,
    rows_without_completed_load,
    write_slice,
    written,
)


def load_slice(
    engine: Engine, run_id: str, source: str, batches: list[Batch], key: bytes, log: Log = LOG
) -> list[LedgerEntry]:
    """Write the slice's batches and their ledger entries in one transaction (all of the slice
    or none of it); personal columns get their keyed pseudonyms (``key``). Keyed by (table, file
    hash): a batch already written (by an earlier run, or by this step before a retry) is not
    written again."""
    writes: list[BatchWrite] = []
    done = written(engine, source, run_id)
    progress = Progress(f"load {source}", len(batches), "batches", log.info)
    rows = 0
    for b in batches:
        rows += b.frame.height if b.frame is not None else 0
        if (b.table_name, b.sha256) in done:
            log.info("load %s %s: already written, skipped", b.file_name, b.table_name)
            continue
        ids = (run_id, b.source, b.table_name, b.file_name, b.sha256, b.delivery_date)
        if b.error is not None or b.frame is None:
            err = b.error or BatchError(b.file_name, "batch.unreadable", "no rows were read")
            rows_read = b.frame.height if b.frame is not None else 0
            writes.append(BatchWrite(LedgerEntry(*ids, rows_read, 0, 0, "rejected", err.rule, err.message)))
            log.error("rejected %s: [%s] %s", b.file_name, err.rule, err.message)
            continue
        t = schema.table(b.source, b.table_name)
        passed = b.passed if b.passed is not None else b.frame.clear()
        quarantined = b.quarantined if b.quarantined is not None else b.frame.clear()
        entry = LedgerEntry(*ids, b.frame.height, passed.height, quarantined.height, "loaded")
        # A members pull's watermark comes from the rows loaded, never from quarantined ones.
        mark = None if b.pulled_at is None else members.watermark_of(passed, b.pulled_at)
        writes.append(
            BatchWrite(
                entry,
                t,
                pii.pseudonymise(common.to_typed(passed, t), t, key),
                pii.pseudonymise(quarantined, t, key),
                workbook=b.workbook,
                watermark=mark,
            )
        )
    if writes:
        with engine.connect() as conn:  # one connection, one transaction for the slice
            write_slice(conn, writes)
    progress.done, progress.rows = len(batches), rows  # the slice's batches: written (or skipped)
    if batches:
        log.info(progress.line())
    entries = [w.entry for w in writes]
    log.info(
        "load %s: %d batches, %d rows loaded, %d quarantined",
        source,
        len(entries),
        sum(e.rows_loaded for e in entries),
        sum(e.rows_quarantined for e in entries),
    )
    return entries


def check_conservation(engine: Engine) -> None:
    """Every loaded batch: rows read = rows loaded + rows quarantined. A rejected batch loads
    nothing: its rows are all held back (counted in rows_read, none loaded or quarantined).
    And every raw and quarantine row's load id has a completed ledger entry (all or nothing)."""
    with engine.connect() as conn:
        bad = conn.execute(
            sa.text(
                f"SELECT file_name, table_name FROM {OPS_SCHEMA}.load_ledger "
                "WHERE (status = 'loaded' AND rows_read <> rows_loaded + rows_quarantined) "
                "OR (status = 'rejected' AND rows_loaded + rows_quarantined <> 0)"
            )
        ).all()
    if bad:
        raise RunFailed("row conservation broken for " + ", ".join(f"{f} ({t})" for f, t in bad[:5]))
    orphans = rows_without_completed_load(engine)
    if orphans:
        raise RunFailed(
            "rows whose load has no completed ledger entry: "
            + ", ".join(f"{relation} {n}" for relation, n in orphans.items())
        )
