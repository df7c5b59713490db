"""The dbt models on Apache Spark (dbt-spark, ``method: session``, local pyspark), from the
raw tables of a DuckDB warehouse; the figures compared with the DuckDB build's.

    pip install -e '.[spark]'      # dbt-spark[session] and pyspark (Java 17 on the PATH)
    python -m flows.bench.spark --duckdb data/warehouse.duckdb [--work-dir DIR] [--fresh]

The models run unchanged: SQL that differs between engines is in macros dispatched per
adapter (dbt_project/macros/cross_engine.sql). This is a benchmark, not a deployment: Spark
reads parquet copies of the raw tables; the nightly flow loads DuckDB or PostgreSQL.

Steps:
 1. export every source table the models declare (models/**/_*sources.yml: source schema +
    table/identifier) from the DuckDB file to parquet: <work>/sources/<schema>/<table>/data.parquet;
 2. register them in Spark's Hive metastore (embedded Derby at <work>/metastore_db, warehouse
    dir <work>/spark-warehouse) as external parquet tables <schema>.<table>, from a local
    SparkSession built like dbt-spark's session connection, then stop it (embedded Derby
    admits a single JVM);
 3. `dbt seed --full-refresh` and `dbt build` (which seeds again: the tests on the seed and on
    refs to it are only selected with it) with --target spark in a child process whose env
    points the profile's spark output (UNIONWH_DBT_SPARK_*) at the same metastore and warehouse dir;
 4. compare marts.fig_annual_figures (read from the parquet files of the Spark table) with
    the DuckDB warehouse's, row by row on (figure_id, report_year), and print JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def declared_sources(project_dir: Path) -> list[tuple[str, str]]:
    """(schema, table) of every source table the models declare."""
    found: set[tuple[str, str]] = set()
    for path in sorted((project_dir / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for src in doc.get("sources") or []:
            schema = src.get("schema") or src["name"]
            for table in src.get("tables") or []:
                found.add((schema, table.get("identifier") or table["name"]))
    return sorted(found)


def export_sources(warehouse: Path, sources: list[tuple[str, str]], out_dir: Path) -> dict[str, int]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(warehouse), read_only=True)  # (identifiers: the project's own source names)
    try:
        for schema, table in sources:
            target = out_dir / schema / table
            target.mkdir(parents=True)
            con.execute(
                f'copy (select * from "{schema}"."{table}") to \'{target / "data.parquet"}\' (format parquet)'
            )
            counts[f"{schema}.{table}"] = con.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchone()[0]
    finally:
        con.close()
    return counts


def spark_conf(work_dir: Path) -> dict[str, str]:
    """The settings the profile's spark output reads from the environment (see profiles.yml)."""
    return {
        "UNIONWH_DBT_SPARK_WAREHOUSE_DIR": str(work_dir / "spark-warehouse"),
        "UNIONWH_DBT_SPARK_METASTORE_DIR": str(work_dir / "metastore_db"),
    }


def register_sources(work_dir: Path, sources: list[tuple[str, str]], parquet_dir: Path) -> None:
    """Run _register in a child Python: its JVM (and so the embedded Derby metastore) must be
    gone before dbt's own session starts; SparkSession.stop() alone does not release Derby."""
    payload = json.dumps({"work_dir": str(work_dir), "sources": sources, "parquet_dir": str(parquet_dir)})
    subprocess.run([sys.executable, __file__, "_register", payload], check=True, cwd=work_dir)


def _register(work_dir: Path, sources: list[tuple[str, str]], parquet_dir: Path) -> None:
    from pyspark.sql import SparkSession  # deferred: pyspark (the optional spark extra), in the child only

    env = spark_conf(work_dir)
    spark = (
        SparkSession.builder.enableHiveSupport()
        .config("spark.sql.warehouse.dir", env["UNIONWH_DBT_SPARK_WAREHOUSE_DIR"])
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={env['UNIONWH_DBT_SPARK_METASTORE_DIR']};create=true",
        )
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.log.level", "ERROR")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        for schema in sorted({s for s, _ in sources}):
            spark.sql(f"create database if not exists `{schema}`")
        for schema, table in sources:
            spark.sql(f"drop table if exists `{schema}`.`{table}`")
            spark.sql(
                f"create table `{schema}`.`{table}` using parquet location '{parquet_dir / schema / table}'"
            )
    finally:
        spark.stop()


