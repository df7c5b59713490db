"""Read the run log, the load ledger and the quarantine for people (``unionwh quality``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.errors import UnionWHError

from .ddl import OPS_SCHEMA


@dataclass
class SourceQuality:
    source: str
    files: int = 0
    rejected: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    top_rules: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Watermark:
    """Where the next incremental pull of a database table starts (less the overlap window)."""

    source: str
    table_name: str
    value: datetime
    load_id: str
    """The load that set it."""
    run_id: str | None
    """The run of that load (None: the load is not in the ledger)."""


def stored_watermarks(engine: Engine) -> list[Watermark]:
    """Every stored watermark with the load and run that set it (``unionwh status``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT w.source, w.table_name, w.watermark, w.load_id, (SELECT max(l.run_id) FROM "
                f"{OPS_SCHEMA}.load_ledger l WHERE l.load_id = w.load_id) FROM {OPS_SCHEMA}.watermarks w "
                "ORDER BY w.source, w.table_name"
            )
        ).all()
    return [Watermark(*r) for r in rows]


def resolve_run(engine: Engine, run: str) -> str:
    """``latest`` (the newest run that recorded a load) or a run id."""
    with engine.connect() as conn:
        if run == "latest":
            found = conn.execute(
                sa.text(
                    f"SELECT r.run_id FROM {OPS_SCHEMA}.runs r WHERE EXISTS (SELECT 1 FROM {OPS_SCHEMA}.load_ledger l "
                    "WHERE l.run_id = r.run_id) ORDER BY r.started_at DESC LIMIT 1"
                )
            ).scalar()
        else:
            found = conn.execute(
                sa.text(f"SELECT run_id FROM {OPS_SCHEMA}.runs WHERE run_id = :r"), {"r": run}
            ).scalar()
    if found is None:
        raise UnionWHError(f"no run {run!r} with loaded files in the warehouse")
    return str(found)


def quality_summary(engine: Engine, run_id: str, top: int = 3) -> list[SourceQuality]:
    out: dict[str, SourceQuality] = {}
    with engine.connect() as conn:
        for row in conn.execute(
            sa.text(
                f"SELECT source, count(*), sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), sum(rows_read), "
                f"sum(rows_loaded), sum(rows_quarantined) FROM {OPS_SCHEMA}.load_ledger WHERE run_id = :r "
                "GROUP BY source ORDER BY source"
            ),
            {"r": run_id},
        ):
            out[row[0]] = SourceQuality(
                row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5])
            )
        rules = conn.execute(
            sa.text(
                f"SELECT q.source, q.rules FROM {OPS_SCHEMA}.quarantine q JOIN {OPS_SCHEMA}.load_ledger l "
                "ON l.load_id = q.load_id WHERE l.run_id = :r"
            ),
            {"r": run_id},
        ).all()
        # a rejected file's batch rule counts as one failure of its source (an unknown folder's
        # batch.unknown_source is how the pseudo-source `landing` shows up here)
        rules += conn.execute(
            sa.text(
                f"SELECT source, error_rule FROM {OPS_SCHEMA}.load_ledger WHERE run_id = :r AND status = 'rejected' "
                "AND error_rule IS NOT NULL"
            ),
            {"r": run_id},
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for source, joined in rules:
        for rule in joined.split(";"):
            counts.setdefault(source, {})[rule] = counts.setdefault(source, {}).get(rule, 0) + 1
    for source, by_rule in counts.items():
        out[source].top_rules = sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return list(out.values())


def format_quality(run_id: str, rows: list[SourceQuality]) -> str:
    lines = [
        f"run {run_id}",
        (
            f"{'source':<10} {'files':>5} {'rejected':>8} {'rows':>8} {'loaded':>8} "
            f"{'quarantined':>11}  top failing rules"
        ),
    ]
    for q in rows:
        rules = ", ".join(f"{r} ({n})" for r, n in q.top_rules) or "-"
        lines.append(
            f"{q.source:<10} {q.files:>5} {q.rejected:>8} {q.rows_read:>8} {q.rows_loaded:>8} "
            f"{q.rows_quarantined:>11}  {rules}"
        )
    return "\n".join(lines)
