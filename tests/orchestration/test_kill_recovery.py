"""Fault injection: kill the load at random points, drop its PostgreSQL connections, lock its
DuckDB file from another process, grow a landing file while it is read. After each fault and
a re-run, the warehouse equals that of a run that was never disturbed, and its figures table
is identical byte for byte.

Every run here is a real `unionwh run` process (flows/faults.py names the fail points; a
killed run dies by SIGKILL, a paused one waits for the test to do its harm); the landing zone
is the demo's, cut down (tests/orchestration/faultkit.py) so that 40-odd runs fit in CI; the
child processes share one local Prefect server.

The kill points are drawn at random on each CI run: 20 seeds, each a fail point and how many
times it is passed before the kill, among the points a clean run passes (its trace: 27
points, 427 passes on this landing zone). The seed shuffles the points and the kills go round
them, so 20 different points die each run (all of them, were there 20 or fewer). A failure names
the base seed: ``UNIONWH_KILL_SEED=<seed> pytest tests/orchestration/test_kill_recovery.py``
draws the same kills again.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.orchestration.faultkit import differences, duckdb_url, run, small_landing, start, state
from tests.support import (
    ARTIFACTS,
    create_database,
    drop_database,
    local_prefect_server,
    postgres_or_skip,
    wait_for,
)

pytestmark = pytest.mark.e2e

SEEDS = 20
BASE_SEED = int(os.environ.get("UNIONWH_KILL_SEED") or random.SystemRandom().randrange(1_000_000))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_landing(tmp_path_factory.mktemp("kill") / "landing")


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_prefect_server(tmp_path_factory.mktemp("prefect")) as (base, _):
        yield base


class Trace(Counter):
    """How often a run passed each fail point, and (``order``) the passes in the order it made them."""

    def __init__(self, passes: list[str]) -> None:
        super().__init__(passes)
        self.order = passes

    def position(self, kill: str) -> int:
        """Where in the run the kill ``<point>#<k>`` strikes: the index of that pass."""
        name, _, k = kill.partition("#")
        return [i for i, p in enumerate(self.order) if p == name][int(k) - 1]


@pytest.fixture(scope="module")
def clean(
    landing: Path, prefect_api: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, tuple, Trace]:
    """An undisturbed run: its exit code, its warehouse state, and how often it passed each fail point."""
    work = tmp_path_factory.mktemp("clean")
    trace = work / "trace.txt"
    done = run(landing, prefect_api, work, UNIONWH_FAULT_TRACE=str(trace))
    # exit 0: the cut-down landing zone rejects no file (exit 1, Exit.ATTENTION, would mean it did)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, state(duckdb_url(work)), Trace(trace.read_text(encoding="utf-8").split())


def draw_kills(points: Counter, base: int, n: int) -> list[str]:
    """``n`` fail points as ``<point>#<k>``: the points in an order the seed shuffles, round and
    round, each with a pass count drawn uniformly from those the clean run made."""
    names = sorted(points)
    random.Random(base).shuffle(names)
    return [
        f"{name}#{random.Random(base + i).randint(1, points[name])}"
        for i, name in enumerate(names[i % len(names)] for i in range(n))
    ]


def test_the_drawn_kills_cover_every_point_and_depend_only_on_the_seed() -> None:
    points = Counter({"extract.rights": 2, "load.committed": 9, "dbt.node": 300, "figures.computed": 1})
    kills = draw_kills(points, 7, 20)
    assert kills == draw_kills(points, 7, 20) and kills != draw_kills(points, 8, 20)
    assert {k.partition("#")[0] for k in kills} == set(points)
    assert all(1 <= int(k.partition("#")[2]) <= points[k.partition("#")[0]] for k in kills)


def recover(point: str, landing: Path, prefect_api: str, work: Path, clean: tuple) -> str | None:
    """Kill a run at ``point``, run again; what differs from the clean run (None: nothing)."""
    killed = run(landing, prefect_api, work, UNIONWH_FAULT_AT=point)
    if killed.returncode != -signal.SIGKILL:
        return f"{point}: never reached (exit {killed.returncode}):\n{killed.stdout[-1500:]}{killed.stderr[-1500:]}"
    again = run(landing, prefect_api, work)
    code, clean_state, _ = clean
    if again.returncode != code:
        return f"{point}: re-run exited {again.returncode}, not {code}:\n{again.stdout[-1500:]}{again.stderr[-1500:]}"
    problems = differences(state(duckdb_url(work)), clean_state)
    return f"{point}: " + "; ".join(problems) if problems else None


