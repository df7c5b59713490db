"""Retention of run folders (flows/orchestration/retention.py, setting ``keep_runs``): on real
folders under tmp_path and a real DuckDB run ledger; no pipeline run."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.errors import ConfigError
from flows.orchestration import retention
from flows.settings import load_settings
from flows.warehouse.engine import init_warehouse
from tests.support import Env

pytestmark = pytest.mark.unit


def rid(day: int) -> str:
    """A run id started on 2026-01-<day> (``new_run_id``'s shape)."""
    return f"202601{day:02d}T020000-{day:06x}"


def make_run(output: Path, run_id: str, artifacts: bool = True, size: int = 1000) -> Path:
    """A run folder as a run leaves it: Data Docs, and (a run that built) dbt's artifacts."""
    folder = output / run_id
    (folder / "data_docs").mkdir(parents=True)
    (folder / "data_docs" / "index.html").write_bytes(b"x" * size)
    if artifacts:
        (folder / "dbt").mkdir()
        for name in ("run_results.json", "manifest.json"):
            (folder / "dbt" / name).write_text("{}", encoding="utf-8")
    return folder


def left(output: Path) -> set[str]:
    return {p.name for p in output.iterdir()}


def test_keeps_the_newest_n_and_what_is_running_unknown_or_protected(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    ids = [rid(d) for d in range(1, 9)]  # oldest first
    for i in ids:
        make_run(out, i, size=2000)
    ledger = {i: "succeeded" for i in ids}
    ledger[ids[1]] = "failed"
    ledger[ids[2]] = "running"  # (a run that has not finished: its folder is in use)
    del ledger[ids[3]]  # not in this warehouse's ledger: a run waiting for the lock, another warehouse's
    ledger[ids[4]] = "crashed"
    pruned = retention.prune(out, 3, ledger, protected={ids[0]})
    assert sorted(pruned.removed) == [ids[1], ids[4]]
    assert pruned.freed_bytes == 2 * (2000 + 2 * 2) and pruned.failed == []
    assert left(out) == {ids[0], ids[2], ids[3], *ids[5:]}
    assert retention.prune(out, 3, ledger, protected={ids[0]}).removed == []  # nothing more to do

    assert retention.to_remove(sorted(ids, reverse=True), 0, set(ids), set()) == []  # 0 keeps every folder
    assert retention.to_remove(sorted(ids, reverse=True), 6, set(ids), set()) == [ids[1], ids[0]]


def test_only_real_directories_named_like_a_run_id_symlinks_never_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "runs", tmp_path / "elsewhere"
    make_run(out, rid(20))
    old = make_run(out, rid(1))
    keep_me = make_run(outside, rid(2))  # a run-shaped folder outside the output folder
    (out / rid(2)).symlink_to(keep_me, target_is_directory=True)  # a link named like a run
    (out / rid(3)).write_text("a file named like a run", encoding="utf-8")
    odd = (
        "asof_20210601",
        "summary-2021",
        "20260104T020000-ABCDEF",
        "20260105T020000-0a0b0c0",
        rid(5) + ".old",
        "x" + rid(6),
        "2026-01-07T020000-000007",
    )
    for name in odd:
        (out / name).mkdir()
    (old / "linked").symlink_to(outside, target_is_directory=True)  # a link inside a run folder
    ledger = {name: "succeeded" for name in (rid(1), rid(2), rid(3), rid(20), *odd)}
    assert retention.run_folders(out) == [rid(20), rid(1)]
    assert retention.prune(out, 1, ledger, set()).removed == [rid(1)]
    assert left(out) == {rid(20), rid(2), rid(3), *odd}
    assert (keep_me / "data_docs" / "index.html").exists() and (keep_me / "dbt" / "manifest.json").exists()
    assert retention.prune(tmp_path / "no-such-folder", 1, ledger, set()).removed == []


def publish(published: Path, year: str, run_id: str | None) -> None:
    folder = published / year
    folder.mkdir(parents=True)
    (folder / "publication.json").write_text(json.dumps({"year": year, "run_id": run_id}), encoding="utf-8")
    (folder / "publication.json").chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # as publish leaves it: read-only


def test_published_runs_from_every_year(tmp_path: Path) -> None:
    published = tmp_path / "published"
    assert retention.published_runs(published) == set()  # nothing published yet
    publish(published, "2021", rid(1))
    publish(published, "2020", None)
    (published / ".2022.partial-0a1b2c3d").mkdir()  # a publication being written: no publication.json yet
    assert retention.published_runs(published) == {rid(1)}
    (published / "2019").mkdir()
    (published / "2019" / "publication.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="2019/publication.json"):
        retention.published_runs(published)


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    engine = sa.create_engine(url)
    try:
        init_warehouse(engine)
    finally:
        engine.dispose()
    return url


def ledger(url: str, runs: dict[str, str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for run_id, status in runs.items():
                conn.execute(
                    sa.text("INSERT INTO ops.runs (run_id, started_at, status) VALUES (:r, :t, :s)"),
                    {"r": run_id, "t": datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S"), "s": status},
                )
    finally:
        engine.dispose()


def apply(tmp_path: Path, url: str, keep: int, current: str) -> tuple[retention.Pruned | None, list[str]]:
    lines: list[str] = []
    with Env(UNIONWH_HOME=str(tmp_path)):
        settings = load_settings(
            warehouse=url, output=tmp_path / "runs", published=tmp_path / "published", keep_runs=keep
        )
    engine = sa.create_engine(url)
    try:
        return retention.apply(settings, engine, current, lines.append), lines
    finally:
        engine.dispose()


def test_after_a_run_the_published_the_summarys_and_the_running_runs_stay(
    tmp_path: Path, warehouse: str
) -> None:
    """A load-only run (no dbt artifacts) just succeeded: the newest run with artifacts, which
    the annual summary reads, stays; so do the published year's run, a run still running and a
    folder the ledger does not know (newer than this run: it waits for the lock)."""
    out = tmp_path / "runs"
    published, failed, summary_reads, load_only, running, current, waiting = (rid(d) for d in range(1, 8))
    for run_id in (published, failed, summary_reads, running, waiting):
        make_run(out, run_id)
    for run_id in (load_only, current):
        make_run(out, run_id, artifacts=False)
    ledger(
        warehouse,
        {
            published: "succeeded",
            failed: "failed",
            summary_reads: "succeeded",
            load_only: "succeeded",
            running: "running",
            current: "succeeded",
        },
    )
    publish(tmp_path / "published", "2021", published)
    pruned, lines = apply(tmp_path, warehouse, 1, current)
    assert pruned is not None and sorted(pruned.removed) == [failed, load_only]
    assert left(out) == {published, summary_reads, running, current, waiting}
    assert lines == [f"run folders: removed 2 beyond the newest 1 (0.0 MB: {load_only}, {failed})"]

    pruned, lines = apply(tmp_path, warehouse, 0, current)  # keep_runs 0: retention is off
    assert pruned is None and lines == [] and len(left(out)) == 5


def test_nothing_is_removed_when_a_publication_cannot_be_read(tmp_path: Path, warehouse: str) -> None:
    out = tmp_path / "runs"
    ids = [rid(d) for d in range(1, 5)]
    for run_id in ids:
        make_run(out, run_id)
    ledger(warehouse, dict.fromkeys(ids, "succeeded"))
    broken = tmp_path / "published" / "2021"
    broken.mkdir(parents=True)
    (broken / "publication.json").write_text("", encoding="utf-8")
    pruned, lines = apply(tmp_path, warehouse, 1, ids[-1])
    assert pruned is None and left(out) == set(ids)
    assert len(lines) == 1 and lines[0].startswith("run folders: none removed (") and "2021" in lines[0]


def test_keep_runs_setting(tmp_path: Path) -> None:
    with Env(UNIONWH_HOME=str(tmp_path)):
        assert load_settings().keep_runs == 30
        with Env(UNIONWH_KEEP_RUNS="0"):
            assert load_settings().keep_runs == 0
        with Env(UNIONWH_KEEP_RUNS="-1"), pytest.raises(ConfigError, match="keep_runs"):
            load_settings()
    assert os.environ.get("UNIONWH_KEEP_RUNS") is None
