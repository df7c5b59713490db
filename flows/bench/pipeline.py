"""The pipeline against a native baseline, on the same files, timed on the same machine.

    python -m flows.bench.pipeline [--scale N] [--landing DIR] [--json] [--record FILE]

Writes the 2021 demo landing zone, N times the zone's size (``unionwh demo --scale N``),
unless ``--landing`` names one; then runs, each as its own child process so that its wall
time, CPU time and peak memory are its own (its whole process tree):

1. ``pipeline``: ``unionwh run`` on a fresh DuckDB warehouse, as a user runs it: Prefect's
   temporary server, extract, validate (Great Expectations), load with the ledger, dbt build
   with its tests, docs, figures and the annual summary;
2. ``native``: ``flows.bench.native``: what a hand-written script does with the same zone:
   native readers into Arrow (fastexcel, Polars ``read_csv``/``read_ndjson``, an SQLite
   fetch), normalisation and the contract's row rules as Polars expressions (the rows the
   pipeline quarantines are dropped), one DuckDB insert per table and chunk of a million rows, the SQL dbt compiled;
3. ``readers``: ``flows.bench.baseline``: the pipeline's own readers and the same SQL, with
   no validation and no orchestration (it quarantines nothing, so some figures differ): what
   the readers cost, between the two;
4. ``delta``: a second ``unionwh run`` after a new delivery that re-delivers 1% of the rows
   (the nightly case: unchanged files are skipped, the models rebuild).

It prints wall and CPU seconds per run and phase, rows/s, peak memory of the process tree,
the ratios pipeline / native (wall and CPU), issue 22's targets, and checks that the pipeline
and the native script give the same 42 figures (exit code 1 if not). A benchmark, not a test.
CPU is the process tree's (``wait4``'s usage: the child and every descendant it waited for).
The pipeline records wall seconds per phase only; its CPU is split where its log says the dbt
build starts (the tree's CPU sampled from /proc every 0.2 s): start-up + extract + validate +
load, then dbt + figures + report + exit.
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

TARGETS = {
    "cpu_ratio_n10": 4.0,
    "cpu_ratio_n100": 3.0,
    "delta_share": 0.05,
    "peak_mb": 4096.0,
    "demo_seconds": 20.0,
}
"""Issue 22's targets: pipeline / native CPU <= 4x at N = 10 and <= 3x at N = 100, a 1% delta <= 5%
of the full load (N = 100), peak memory of the tree < 4 GB, the demo run <= 20 s (idle machine)."""


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants now, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_rss_mb(root: int) -> float:
    """The resident memory of ``root`` and all its descendants now, from /proc (MB)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in _tree(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and its live descendants so far, with the children
    each has waited for (``cutime``/``cstime``), from /proc."""
    ticks = 0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(cmd: list[str], env: dict[str, str], cwd: Path, split_at: str | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall time, exit code, output and resources: ``cpu_seconds``, user + system
    time of the whole process tree (``wait4``: the child and the descendants it waited for);
    ``peak_mb``, the largest sum of resident memory over the tree (the run, Prefect's server,
    dbt), sampled every 0.2 s; ``peak_process_mb``, the largest single process (``ru_maxrss``).
    ``split_at``: a text of the child's stderr; ``split_seconds``/``split_cpu_seconds`` are the
    wall and tree CPU time when it was written (from the same 0.2 s samples), or None."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        peak = [0.0]
        timeline: list[tuple[float, float, int]] = []  # (wall, tree CPU, stderr bytes so far)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))
                timeline.append(
                    (time.perf_counter() - t0, tree_cpu_seconds(proc.pid), os.stat(err.name).st_size)
                )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        split_seconds = split_cpu = None
        at = stderr.find(split_at.encode()) if split_at else -1
        if at >= 0:
            hit = next((s for s in timeline if s[2] > at), None)
            if hit is not None:
                split_seconds, split_cpu = hit[0], hit[1]
        return {
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "returncode": proc.returncode,
            "stdout": out.read().decode(),
            "stderr": stderr.decode(errors="replace"),
            "peak_mb": max(peak[0], usage.ru_maxrss / 1024),
            "peak_process_mb": usage.ru_maxrss / 1024,
            "split_seconds": split_seconds,
            "split_cpu_seconds": split_cpu,
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


PHASES = (("extract", "read"), ("validate", "flags"), ("load", "load"), ("dbt", "sql"))
"""The pipeline's phases (its ledger's ``phase_seconds``) and the native script's stages that do
the same work: read + normalise, rule flags, load (pseudonyms and DDL included), the models' SQL."""


def _child(cmd: list[str], env: dict[str, str], work: Path, what: str) -> dict[str, Any]:
    r = measured(cmd, env, work)
    if r["returncode"] != 0:
        raise SystemExit(f"{what} failed:\n{r['stderr'][-3000:]}")
    return r


