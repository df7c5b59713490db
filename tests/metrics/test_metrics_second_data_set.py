"""The semantic layer on a second generated data set (2022, another seed), built by real runs into
DuckDB and into PostgreSQL: every metric at year grain equals every figure of every year."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.metrics.engine import manifest_path
from tests.metrics.equality import assert_metrics_equal_figures
from tests.support import Env, demo_env, throwaway_postgres

KEY = "metrics-second-data-set-test-key"
"""A PostgreSQL warehouse wants its pseudonymisation key from the environment (a test key)."""


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flows.demo.synth import generate

    home = tmp_path_factory.mktemp("second")
    generate(home / "landing", year=2022, seed=2022)
    return home / "landing"


def _run(env: dict[str, str]) -> None:
    from flows.nightly import nightly_load

    with Env(**env):
        summary = nightly_load(year=2022)
    assert summary.status == "succeeded", summary


def test_duckdb(landing: Path, tmp_path: Path, prefect_harness: None) -> None:
    env = {**demo_env(tmp_path), "UNIONWH_LANDING": str(landing)}
    _run(env)
    engine = sa.create_engine(
        f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        connect_args={"read_only": True},
        poolclass=sa.pool.NullPool,
    )
    try:
        compared = assert_metrics_equal_figures(engine, manifest_path(tmp_path / "runs"), duckdb=True)
    finally:
        engine.dispose()
    assert compared >= 42 * 11  # 2012-2022


def test_postgresql(landing: Path, tmp_path: Path, prefect_harness: None) -> None:
    with throwaway_postgres("unionwh_metrics") as url:
        env = {
            **demo_env(tmp_path),
            "UNIONWH_LANDING": str(landing),
            "UNIONWH_WAREHOUSE": url,
            "UNIONWH_PII_KEY": KEY,
        }
        _run(env)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            compared = assert_metrics_equal_figures(engine, manifest_path(tmp_path / "runs"), duckdb=False)
        finally:
            engine.dispose()
    assert compared >= 42 * 11