def test_a_run_killed_at_20_random_points_recovers_to_the_clean_state(
    landing: Path, prefect_api: str, clean: tuple, tmp_path: Path
) -> None:
    """20 seeded kills, two at a time (each is two real runs on its own warehouse). The kills
    that strike latest in a run (the longest killed runs) start first, so that neither worker
    is left with a long one at the end while the other has nothing to do."""
    _code, (_, figures, _), points = clean
    assert figures.count("\n") >= 42 and len(points) >= 10, points
    kills = draw_kills(points, BASE_SEED, SEEDS)
    longest_first = sorted(range(len(kills)), key=lambda i: -points.position(kills[i]))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(
            zip(
                longest_first,
                pool.map(
                    lambda i: recover(kills[i], landing, prefect_api, tmp_path / f"kill{i}", clean),
                    longest_first,
                ),
            )
        )
    outcomes = [done[i] for i in range(len(kills))]
    failures = [o for o in outcomes if o]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # what was tried, for tests/RELIABILITY.md
    (ARTIFACTS / "kill-recovery.json").write_text(
        json.dumps(
            {
                "base_seed": BASE_SEED,
                "fail_points_in_trace": len(points),
                "passes_in_trace": sum(points.values()),
                "kills": kills,
                "survived": len(kills) - len(failures),
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    assert not failures, (
        f"base seed {BASE_SEED} (UNIONWH_KILL_SEED={BASE_SEED} replays it), kills {kills}:\n\n"
        + "\n\n".join(failures)
    )


# ------------------------------------------------------------ the world changes mid-run
def paused_run(
    landing: Path, prefect_api: str, work: Path, point: str, harm, warehouse: str | None = None, **extra: str
) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Start a run that pauses at ``point``, call ``harm()`` while it waits there, let it go on;
    its exit code and output."""
    marker = work / "paused"
    proc = start(
        landing,
        prefect_api,
        work,
        warehouse,
        UNIONWH_FAULT_AT=point,
        UNIONWH_FAULT_PAUSE=str(marker),
        **extra,
    )
    try:
        wait_for(marker.exists, f"the run to reach {point}", 300, [proc])
        harm()
        marker.unlink()
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, (work / "run.log").read_text(encoding="utf-8", errors="replace")


@pytest.mark.postgres
def test_a_postgresql_warehouse_whose_connections_drop_mid_load(
    landing: Path, prefect_api: str, tmp_path: Path
) -> None:
    """Every connection of the run (the lock's session too) is cut after its third slice
    committed: the run stops with LockLost rather than write without the lock; the re-run
    ends where a clean run does. (The clean run, on a database of its own, runs meanwhile:
    each run keeps about one of CI's two cores busy.)"""
    server = postgres_or_skip()
    names = {k: f"unionwh_fault_{k}_{secrets.token_hex(3)}" for k in ("clean", "cut")}
    for name in names.values():
        create_database(server, name)
    try:
        urls = {k: f"{server}/{name}" for k, name in names.items()}
        with ThreadPoolExecutor(max_workers=1) as pool:
            clean_run = pool.submit(run, landing, prefect_api, tmp_path / "clean", urls["clean"])
            code, log = paused_run(
                landing,
                prefect_api,
                tmp_path / "cut",
                "load.committed#3",
                lambda: _cut_every_connection(urls["cut"]),
                urls["cut"],
            )
            done = clean_run.result()
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # no file rejected
        clean_state = state(urls["clean"])
        assert code == 3 and "lost the warehouse lock" in log, log[-3000:]  # failed midway: Exit.FAILED
        again = run(landing, prefect_api, tmp_path / "cut", urls["cut"])
        assert again.returncode == done.returncode, again.stdout[-3000:] + again.stderr[-3000:]
        assert "never finished (killed?)" in again.stdout + again.stderr  # the cut run's ops.runs row
        assert differences(state(urls["cut"]), clean_state) == []
    finally:
        for name in names.values():
            drop_database(server, name)


def _cut_every_connection(url: str) -> None:
    """Terminate every other session on the database at ``url``: the run's lock and its load."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            cut_off = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        assert cut_off >= 2  # the lock's session and the load's
    finally:
        engine.dispose()


def test_a_duckdb_file_locked_by_another_process_mid_load(
    landing: Path, prefect_api: str, clean: tuple, tmp_path: Path
) -> None:
    """Between two sources' loads (the run holds no DuckDB connection then), another process
    opens the warehouse file and keeps it for 8 s: the load's connection is refused, the load
    task retries after its back-off, and the run ends as a clean one does."""
    work = tmp_path / "locked"
    locker: list[subprocess.Popen[str]] = []

    def lock_the_file() -> None:
        code = (
            "import sys, time, duckdb\n"
            "while True:\n"
            "    try:\n        con = duckdb.connect(sys.argv[1]); break\n"
            "    except duckdb.IOException:\n        time.sleep(0.1)\n"
            "print('held', flush=True)\ntime.sleep(8)\ncon.close()\n"
        )
        locker.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(work / "wh.duckdb")], stdout=subprocess.PIPE, text=True
            )
        )
        assert locker[0].stdout is not None and locker[0].stdout.readline().strip() == "held"

    try:
        code, log = paused_run(landing, prefect_api, work, "load.source_done#2", lock_the_file)
    finally:
        for p in locker:
            p.kill()
            p.wait()
    assert "Could not set lock on file" in log, log[-3000:]  # the fault did happen
    clean_code, clean_state, _ = clean
    assert code == clean_code, log[-3000:]
    assert differences(state(duckdb_url(work)), clean_state) == []


def test_a_landing_file_growing_while_it_is_read(
    landing: Path, prefect_api: str, clean: tuple, tmp_path: Path
) -> None:
    """A rights file has half its lines when the run reads it; the rest arrive while the run
    reads. The run notices the file changed, retries the read, and loads the whole file
    once, as a clean run over the complete file does."""
    grown = tmp_path / "landing"
    shutil.copytree(landing, grown)
    path = min(p for p in (grown / "rights").rglob("*") if p.is_file())  # the first the run reads
    assert path.suffix in (".csv", ".jsonl"), path
    whole = path.read_bytes()
    lines = whole.split(b"\n")
    path.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
    time.sleep(0.01)

    def grow() -> None:
        path.write_bytes(whole)

    work = tmp_path / "grow"
    code, log = paused_run(grown, prefect_api, work, "read.rights#1", grow)
    assert "changed while it was being read" in log, log[-3000:]
    clean_code, clean_state, _ = clean
    assert code == clean_code, log[-3000:]
    assert differences(state(duckdb_url(work)), clean_state) == []
