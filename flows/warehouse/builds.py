"""Which dbt models a run rebuilds: only those the new rows can change.

Every model is a function of its upstream raw tables, the dbt project's code and the dbt
version. The raw layer is append-only, so a raw table changes only by gaining rows, and
every such load has a row in ``ops.load_ledger`` (``loaded_at``, ``rows_loaded``). A run
therefore builds, with ``dbt build --select``, the models (and their tests) downstream of

- each raw table that gained rows since the last successful build, and
- ``ops`` (the quarantine and the ledger change on every run),

and leaves every other table as the last successful build made it: the same inputs, the
same code, so the same rows. A full ``dbt build`` happens when there was no successful
build yet, when the project's files, the dbt version or the pseudonymisation key differ
from that build's (the ``project_hash``), on ``--full-refresh``, and with the setting
``dbt_build: all``.

``ops.dbt_builds`` records each build (append-only): its run, when, the project hash, the
ledger's ``loaded_at`` it covers (``loaded_through``), the selection (empty: everything)
and whether it succeeded. A failed build does not move ``loaded_through`` forward: the next
run selects everything changed since the last success again.

``ops.dbt_node_results`` (schema version 6, append-only) records the result of every node each
build ran (model, seed, test: status, failures, the build's project hash and time). A
selective build leaves the tests of the models it did not rebuild unrun; their latest result
stands, because their models have not changed since. The annual summary's trace reads each
test's latest result from here (:func:`latest_results`), whichever build ran it, so a selective
run states the same test results as a full build would — and says ``missing`` (no result under
this project) or ``stale`` (its model was rebuilt after it ran) rather than a false pass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows.schema import find_source

from .ddl import OPS_SCHEMA

OPS_SELECTOR = "source:ops+"
_PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests", "snapshots")


def project_hash(project_dir: Path, target: str, key_fingerprint: str = "") -> str:
    """sha256 over the project's files that shape a build (paths and bytes), the versions
    of dbt-core and the target's adapter, and the pseudonymisation key's fingerprint (the
    marts carry pseudonyms: after ``unionwh warehouse rotate-key`` every model is rebuilt)."""
    h = hashlib.sha256()
    h.update(
        f"dbt-core {version('dbt-core')}; dbt-{target} {version('dbt-' + target)}; "
        f"key {key_fingerprint}\n".encode()
    )
    for part in _PROJECT_PARTS:
        root = project_dir / part
        files = (
            sorted(p for p in root.rglob("*") if p.is_file())
            if root.is_dir()
            else [root]
            if root.exists()
            else []
        )
        for path in files:
            h.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class Plan:
    """What to build: ``selectors`` empty means everything."""

    selectors: tuple[str, ...]
    loaded_through: datetime | None
    reason: str

    @property
    def everything(self) -> bool:
        return not self.selectors


def _last_success(conn: Connection) -> tuple[str, datetime | None] | None:
    row = conn.execute(
        sa.text(
            f"SELECT project_hash, loaded_through FROM {OPS_SCHEMA}.dbt_builds WHERE status = 'succeeded' "
            "ORDER BY built_at DESC LIMIT 1"
        )
    ).first()
    return None if row is None else (row[0], row[1])


def _source_selector(source: str, table: str) -> str:
    """dbt's selector of a raw table and everything downstream (sources are named after the raw
    tables: ``source('<system>', '<system>__<table>')``, see ``Table.raw_table``)."""
    return f"source:{source}.{source}__{table}+"


def plan(engine: Engine, project: str, everything: bool = False) -> Plan:
    """The build this run needs (the run's loads are done; the warehouse lock is held)."""
    with engine.connect() as conn:
        through = conn.execute(sa.text(f"SELECT max(loaded_at) FROM {OPS_SCHEMA}.load_ledger")).scalar()
        if everything:
            return Plan((), through, "a full build was asked for")
        last = _last_success(conn)
        if last is None:
            return Plan((), through, "no earlier successful build")
        last_hash, last_through = last
        if last_hash != project:
            return Plan((), through, "the dbt project (or dbt) changed since the last build")
        changed = conn.execute(
            sa.text(
                f"SELECT DISTINCT source, table_name FROM {OPS_SCHEMA}.load_ledger WHERE rows_loaded > 0"
                + (" AND loaded_at > :t" if last_through is not None else "")
                + " ORDER BY 1, 2"
            ),
            {"t": last_through} if last_through is not None else {},
        ).all()
    selectors = [_source_selector(source, table) for source, table in changed]
    for name in {source for source, _ in changed}:  # a file register is written with every file's tables
        src = find_source(name)
        if src is not None and src.register is not None:
            selectors.append(_source_selector(name, src.register))
    reason = ("rows arrived in " + ", ".join(f"{s}.{t}" for s, t in changed)) if changed else "no new rows"
    return Plan((OPS_SELECTOR, *sorted(set(selectors))), through, reason)


def record(engine: Engine, run_id: str, project: str, chosen: Plan, succeeded: bool) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {OPS_SCHEMA}.dbt_builds VALUES (:r, :b, :h, :t, :s, :st)"),
            {
                "r": run_id,
                "b": datetime.now(),
                "h": project,
                "t": chosen.loaded_through,
                "s": " ".join(chosen.selectors),
                "st": "succeeded" if succeeded else "failed",
            },
        )


