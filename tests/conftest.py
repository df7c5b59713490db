"""Shared fixtures: a Prefect test harness and a demo warehouse built by a real flow run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.support import ROOT, Demo2021, demo_env


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (real flow and task runs, isolated database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def figure_catalogue() -> list[dict]:
    with (ROOT / "config" / "figures.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)["figures"]


@pytest.fixture(scope="session")
def demo_2021(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Demo2021:
    """The 2021 demo (seed 2021) through one real nightly run, made once per session (a full run is ~50 s in
    CI). Modules that only read it share it; a module that changes the warehouse, the landing zone or the run
    folders works on ``copy_demo(demo_2021, folder)``."""
    from flows.demo.synth import generate
    from flows.nightly import nightly_load
    from tests.support import Env

    home = tmp_path_factory.mktemp("demo-2021")
    manifest = generate(home / "landing", year=2021, seed=2021)
    env = demo_env(home)
    with Env(**env):
        first = nightly_load(year=2021)
    return Demo2021(home, env, first, manifest)