def run_dbt(dbt: str, project_dir: Path, work_dir: Path, args: list[str], log: Path) -> dict:
    env = dict(os.environ)
    env.update(spark_conf(work_dir))
    cmd = [
        dbt,
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target",
        "spark",
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
    ]
    results = work_dir / "target" / "run_results.json"
    results.unlink(missing_ok=True)
    started = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=work_dir, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    seconds = round(time.monotonic() - started, 1)
    counts: dict[str, int] = {}
    if results.exists():
        for r in json.loads(results.read_text())["results"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"returncode": proc.returncode, "seconds": seconds, "statuses": counts, "log": str(log)}


def compare_figures(warehouse: Path, work_dir: Path) -> dict:
    """Every column of marts.fig_annual_figures, row by row on (figure_id, report_year)."""
    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as wh (read_only)")
    files = work_dir / "spark-warehouse" / "marts.db" / "fig_annual_figures"
    con.execute(f"create view spark_fig as select * from read_parquet('{files}/*.parquet')")
    spark_cols = con.execute("describe spark_fig").fetchall()
    duck_cols = con.execute("describe wh.marts.fig_annual_figures").fetchall()
    names = [c[0] for c in duck_cols if c[0] in {s[0] for s in spark_cols}]
    select = ", ".join(names)
    spark_rows = con.execute(f"select {select} from spark_fig").fetchall()
    duck_rows = con.execute(f"select {select} from wh.marts.fig_annual_figures").fetchall()
    key = (names.index("figure_id"), names.index("report_year"))
    s = {(r[key[0]], r[key[1]]): r for r in spark_rows}
    d = {(r[key[0]], r[key[1]]): r for r in duck_rows}
    diffs, by_column, equal = [], {}, 0
    for k in sorted(set(s) | set(d)):
        if k in s and k in d:
            cols = [n for n, a, b in zip(names, s[k], d[k]) if a != b]
            if not cols:
                equal += 1
                continue
            for n in cols:
                by_column[n] = by_column.get(n, 0) + 1
            diffs.append(
                {
                    "figure_id": k[0],
                    "report_year": k[1],
                    "columns": {
                        n: {"spark": str(s[k][names.index(n)]), "duckdb": str(d[k][names.index(n)])}
                        for n in cols
                    },
                }
            )
        else:
            diffs.append({"figure_id": k[0], "report_year": k[1], "only_in": "spark" if k in s else "duckdb"})
    return {
        "rows_spark": len(spark_rows),
        "rows_duckdb": len(duck_rows),
        "rows_equal": equal,
        "columns_compared": names,
        "n_differences": len(diffs),
        "differing_columns": by_column,
        "differences": diffs[:20],
        "types_equal": [(c[0], c[1]) for c in spark_cols] == [(c[0], c[1]) for c in duck_cols],
        "types_spark_parquet": {c[0]: c[1] for c in spark_cols},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duckdb", required=True, type=Path, help="DuckDB warehouse file (read only)")
    ap.add_argument(
        "--project-dir", type=Path, default=DBT_PROJECT_DIR, help="dbt project dir (with profiles.yml)"
    )
    ap.add_argument(
        "--work-dir",
        type=Path,
        default=Path("data/spark"),
        help="parquet exports, metastore_db, spark-warehouse, dbt target/logs",
    )
    ap.add_argument("--dbt", default=str(Path(sys.executable).with_name("dbt")))
    ap.add_argument("--fresh", action="store_true", help="delete the metastore and spark-warehouse first")
    ap.add_argument("--skip-build", action="store_true", help="export and register only")
    args = ap.parse_args(argv)
    warehouse = args.duckdb.resolve()
    project = args.project_dir.resolve()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for d in ("metastore_db", "spark-warehouse", "target"):
            shutil.rmtree(work / d, ignore_errors=True)

    report: dict = {"warehouse": str(warehouse), "project_dir": str(project), "work_dir": str(work)}
    sources = declared_sources(project)
    t = time.monotonic()
    report["source_rows"] = export_sources(warehouse, sources, work / "sources")
    report["export_seconds"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    register_sources(work, sources, work / "sources")
    report["register_seconds"] = round(time.monotonic() - t, 1)
    if not args.skip_build:
        report["dbt_seed"] = run_dbt(
            args.dbt, project, work, ["seed", "--full-refresh"], work / "dbt-seed.log"
        )
        report["dbt_build"] = run_dbt(args.dbt, project, work, ["build"], work / "dbt-build.log")
        report["figures"] = compare_figures(warehouse, work)
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    ok = args.skip_build or (
        report["dbt_build"]["returncode"] == 0 and report["figures"]["n_differences"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_register":
        job = json.loads(sys.argv[2])
        _register(Path(job["work_dir"]), [tuple(x) for x in job["sources"]], Path(job["parquet_dir"]))
        sys.exit(0)
    sys.exit(main())
