"""The pipeline against a bare DuckDB baseline, on the same files, timed on the same machine.

    python -m flows.bench.pipeline [--scale N] [--landing DIR] [--json]

Writes the 2021 demo landing zone, N times the zone's size (``unionwh demo --scale N``),
unless ``--landing`` names one; then runs, each as its
own child process so that its wall time and peak RSS are its own:

1. ``pipeline``: ``unionwh run`` on a fresh DuckDB warehouse, as a user runs it: Prefect's
   temporary server, extract, validate (Great Expectations), load with the ledger, dbt build
   with its tests, docs, figures and the annual summary;
2. ``delta``: a second ``unionwh run`` after a new delivery that re-delivers 1% of the rows
   (the nightly case: unchanged files are skipped, the models rebuild);
3. ``baseline``: ``flows.bench.baseline``: the same readers into one DuckDB connection and
   the SQL dbt compiled for the models, with nothing else (no validation, no orchestration).

It prints wall time, rows/s and peak RSS per run and stage, the ratios, and issue 8's
targets (full ≤ 3x the baseline, delta ≤ 10% of the full load, peak RSS < 4 GB, the demo
run < 30 s), as a table or as JSON. A benchmark, not a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flows.bench.load import BENCH_KEY
from flows.schema import ENCODINGS

TARGETS = {"ratio": 3.0, "delta_share": 0.10, "peak_mb": 4096.0, "demo_seconds": 30.0}


def tree_rss_mb(root: int) -> float:
    """The resident memory of ``root`` and all its descendants now, from /proc (MB)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def measured(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, exit code, output and memory: ``peak_mb``, the largest sum of
    resident memory over its whole process tree (the run, Prefect's server, dbt), sampled every
    0.2 s; ``peak_process_mb``, the largest single process (``wait4``'s ``ru_maxrss``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "seconds": seconds,
            "returncode": proc.returncode,
            "stdout": out.read().decode(),
            "stderr": err.read().decode(),
            "peak_mb": max(peak[0], usage.ru_maxrss / 1024),
            "peak_process_mb": usage.ru_maxrss / 1024,
        }


def run_ledger(warehouse: Path) -> dict[str, Any]:
    import duckdb  # deferred: duckdb (~0.1 s), only to read a finished run's ledger

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        run_id, phases, rows_read, status = con.execute(
            "SELECT run_id, phase_seconds, rows_read, status FROM ops.runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        figures = {
            r[0]: str(r[1])
            for r in con.execute(
                "SELECT figure_id, value FROM marts.fig_annual_figures WHERE report_year = 2021"
            ).fetchall()
        }
    finally:
        con.close()
    return {
        "run_id": run_id,
        "phases": json.loads(phases or "{}"),
        "rows_read": int(rows_read or 0),
        "status": status,
        "figures": figures,
    }


def write_delta(landing: Path, want: int) -> int:
    """A new delivery of registry and rights files re-delivering ``want`` of their rows (the
    first rows of their largest files, unchanged). Returns the rows written."""
    files = sorted(p for source in ("registry", "rights") for p in (landing / source).glob("*/*.csv"))
    sizes = {p: sum(1 for _ in p.open("rb")) - 1 for p in files}
    folder = (max(date.fromisoformat(p.parent.name) for p in files) + timedelta(days=1)).isoformat()
    written = 0
    for path in sorted(files, key=lambda p: -sizes[p]):
        out = landing / path.parent.parent.name / folder / path.name
        if written >= want or out.exists():
            continue
        enc = ENCODINGS[path.parent.parent.name]
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode(enc))))
        take = rows[1 : 1 + want - written]
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([rows[0], *take])
        out.write_bytes(buf.getvalue().encode(enc))
        written += len(take)
    return written