@dataclass(frozen=True)
class NodeResult:
    """A node's latest result: its status, the run whose build ran it and when."""

    status: str
    run_id: str
    built_at: datetime


def record_results(engine: Engine, run_id: str, project: str, artifacts: Path) -> int:
    """Append the result of every node the build (whose ``run_results.json`` is in ``artifacts``)
    ran; returns how many. Called after the build, whether it succeeded or not: a failing test's
    result is its latest result."""
    path = artifacts / "run_results.json"
    if not path.exists():
        return 0
    results = json.loads(path.read_text(encoding="utf-8")).get("results", [])
    now = datetime.now()
    rows = [
        {
            "r": run_id,
            "u": r["unique_id"],
            "t": r["unique_id"].split(".", 1)[0],
            "s": str(r["status"]),
            "f": r.get("failures") if isinstance(r.get("failures"), int) else None,
            "h": project,
            "b": now,
        }
        for r in results
        if r.get("unique_id")
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"INSERT INTO {OPS_SCHEMA}.dbt_node_results (run_id, unique_id, resource_type, "
                    "status, failures, project_hash, built_at) VALUES (:r, :u, :t, :s, :f, :h, :b)"
                ),
                rows,
            )
    return len(rows)


def has_results(engine: Engine, run_id: str) -> bool:
    """Whether ``run_id``'s build recorded its node results (False for runs of releases before
    schema version 6, and on a warehouse not upgraded to it)."""
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s "
                "AND table_name = 'dbt_node_results'"
            ),
            {"s": OPS_SCHEMA},
        ).scalar()
        return (
            bool(exists)
            and conn.execute(
                sa.text(f"SELECT count(*) FROM {OPS_SCHEMA}.dbt_node_results WHERE run_id = :r"),
                {"r": run_id},
            ).scalar()
            > 0
        )


def build_of(engine: Engine, run_id: str) -> str | None:
    """The project hash of ``run_id``'s successful build (None: the run built nothing)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                f"SELECT project_hash FROM {OPS_SCHEMA}.dbt_builds WHERE run_id = :r AND status = 'succeeded' "
                "ORDER BY built_at DESC LIMIT 1"
            ),
            {"r": run_id},
        ).scalar()


def latest_results(engine: Engine, project: str, until: datetime | None = None) -> dict[str, NodeResult]:
    """Each node's newest result under ``project`` (the project hash), up to ``until``."""
    sql = (
        f"SELECT unique_id, status, run_id, built_at FROM {OPS_SCHEMA}.dbt_node_results "
        "WHERE project_hash = :h"
        + (" AND built_at <= :u" if until is not None else "")
        + " ORDER BY built_at"
    )
    out: dict[str, NodeResult] = {}
    with engine.connect() as conn:
        for uid, status, run_id, built_at in conn.execute(sa.text(sql), {"h": project, "u": until}):
            out[uid] = NodeResult(status, run_id, built_at)  # ordered: the newest wins
    return out
