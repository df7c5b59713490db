"""The trace's dbt test results come from the ledger of builds (ops.dbt_node_results): each
test's latest result under the run's dbt project, whichever build ran it; a test no build ran
is ``missing``, one whose model was rebuilt after it ran is ``stale`` (real DuckDB file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.report.trace import _dbt_tests
from flows.warehouse import builds, migrations

pytestmark = pytest.mark.unit

MANIFEST = {
    "nodes": {
        "model.unionwh.stg_a": {
            "resource_type": "model",
            "name": "stg_a",
            "depends_on": {"nodes": ["source.unionwh.x.a"]},
        },
        "model.unionwh.fig": {
            "resource_type": "model",
            "name": "fig",
            "depends_on": {"nodes": ["model.unionwh.stg_a"]},
        },
        "test.unionwh.not_null_stg_a_id": {
            "resource_type": "test",
            "name": "not_null_stg_a_id",
            "depends_on": {"nodes": ["model.unionwh.stg_a"]},
        },
        "test.unionwh.unique_fig_id": {
            "resource_type": "test",
            "name": "unique_fig_id",
            "depends_on": {"nodes": ["model.unionwh.fig"]},
        },
        "test.unionwh.new_test": {
            "resource_type": "test",
            "name": "new_test",
            "depends_on": {"nodes": ["model.unionwh.fig"]},
        },
    }
}


def build(engine: sa.Engine, folder: Path, run_id: str, results: dict[str, str], project: str = "p1") -> Path:
    """A build of ``run_id`` that ran ``results`` (unique id -> status), recorded as a run records it."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    (folder / "run_results.json").write_text(
        json.dumps({"results": [{"unique_id": u, "status": s, "failures": 0} for u, s in results.items()]}),
        encoding="utf-8",
    )
    plan = builds.Plan(("source:ops+",), None, "test")
    builds.record(engine, run_id, project, plan, succeeded=True)
    assert builds.record_results(engine, run_id, project, folder) == len(results)
    return folder


def statuses(engine: sa.Engine, run_id: str, folder: Path) -> dict[str, tuple[str, str | None]]:
    tests, _ = _dbt_tests(engine, run_id, folder)
    return {c.name: (c.status, c.run_id) for checks in tests.values() for c in checks}


def test_latest_result_whichever_build_ran_it(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        migrations.upgrade(engine)
        build(
            engine,
            tmp_path / "r1",
            "r1",
            {
                "model.unionwh.stg_a": "success",
                "model.unionwh.fig": "success",
                "test.unionwh.not_null_stg_a_id": "pass",
                "test.unionwh.unique_fig_id": "pass",
            },
        )
        # a selective build: only fig and its tests
        r2 = build(
            engine,
            tmp_path / "r2",
            "r2",
            {"model.unionwh.fig": "success", "test.unionwh.unique_fig_id": "fail"},
        )
        assert statuses(engine, "r2", r2) == {
            "not_null_stg_a_id": ("pass", "r1"),
            "unique_fig_id": ("fail", "r2"),
            "new_test": ("missing", None),
        }
        # a model rebuilt (a build that failed before its tests ran): its older test result is stale
        r3 = build(engine, tmp_path / "r3", "r3", {"model.unionwh.stg_a": "success"})
        assert statuses(engine, "r3", r3)["not_null_stg_a_id"] == ("stale", "r1")
        # another dbt project (its files changed): none of the old results count
        r4 = build(engine, tmp_path / "r4", "r4", {"model.unionwh.fig": "success"}, project="p2")
        assert statuses(engine, "r4", r4)["not_null_stg_a_id"] == ("missing", None)
    finally:
        engine.dispose()


def test_artifacts_of_a_build_outside_a_run_give_their_own_results(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        migrations.upgrade(engine)
        folder = tmp_path / "dbt"
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
        (folder / "run_results.json").write_text(
            json.dumps({"results": [{"unique_id": "test.unionwh.unique_fig_id", "status": "pass"}]}),
            encoding="utf-8",
        )
        got = statuses(engine, "outside", folder)
        assert got["unique_fig_id"] == ("pass", "outside") and got["new_test"] == ("missing", None)
    finally:
        engine.dispose()
