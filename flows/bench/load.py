"""Loading the demo into DuckDB and into PostgreSQL, timed on the same machine.

    python -m flows.bench.load [--landing DIR] [--pg postgresql+psycopg://postgres@127.0.0.1:5432] [--json]

Writes the demo landing zone (unless ``--landing`` names one), starts Prefect's
temporary server once (a throw-away flow run, so neither target pays for it), then
runs the ``nightly-load`` flow with ``build=False`` (extract, validate, load: the load,
without dbt) into a fresh DuckDB file and into a fresh database on the PostgreSQL
server. Prints the wall time of each run, its phases and rows per second, and the
PostgreSQL / DuckDB ratio (issue 5's target: at most 2x). A benchmark, not a test: it
prints, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

BENCH_KEY = "benchmark-only-pseudonymisation-key"


def _admin(server: str, sql: str) -> None:
    import psycopg  # deferred: psycopg (~0.3 s); flows.bench.pipeline imports this module for BENCH_KEY

    url = make_url(f"{server}/postgres")
    with psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
        autocommit=True,
    ) as con:
        con.execute(sql)


def _warm_up() -> None:
    from prefect import flow  # deferred: Prefect (~1 s); flows.bench.pipeline imports this module too

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        return None

    warm_up()


def _load(work: Path, landing: Path, warehouse: str, label: str) -> dict[str, Any]:
    from flows.nightly import nightly_load  # deferred: Prefect, GE, dbt (seconds), as for _warm_up

    os.environ.update(
        UNIONWH_HOME=str(work),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=warehouse,
        UNIONWH_OUTPUT=str(work / f"runs-{label}"),
        UNIONWH_PII_KEY=BENCH_KEY,
    )
    os.environ.pop("UNIONWH_MEMBERS_URL", None)
    t0 = time.perf_counter()
    summary = nightly_load(build=False)
    seconds = time.perf_counter() - t0
    read, loaded, quarantined = summary.rows
    return {
        "target": label,
        "seconds": round(seconds, 2),
        "status": summary.status,
        "rows_read": read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "rows_per_second": round(read / seconds) if seconds else None,
        "phases": {k: round(v, 2) for k, v in summary.seconds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--landing", type=Path, help="an existing landing zone (default: write the 2021 demo)"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("UNIONWH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL without a database (a fresh database is made and dropped)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="unionwh-bench-load-") as tmp:
        work = Path(tmp)
        landing = args.landing
        if landing is None:
            # deferred: Faker and openpyxl (~0.4 s), only without --landing
            from flows.demo.synth import generate

            landing = work / "landing"
            t0 = time.perf_counter()
            generate(landing, year=2021, seed=2021)
            print(f"demo landing zone written in {time.perf_counter() - t0:.1f} s", flush=True)
        _warm_up()
        results = [_load(work, landing, f"duckdb:///{work / 'bench.duckdb'}", "duckdb")]
        name = f"unionwh_bench_{secrets.token_hex(4)}"
        _admin(args.pg, f'CREATE DATABASE "{name}"')
        try:
            results.append(_load(work, landing, f"{args.pg}/{name}", "postgresql"))
        finally:
            _admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    duck, pg = results
    ratio = pg["seconds"] / duck["seconds"]
    load_ratio = pg["phases"]["load"] / duck["phases"]["load"]
    if args.json:
        print(
            json.dumps(
                {"runs": results, "ratio": round(ratio, 2), "load_phase_ratio": round(load_ratio, 2)},
                indent=2,
            )
        )
        return 0
    print(
        f"{'target':<11} {'seconds':>8} {'extract':>8} {'validate':>9} {'load':>7} {'rows read':>10} "
        f"{'rows/s':>8}  status"
    )
    for r in results:
        ph = r["phases"]
        print(
            f"{r['target']:<11} {r['seconds']:>8.1f} {ph['extract']:>8.1f} {ph['validate']:>9.1f} "
            f"{ph['load']:>7.1f} {r['rows_read']:>10} {r['rows_per_second']:>8}  {r['status']}"
        )
    print(
        f"PostgreSQL / DuckDB: {ratio:.2f}x for the whole load run, {load_ratio:.2f}x for the load phase "
        f"(target: at most 2x; {'met' if ratio <= 2 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