def _commit() -> str:
    """The checked-out commit (``+dirty`` when the work tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _row(label: str, r: dict[str, Any]) -> str:
    ph = r.get("phases", {})
    cols = " ".join(f"{ph.get(k, 0):>8.1f}" for k in ("extract", "validate", "load", "dbt"))
    rate = r["rows"] / r["seconds"] if r["seconds"] else 0
    return f"{label:<10} {r['seconds']:>8.1f} {cols} {r['rows']:>9} {rate:>9.0f} {r['peak_mb']:>8.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--landing", type=Path, help="an existing landing zone (default: write the 2021 demo)"
    )
    parser.add_argument("--scale", type=int, default=1, help="demo size: N copies of the zone (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="also append the result, with the commit, as a line of JSON to FILE "
        "(flows/bench/results.jsonl feeds RESULTS.md and the size-vs-time plot)",
    )
    args = parser.parse_args(argv)
    exe = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="unionwh-bench-pipeline-") as tmp:
        work = Path(tmp)
        landing = work / "landing"
        if args.landing:
            shutil.copytree(args.landing, landing)
        else:
            # deferred: Faker and openpyxl (~0.4 s), only without --landing
            from flows.demo.synth import generate

            t0 = time.perf_counter()
            generate(landing, year=2021, seed=2021, scale=args.scale)
            print(
                f"demo landing zone x{args.scale} written in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        env = {
            **os.environ,
            "UNIONWH_HOME": str(work),
            "UNIONWH_LANDING": str(landing),
            "UNIONWH_WAREHOUSE": f"duckdb:///{work / 'a' / 'warehouse.duckdb'}",
            "UNIONWH_OUTPUT": str(work / "runs"),
            "UNIONWH_PII_KEY": BENCH_KEY,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("UNIONWH_MEMBERS_URL", None)
        (work / "a").mkdir()
        runs: dict[str, dict[str, Any]] = {}
        full = measured([str(exe / "unionwh"), "run", "--year", "2021"], env, work)
        if full["returncode"] != 0:
            raise SystemExit(f"pipeline run failed:\n{full['stderr'][-3000:]}")
        ledger = run_ledger(work / "a" / "warehouse.duckdb")
        runs["pipeline"] = {
            "seconds": full["seconds"],
            "peak_mb": full["peak_mb"],
            "peak_process_mb": full["peak_process_mb"],
            "rows": ledger["rows_read"],
            "phases": ledger["phases"],
        }
        manifest = next((work / "runs").glob(f"{ledger['run_id']}/dbt/manifest.json"))
        (work / "b").mkdir()
        base = measured(
            [
                sys.executable,
                "-m",
                "flows.bench.baseline",
                str(landing),
                str(work / "b" / "warehouse.duckdb"),
                str(manifest),
            ],
            env,
            work,
        )
        if base["returncode"] != 0:
            raise SystemExit(f"baseline failed:\n{base['stderr'][-3000:]}")
        got = json.loads(base["stdout"])
        runs["baseline"] = {
            "seconds": base["seconds"],
            "peak_mb": base["peak_mb"],
            "peak_process_mb": base["peak_process_mb"],
            "rows": got["stages"][0]["rows"],
            "phases": {
                "extract": got["stages"][0]["seconds"],
                "load": got["stages"][1]["seconds"],
                "dbt": got["stages"][2]["seconds"],
            },
        }
        delta_rows = write_delta(landing, max(1, ledger["rows_read"] // 100))  # 1% of the rows
        delta = measured([str(exe / "unionwh"), "run", "--year", "2021"], env, work)
        dl = run_ledger(work / "a" / "warehouse.duckdb")
        runs["delta"] = {
            "seconds": delta["seconds"],
            "peak_mb": delta["peak_mb"],
            "peak_process_mb": delta["peak_process_mb"],
            "rows": dl["rows_read"],
            "phases": dl["phases"],
            "delivered_rows": delta_rows,
        }
    differs = sorted(k for k, v in ledger["figures"].items() if got["figures"].get(k) != v)
    result = {
        "scale": args.scale,
        "runs": runs,
        "ratio_pipeline_to_baseline": runs["pipeline"]["seconds"] / runs["baseline"]["seconds"],
        "delta_share_of_full": runs["delta"]["seconds"] / runs["pipeline"]["seconds"],
        "peak_mb": max(
            runs[k]["peak_mb"] for k in ("pipeline", "delta")
        ),  # the pipeline's, not the baseline's
        "figures_differing_from_baseline": differs,
        "targets": TARGETS,
    }
    if args.record:
        with args.record.open("a", encoding="utf-8") as f:
            f.write(
                json.dumps({"commit": _commit(), "measured_on": date.today().isoformat(), **result}) + "\n"
            )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{'run':<10} {'seconds':>8} {'extract':>8} {'validate':>8} {'load':>8} {'dbt':>8} {'rows':>9} "
        f"{'rows/s':>9} {'peak MB':>8}"
    )
    for label, r in runs.items():
        print(_row(label, r))
    met = lambda ok: "met" if ok else "NOT met"
    ratio, share = result["ratio_pipeline_to_baseline"], result["delta_share_of_full"]
    print(
        f"pipeline / baseline: {ratio:.2f}x (target <= {TARGETS['ratio']}x: {met(ratio <= TARGETS['ratio'])})"
    )
    print(
        f"delta ({runs['delta']['delivered_rows']} rows re-delivered) / full: {share:.0%} "
        f"(target <= 10%: {met(share <= TARGETS['delta_share'])})"
    )
    print(
        f"peak RSS: {result['peak_mb']:.0f} MB (target < 4096 MB: {met(result['peak_mb'] < TARGETS['peak_mb'])})"
    )
    print(
        f"demo run end to end: {runs['pipeline']['seconds']:.1f} s (target < 30 s: "
        f"{met(runs['pipeline']['seconds'] < TARGETS['demo_seconds'])})"
    )
    print(f"figures the baseline gets otherwise (it quarantines nothing): {', '.join(differs) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
