"""Optional: the dbt models on Spark (dbt-spark, session mode, local pyspark) give the figures
the DuckDB build gives. Needs ``pip install -e '.[spark]'`` and Java; skipped without them
(CI does not install pyspark: 456 MB). See flows/bench/spark.py."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from flows.demo.synth import generate
from flows.nightly import nightly_load
from tests.support import Env

pytestmark = pytest.mark.e2e


def spark_or_skip() -> None:
    missing = [m for m in ("pyspark", "dbt.adapters.spark") if importlib.util.find_spec(m) is None]
    missing += [] if shutil.which("java") else ["java"]
    if missing:
        pytest.skip(
            "optional: the Spark run needs pip install -e '.[spark]' (dbt-spark[session], pyspark) "
            f"and Java; missing: {', '.join(missing)}"
        )


def test_the_models_on_spark_give_the_duckdb_figures(tmp_path: Path, prefect_harness: None) -> None:
    spark_or_skip()
    from flows.bench import spark

    generate(tmp_path / "landing", year=2021, seed=2021)
    warehouse = tmp_path / "warehouse.duckdb"
    with Env(
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_LANDING=str(tmp_path / "landing"),
        UNIONWH_WAREHOUSE=f"duckdb:///{warehouse}",
        UNIONWH_OUTPUT=str(tmp_path / "runs"),
    ):
        assert nightly_load(year=2021).status == "succeeded"
    work = tmp_path / "spark"
    work.mkdir()
    sources = spark.declared_sources(spark.DBT_PROJECT_DIR)
    assert ("raw", "members__member") in sources and ("ops", "quarantine") in sources
    rows = spark.export_sources(warehouse, sources, work / "sources")
    assert rows["raw.members__member"] > 30_000
    spark.register_sources(work, sources, work / "sources")
    dbt = str(Path(sys.executable).with_name("dbt"))
    assert (
        spark.run_dbt(dbt, spark.DBT_PROJECT_DIR, work, ["seed", "--full-refresh"], work / "seed.log")[
            "returncode"
        ]
        == 0
    )
    build = spark.run_dbt(dbt, spark.DBT_PROJECT_DIR, work, ["build"], work / "build.log")
    assert build["returncode"] == 0, (work / "build.log").read_text()[-3000:]
    assert build["statuses"].get("error", 0) == 0 and build["statuses"].get("fail", 0) == 0
    figures = spark.compare_figures(warehouse, work)
    assert (
        figures["rows_duckdb"] > 42
        and figures["rows_equal"] == figures["rows_duckdb"] == figures["rows_spark"]
    )
    assert figures["n_differences"] == 0 and figures["types_equal"]