def _script_run(r: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """A run of flows.bench.native or flows.bench.baseline: its stages as phases."""
    names = {b: a for a, b in PHASES} | {"transform": "dbt"}
    return {
        "seconds": r["seconds"],
        "cpu_seconds": r["cpu_seconds"],
        "peak_mb": r["peak_mb"],
        "peak_process_mb": r["peak_process_mb"],
        "rows": got["stages"][0]["rows"],
        "phases": {names[s["stage"]]: s["seconds"] for s in got["stages"]},
        "phases_cpu": {names[s["stage"]]: s["cpu_seconds"] for s in got["stages"] if "cpu_seconds" in s},
    }


def _pipeline_run(r: dict[str, Any], ledger: dict[str, Any]) -> dict[str, Any]:
    out = {
        "seconds": r["seconds"],
        "cpu_seconds": r["cpu_seconds"],
        "peak_mb": r["peak_mb"],
        "peak_process_mb": r["peak_process_mb"],
        "rows": ledger["rows_read"],
        "phases": ledger["phases"],
    }
    if r["split_cpu_seconds"] is not None:  # the tree's CPU before and after "dbt build:" in its log
        out["cpu_before_dbt"] = r["split_cpu_seconds"]
        out["cpu_from_dbt"] = r["cpu_seconds"] - r["split_cpu_seconds"]
        out["wall_before_dbt"] = r["split_seconds"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--landing", type=Path, help="an existing landing zone (default: write the 2021 demo)"
    )
    parser.add_argument("--scale", type=int, default=1, help="demo size: N copies of the zone (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--no-readers", action="store_true", help="skip the pipeline-readers run (flows.bench.baseline)"
    )
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="skip the native script (flows.bench.native): at N = 300 it would need ~20 GB; "
        "the pipeline's own time, memory and delta are still measured",
    )
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
        full = measured([str(exe / "unionwh"), "run", "--year", "2021"], env, work, split_at="dbt build: ")
        if full["returncode"] != 0:
            raise SystemExit(f"pipeline run failed:\n{full['stderr'][-3000:]}")
        ledger = run_ledger(work / "a" / "warehouse.duckdb")
        runs["pipeline"] = _pipeline_run(full, ledger)
        manifest = next((work / "runs").glob(f"{ledger['run_id']}/dbt/manifest.json"))
        scripts = {} if args.no_native else {"native": "flows.bench.native"}
        if not args.no_readers:
            scripts["readers"] = "flows.bench.baseline"
        got: dict[str, dict[str, Any]] = {}
        for label, module in scripts.items():
            (work / label).mkdir()
            cmd = [
                sys.executable,
                "-m",
                module,
                str(landing),
                str(work / label / "warehouse.duckdb"),
                str(manifest),
            ]
            r = _child(cmd, env, work, label)
            got[label] = json.loads(r["stdout"])
            runs[label] = _script_run(r, got[label])
        if "native" in runs:
            runs["native"]["dropped"] = got["native"].get("dropped", {})
        delta_rows = write_delta(landing, max(1, ledger["rows_read"] // 100))  # 1% of the rows
        delta = measured([str(exe / "unionwh"), "run", "--year", "2021"], env, work, split_at="dbt build: ")
        dl = run_ledger(work / "a" / "warehouse.duckdb")
        runs["delta"] = {**_pipeline_run(delta, dl), "delivered_rows": delta_rows}
    figures = ledger["figures"]
    native = got["native"]["figures"] if "native" in got else None
    native_differs = (
        sorted(k for k in figures.keys() | native.keys() if figures.get(k) != native.get(k))
        if native is not None
        else []
    )
    readers_differs = (
        sorted(k for k, v in figures.items() if got["readers"]["figures"].get(k) != v)
        if "readers" in got
        else None
    )
    p, n = runs["pipeline"], runs.get("native")
    result = {
        "scale": args.scale,
        "runs": runs,
        "ratio_pipeline_to_native": p["seconds"] / n["seconds"] if n else None,
        "cpu_ratio_pipeline_to_native": p["cpu_seconds"] / n["cpu_seconds"] if n else None,
        "ratio_pipeline_to_readers": p["seconds"] / runs["readers"]["seconds"] if "readers" in runs else None,
        "delta_share_of_full": runs["delta"]["seconds"] / p["seconds"],
        "peak_mb": max(runs[k]["peak_mb"] for k in ("pipeline", "delta")),  # the pipeline's
        "figures": len(figures),
        "figures_differing_from_native": (
            [{"figure": k, "pipeline": figures.get(k), "native": native.get(k)} for k in native_differs]
            if native is not None
            else None
        ),
        "figures_differing_from_readers": readers_differs,
        "targets": TARGETS,
    }
    if args.record:
        with args.record.open("a", encoding="utf-8") as f:
            f.write(
                json.dumps({"commit": _commit(), "measured_on": date.today().isoformat(), **result}) + "\n"
            )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 1 if native_differs or not figures else 0


def _phase_cells(r: dict[str, Any], key: str) -> str:
    ph = r.get(key, {})
    return " ".join(f"{ph[k]:>8.1f}" if k in ph else f"{'—':>8}" for k, _ in PHASES)


def report(result: dict[str, Any]) -> None:
    runs = result["runs"]
    print(
        f"{'run':<9} {'wall s':>8} {'CPU s':>8} | {'extract':>8} {'validate':>8} {'load':>8} {'dbt':>8} | "
        f"{'rows':>10} {'rows/s':>9} {'peak MB':>8}"
    )
    print(f"{'':<9} {'':>8} {'':>8} | {'read':>8} {'flags':>8} {'load':>8} {'sql':>8} |  (native's stages)")
    for label, r in runs.items():
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0
        print(
            f"{label:<9} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} | {_phase_cells(r, 'phases')} | "
            f"{r['rows']:>10} {rate:>9.0f} {r['peak_mb']:>8.0f}"
        )
        if "phases_cpu" in r:
            print(f"{'  CPU':<9} {'':>8} {'':>8} | {_phase_cells(r, 'phases_cpu')} |")
        if "cpu_before_dbt" in r:
            print(
                f"{'  CPU':<9} {'':>8} {'':>8} | start-up+extract+validate+load {r['cpu_before_dbt']:.1f} s "
                f"(wall {r['wall_before_dbt']:.1f} s); dbt+figures+report+exit {r['cpu_from_dbt']:.1f} s"
            )
    p, n = runs["pipeline"], runs.get("native")
    if "cpu_before_dbt" in p and n:
        before = sum(n["phases_cpu"].get(k, 0) for k in ("extract", "validate", "load"))
        print(
            f"CPU before dbt: pipeline {p['cpu_before_dbt']:.1f} s / native read+flags+load {before:.1f} s = "
            f"{p['cpu_before_dbt'] / before:.1f}x; dbt onwards: {p['cpu_from_dbt']:.1f} s / native sql "
            f"{n['phases_cpu']['dbt']:.1f} s = {p['cpu_from_dbt'] / n['phases_cpu']['dbt']:.1f}x"
        )
    wall, cpu = result["ratio_pipeline_to_native"], result["cpu_ratio_pipeline_to_native"]
    scale = result["scale"]
    target = TARGETS["cpu_ratio_n100"] if scale >= 100 else TARGETS["cpu_ratio_n10"] if scale >= 10 else None
    met = lambda ok: "met" if ok else "NOT met"
    verdict = (
        f" (target <= {target}x at N = {scale}: {met(cpu <= target)})" if target else " (targets at N >= 10)"
    )
    if n:
        print(f"pipeline / native: wall {wall:.2f}x, CPU {cpu:.2f}x{verdict}")
    else:
        print("pipeline / native: not measured (--no-native)")
    if result["ratio_pipeline_to_readers"] is not None:
        print(
            f"pipeline / pipeline readers without orchestration: wall {result['ratio_pipeline_to_readers']:.2f}x"
        )
    share = result["delta_share_of_full"]
    print(
        f"delta ({runs['delta']['delivered_rows']} rows re-delivered) / full: {share:.0%} "
        f"(target <= {TARGETS['delta_share']:.0%} at N = 100: {met(share <= TARGETS['delta_share'])})"
    )
    print(
        f"peak memory of the tree: {result['peak_mb']:.0f} MB (target < 4096 MB: {met(result['peak_mb'] < 4096)})"
    )
    if scale == 1:  # (the demo's own size: the README's run)
        print(
            f"demo run end to end: {p['seconds']:.1f} s (target <= {TARGETS['demo_seconds']:.0f} s on an idle "
            f"machine: {met(p['seconds'] <= TARGETS['demo_seconds'])})"
        )
    dropped = sum(n.get("dropped", {}).values()) if n else 0
    if result["figures_differing_from_native"] is None:
        print(f"figures: {result['figures']} computed; not compared (no native run)")
    elif result["figures_differing_from_native"]:
        print(f"FIGURES DIFFER between the pipeline and the native script (it dropped {dropped} rows):")
        for d in result["figures_differing_from_native"]:
            print(f"  {d['figure']}: pipeline {d['pipeline']}, native {d['native']}")
    else:
        print(
            f"figures: all {result['figures']} equal to the native script's (it dropped {dropped} flagged rows)"
        )
    if result["figures_differing_from_readers"] is not None:
        print(
            "figures the pipeline readers get otherwise (they quarantine nothing): "
            f"{', '.join(result['figures_differing_from_readers']) or 'none'}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
