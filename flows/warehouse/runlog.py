"""The run ledger in ``ops``: what each run did, and which figures it changed.

- ``ops.runs``: one row per run (started as ``running``, finished as ``succeeded``,
  ``failed``, or ``interrupted`` when Ctrl-C or SIGTERM stopped it, with what it committed;
  a run found still ``running`` by a later run that holds the lock was killed and is marked
  ``crashed``), with its file and row counts (from its completed ledger entries, whatever
  the outcome), dbt results and the number of figures it changed;
- ``ops.run_sources``: per run and source, files loaded/rejected and rows read/loaded/quarantined;
- ``ops.figure_values``: the figures (every year) as each run left them;
- ``ops.figure_changes``: per run, each figure and year whose value differs from the
  previous run's snapshot (old → new; old is null for a figure-year that is new).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.schema import relation as checked_relation

from .ddl import OPS_SCHEMA
from .loader import LedgerEntry, storable


@dataclass(frozen=True)
class FigureChange:
    figure_id: str
    report_year: int
    old: Decimal | None
    new: Decimal | None


def start(engine: Engine, run_id: str, started: datetime) -> list[str]:
    """Record a run as running; mark runs left ``running`` as crashed (the caller holds the
    lock, so no other run is alive). Returns the crashed run ids."""
    with engine.begin() as conn:
        crashed = [
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT run_id FROM {OPS_SCHEMA}.runs WHERE status = 'running' AND run_id <> :r"),
                {"r": run_id},
            )
        ]
        if crashed:
            conn.execute(
                sa.text(
                    f"UPDATE {OPS_SCHEMA}.runs SET status = 'crashed', message = "
                    "'the run stopped without finishing (process killed or machine down); "
                    "found by run ' || :r WHERE status = 'running' AND run_id <> :r"
                ),
                {"r": run_id},
            )
        conn.execute(
            sa.text(f"INSERT INTO {OPS_SCHEMA}.runs (run_id, started_at, status) VALUES (:r, :s, 'running')"),
            {"r": run_id, "s": started},
        )
    return crashed


def finish(
    engine: Engine,
    run_id: str,
    status: str,
    message: str | None,
    ledger: Sequence[LedgerEntry],
    files_unchanged: int,
    dbt_results: dict[str, int],
    figures_changed: int | None,
    phase_seconds: dict[str, float],
) -> bool:
    """Finish a ``running`` run's row with its status and the counts of ``ledger`` (its completed
    entries), and append its per-source counts. A finished row is never changed (on PostgreSQL a
    trigger refuses it too, see appendonly.py): returns False, recording nothing, when the run's
    row had left ``running`` already (a run stopped just after it finished stays finished)."""
    loaded = [e for e in ledger if e.status == "loaded"]
    by_source: dict[str, list[LedgerEntry]] = {}
    for e in ledger:
        by_source.setdefault(e.source, []).append(e)
    with engine.begin() as conn:
        updated = conn.execute(
            sa.text(
                f"UPDATE {OPS_SCHEMA}.runs SET finished_at = :f, status = :st, message = :m, files_loaded = :fl, "
                "files_rejected = :fr, files_unchanged = :fu, rows_read = :rr, rows_loaded = :rl, rows_quarantined = :rq, "
                "dbt_results = :dbt, figures_changed = :fc, phase_seconds = :ph WHERE run_id = :r AND status = 'running'"
            ),
            {
                "r": run_id,
                "f": datetime.now(),
                "st": status,
                "m": storable(message),
                "fl": len({(e.source, e.file_name) for e in loaded}),
                "fr": len({(e.source, e.file_name) for e in ledger if e.status == "rejected"}),
                "fu": files_unchanged,
                "rr": sum(e.rows_read for e in loaded),
                "rl": sum(e.rows_loaded for e in loaded),
                "rq": sum(e.rows_quarantined for e in loaded),
                "dbt": json.dumps(dbt_results, sort_keys=True) if dbt_results else None,
                "fc": figures_changed,
                "ph": json.dumps({k: round(v, 2) for k, v in phase_seconds.items()}),
            },
        )
        if updated.rowcount == 0:
            return False
        # Appended once: a run is finished once (ops.run_sources is append-only, see appendonly.py).
        done = conn.execute(
            sa.text(f"SELECT count(*) FROM {OPS_SCHEMA}.run_sources WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()
        for source, entries in sorted(by_source.items()) if not done else ():
            ok = [e for e in entries if e.status == "loaded"]
            conn.execute(
                sa.text(f"INSERT INTO {OPS_SCHEMA}.run_sources VALUES (:r, :s, :fl, :fr, :rr, :rl, :rq)"),
                {
                    "r": run_id,
                    "s": source,
                    "fl": len({e.file_name for e in ok}),
                    "fr": len({e.file_name for e in entries if e.status == "rejected"}),
                    "rr": sum(e.rows_read for e in ok),
                    "rl": sum(e.rows_loaded for e in ok),
                    "rq": sum(e.rows_quarantined for e in ok),
                },
            )
    return True


def diff(old: dict[tuple[str, int], Decimal], new: dict[tuple[str, int], Decimal]) -> list[FigureChange]:
    """Figure-years whose value differs between two snapshots (pure)."""
    keys = sorted(set(old) | set(new), key=lambda k: (k[1], k[0]))
    return [FigureChange(k[0], k[1], old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def summarise_changes(changes: Sequence[FigureChange], first: int = 10) -> list[str]:
    """The log's account of a run's figure changes (pure): one line of counts, then the first
    ``first`` changes of a value that existed before. A first run's hundreds of new figure-years
    (most of them 0: years in which only a date falls) are counted, not listed one by one."""
    if not changes:
        return ["figures: no value changed"]
    new = [c for c in changes if c.old is None]
    gone = [c for c in changes if c.new is None]
    moved = [c for c in changes if c.old is not None and c.new is not None]
    zero = sum(1 for c in new if c.new == 0)
    parts = [f"{len(moved)} changed"] if moved else []
    if new:
        years = sorted({c.report_year for c in new})
        span = f"{years[0]}" if len(years) == 1 else f"{years[0]}–{years[-1]}"
        parts.append(f"{len(new)} new ({zero} of them 0) in {len(years)} year(s) {span}")
    if gone:
        parts.append(f"{len(gone)} gone")
    lines = [
        (
            f"figures: {len(changes)} values differ from the previous run's: {', '.join(parts)} "
            "(all of them: `unionwh status --changes`, ops.figure_changes)"
        )
    ]
    lines += [f"figure {c.figure_id} {c.report_year}: {c.old} -> {c.new}" for c in (moved + gone)[:first]]
    if len(moved) + len(gone) > first:
        lines.append(f"... and {len(moved) + len(gone) - first} more changed values")
    return lines


def _snapshot(conn: Connection, run_id: str) -> dict[tuple[str, int], Decimal]:
    rows = conn.execute(
        sa.text(f"SELECT figure_id, report_year, value FROM {OPS_SCHEMA}.figure_values WHERE run_id = :r"),
        {"r": run_id},
    ).all()
    return {(r[0], int(r[1])): Decimal(r[2]).normalize() for r in rows}


def record_figures(
    engine: Engine, run_id: str, relation: str = "marts.fig_annual_figures"
) -> list[FigureChange]:
    """Snapshot the figures this run left, and record how they differ from the previous snapshot.

    Appended once per run (ops.figure_values and ops.figure_changes are append-only, see
    appendonly.py): a run that recorded its figures already gets back the changes it recorded."""
    relation = checked_relation(relation)
    now = datetime.now()
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text(f"SELECT count(*) FROM {OPS_SCHEMA}.figure_values WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()
    if recorded:
        return changes_of(engine, run_id)
    with engine.begin() as conn:
        previous = conn.execute(
            sa.text(
                f"SELECT run_id FROM {OPS_SCHEMA}.figure_values WHERE run_id <> :r "
                "GROUP BY run_id ORDER BY max(recorded_at) DESC LIMIT 1"
            ),
            {"r": run_id},
        ).scalar()
        conn.execute(
            sa.text(
                f"INSERT INTO {OPS_SCHEMA}.figure_values SELECT :r, :t, figure_id, report_year, value FROM {relation}"
            ),
            {"r": run_id, "t": now},
        )
        changes = diff(_snapshot(conn, previous) if previous else {}, _snapshot(conn, run_id))
        for c in changes:
            conn.execute(
                sa.text(f"INSERT INTO {OPS_SCHEMA}.figure_changes VALUES (:r, :p, :f, :y, :o, :n)"),
                {"r": run_id, "p": previous, "f": c.figure_id, "y": c.report_year, "o": c.old, "n": c.new},
            )
    return changes


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    message: str | None
    files_loaded: int | None
    files_rejected: int | None
    files_unchanged: int | None
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    dbt_results: dict[str, Any]
    figures_changed: int | None


def recent_runs(engine: Engine, last: int) -> list[RunRow]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_id, started_at, finished_at, status, message, files_loaded, files_rejected, files_unchanged, "
                f"rows_read, rows_loaded, rows_quarantined, dbt_results, figures_changed FROM {OPS_SCHEMA}.runs "
                "ORDER BY started_at DESC, run_id DESC LIMIT :n"
            ),
            {"n": last},
        ).all()
    return [RunRow(*r[:11], json.loads(r[11]) if r[11] else {}, r[12]) for r in rows]


def changes_of(engine: Engine, run_id: str) -> list[FigureChange]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT figure_id, report_year, old_value, new_value FROM {OPS_SCHEMA}.figure_changes WHERE run_id = :r "
                "ORDER BY report_year, figure_id"
            ),
            {"r": run_id},
        ).all()
    return [FigureChange(r[0], int(r[1]), r[2], r[3]) for r in rows]
