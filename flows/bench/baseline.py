"""Pipeline readers, no orchestration: the pipeline's own readers and the models' SQL, nothing else.

    python -m flows.bench.baseline LANDING WAREHOUSE.duckdb MANIFEST.json

The ``readers`` run of ``flows.bench.pipeline`` (it was its "bare baseline" before issue 22):
between the pipeline and the native script (flows/bench/native.py), it says what the readers
alone cost. It quarantines nothing, so the figures that planted bad rows would change differ.

One process, one DuckDB connection: every delivered file is decoded and parsed by the same
pure readers the pipeline uses (DuckDB itself cannot read GB18030, xlsx or SQLite here: its
``encodings``, ``excel`` and ``sqlite`` extensions download on first use, and this machine
has no route to them), typed and pseudonymised, inserted into the raw tables, and then the
SQL that dbt compiled for every model (taken from a pipeline run's ``manifest.json``) runs as
plain ``CREATE TABLE … AS`` statements in dependency order. No expectations, no quarantine,
no ledger, no Prefect, no dbt process, no tests, no docs. Prints the stages' wall and CPU time,
rows and peak RSS, and the figures it got.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import sqlalchemy as sa

from flows import schema
from flows.errors import BatchError
from flows.quality.screen import read_delivery
from flows.sources import common, members
from flows.warehouse import pii
from flows.warehouse.dbt import DBT_PROJECT_DIR
from flows.warehouse.ddl import RAW_SCHEMA
from flows.warehouse.migrations import MIGRATIONS

BENCH_KEY = b"benchmark-only-pseudonymisation-key"


def cpu_seconds() -> float:
    return time.process_time()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_all(landing: Path) -> tuple[dict[str, list[pl.DataFrame]], dict[str, list[dict[str, Any]]]]:
    """Every file of every source, parsed, typed and pseudonymised: raw table -> frames; and the
    rows of the file registers (welfare's workbooks): register table -> rows."""
    frames: dict[str, list[pl.DataFrame]] = {}
    workbooks: dict[str, list[dict[str, Any]]] = {}
    for source in schema.FILE_SOURCES:
        src = schema.source(source)
        for delivery in common.discover(landing, source):
            sha = common.sha256_file(delivery.path)
            try:
                parsed = read_delivery(delivery)
            except BatchError:  # unreadable as a whole: the pipeline rejects it too
                continue
            for name, frame in parsed.items():
                t = schema.table(source, name)
                typed = pii.pseudonymise(common.to_typed(frame, t, strict=False), t, BENCH_KEY)
                frames.setdefault(t.raw_table, []).append(typed.with_columns(pl.lit(sha).alias("_load_id")))
                if src.register is not None and frame.height:
                    workbooks.setdefault(src.register_table, []).append(
                        {
                            **{f: frame[f][0] for f in src.file_fields},
                            "_load_id": sha,
                            "_file_name": delivery.rel_name,
                            "_file_sha256": sha,
                            "_delivery_date": delivery.delivery_date,
                        }
                    )
    db = landing / "members.sqlite"
    if db.exists():
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            pulled = members.read(conn, date.today(), {t.name: None for t in schema.tables_of("members")})
        engine.dispose()
        for name, frame in pulled.items():
            t = schema.table("members", name)
            typed = pii.pseudonymise(common.to_typed(frame, t, strict=False), t, BENCH_KEY)
            frames.setdefault(t.raw_table, []).append(typed.with_columns(pl.lit("members").alias("_load_id")))
    return frames, workbooks


def create_raw(
    con: duckdb.DuckDBPyConnection,
    frames: dict[str, list[pl.DataFrame]],
    workbooks: dict[str, list[dict[str, Any]]],
) -> int:
    for migration in MIGRATIONS:  # the same DDL as the pipeline's warehouse: empty ops tables included
        for statement in migration.statements():
            con.execute(statement)
    rows = 0
    for raw_table, parts in frames.items():
        frame = pl.concat(parts, how="diagonal_relaxed")
        con.register("_frame", frame.to_arrow())
        con.execute(f"INSERT INTO {RAW_SCHEMA}.{raw_table} BY NAME SELECT * FROM _frame")
        con.unregister("_frame")
        rows += frame.height
    for register, rows_of in workbooks.items():
        con.register("_wb", pl.DataFrame(rows_of).to_arrow())
        con.execute(f"INSERT INTO {RAW_SCHEMA}.{register} BY NAME SELECT * FROM _wb")
        con.unregister("_wb")
    return rows


def model_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The seeds and models of the manifest, each after what it depends on."""
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    done: set[str] = set()
    order: list[dict[str, Any]] = []

    def visit(uid: str) -> None:
        if uid in done or uid not in nodes:
            return
        done.add(uid)
        for dep in nodes[uid]["depends_on"].get("nodes", []):
            visit(dep)
        order.append(nodes[uid])

    for uid in sorted(nodes):
        visit(uid)
    return order


def transform(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> int:
    built = 0
    for node in model_order(manifest):
        relation = node["relation_name"]
        if node["resource_type"] == "seed":
            path = DBT_PROJECT_DIR / node["original_file_path"]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {node['schema']}")
            con.execute(
                f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM read_csv('{path}', header = true)"
            )
        elif node["config"]["materialized"] != "ephemeral":
            code = node.get("compiled_code")
            if not code:
                raise SystemExit(
                    f"{node['name']}: no compiled SQL in the manifest (use a build's manifest.json)"
                )
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {node['schema']}")
            kind = "VIEW" if node["config"]["materialized"] == "view" else "TABLE"
            con.execute(f"CREATE OR REPLACE {kind} {relation} AS {code}")
        built += 1
    return built


def run(landing: Path, warehouse: Path, manifest_path: Path) -> dict[str, Any]:
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    stages: list[dict[str, Any]] = []
    t0, c0 = time.perf_counter(), cpu_seconds()
    frames, workbooks = read_all(landing)
    rows_read = sum(f.height for parts in frames.values() for f in parts)
    stages.append(
        {
            "stage": "read",
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": cpu_seconds() - c0,
            "rows": rows_read,
            "peak_mb": peak_mb(),
        }
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    con = duckdb.connect(str(warehouse))
    rows = create_raw(con, frames, workbooks)
    del frames
    stages.append(
        {
            "stage": "load",
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": cpu_seconds() - c0,
            "rows": rows,
            "peak_mb": peak_mb(),
        }
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    built = transform(con, manifest)
    figures = figures_of(con)
    con.close()
    stages.append(
        {
            "stage": "transform",
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": cpu_seconds() - c0,
            "rows": rows,
            "models": built,
            "peak_mb": peak_mb(),
        }
    )
    return {"stages": stages, "figures": figures}


def figures_of(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The 2021 figures a script's warehouse holds, as exact decimal text."""
    return {
        r[0]: str(Decimal(str(r[1])))
        for r in con.execute(
            "SELECT figure_id, value FROM marts.fig_annual_figures WHERE report_year = 2021"
        ).fetchall()
    }


def script_main(run_fn: Any, doc: str | None, argv: list[str] | None = None) -> int:
    """``python -m flows.bench.<baseline> LANDING WAREHOUSE.duckdb MANIFEST.json``: ``run_fn``'s
    result as JSON on stdout (the baselines here and in native.py share it)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("warehouse", type=Path, help="a new DuckDB file (its stem must match the manifest's)")
    parser.add_argument("manifest", type=Path, help="manifest.json of a pipeline run's dbt build")
    args = parser.parse_args(argv)
    json.dump(run_fn(args.landing, args.warehouse, args.manifest), sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    return script_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
