"""Validation at scale: Great Expectations on Arrow-backed pandas chunks, timed and measured.

    python -m flows.bench.validation [--rows 100000 1000000 ...] [--json]

Each size runs in a fresh child process (so its peak RSS is its own) on a
synthetic ``rights.cases`` frame in canonical form: unique case numbers,
checksum-valid USCCs and resident IDs, 1% of rows broken on purpose. It prints
wall time, rows/s, peak RSS and the quarantine count per size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import polars as pl

from flows.checksums import resident_id_check_char, uscc_check_char
from flows.quality.runner import CHUNK_ROWS, validate
from flows.schema import table

POOL = 997


def synthetic_cases(rows: int) -> pl.DataFrame:
    """``rows`` canonical rights.cases rows; every 100th has a broken USCC check character."""
    usccs = []
    for i in range(POOL):
        body = f"91120116MA{i:07d}"
        usccs.append(body + uscc_check_char(body))
    ids = []
    for i in range(POOL):
        body = f"1201051990{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        ids.append(body + resident_id_check_char(body))
    idx = pl.int_range(0, rows, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"i": idx}).with_columns(
        case_no=pl.format("C{}", pl.col("i")),
        case_type=pl.when(pl.col("i") % 4 == 0).then(pl.lit("劳动争议")).otherwise(pl.lit("咨询")),
        received_on=pl.lit("2021-03-05"),
        uscc=pl.Series(usccs).gather(idx % POOL),
        worker_id_card=pl.Series(ids).gather(idx % POOL),
    )
    dispute = pl.col("case_type") == "劳动争议"
    frame = frame.with_columns(
        uscc=pl.when(pl.col("i") % 100 == 1)
        .then(pl.col("uscc").str.slice(0, 17) + pl.lit("!"))
        .otherwise(pl.col("uscc")),
        mediation_result=pl.when(dispute).then(pl.lit("成功")).otherwise(None),
        closed_on=pl.when(dispute).then(pl.lit("2021-04-01")).otherwise(None),
        recovered_yuan=pl.when(dispute).then(pl.lit("1200.50")).otherwise(None),
        _source=pl.lit("rights"),
        _file_name=pl.lit("rights/2021-06-30/cases.csv"),
        _file_sha256=pl.lit("0" * 64),
        _delivery_date=pl.lit("2021-06-30"),
        _row_number=pl.col("i") + 2,
        _parse_error=pl.lit(None, pl.String),
        _original=pl.lit("{}"),
    )
    return frame.drop("i")


def measure(rows: int) -> dict[str, Any]:
    frame = synthetic_cases(rows)
    t = table("rights", "cases")
    validate(frame.head(10), t, "warm-up")  # GE context and suite set-up, once per process
    start = time.perf_counter()
    result = validate(frame, t, "rights/2021-06-30/cases.csv")
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": rows,
        "chunk_rows": CHUNK_ROWS,
        "seconds": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "peak_rss_mb": round(peak_mb),
        "quarantined": result.quarantined.height,
        "expectations": result.expectations_run,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--json", action="store_true", help="one JSON object per size instead of a table")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0
    results = []
    for n in args.rows:
        out = subprocess.run(
            [sys.executable, "-m", "flows.bench.validation", "--one", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(results[-1]), flush=True)
    if not args.json:
        print(f"{'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak MB':>8} {'quarantined':>11}")
        for r in results:
            print(
                f"{r['rows']:>10} {r['seconds']:>8} {r['rows_per_s']:>9} {r['peak_rss_mb']:>8} "
                f"{r['quarantined']:>11}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
