"""Shared fixtures: a Prefect test harness and a demo warehouse built by a real flow run."""

from __future__ import annotations

from collections.abc import Iterator

import prefect.main  # noqa: F401  (configures Prefect's logging now; see below)
import pytest
import yaml

from tests.support import ROOT, Demo2021, demo_env

# Importing prefect's main module configures its logging: its console handler keeps the ``sys.stderr`` of that moment.
# Done here, that is pytest's session-long capture stream; done first inside a test that uses capsys or
# capfd, it would be that test's stream, closed when the test ends, and every later flow run in the
# session would fail writing a log line to it ("I/O operation on closed file"), whatever the test order.


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


# ``python -m pytest -n 2`` (pytest-xdist, the README's test command) runs the suite on two workers with
# ``--dist loadgroup``: a module's tests stay on one worker (its module fixtures are made once), and every
# test on the session demo run (``demo_2021``) joins one group, so that run is made once. Groups are handed
# out in the order below, the longest first (minutes each in CI), so the long ones start at once and the
# many short ones fill in beside them; the rest keep pytest's order.
LONGEST_FIRST = (
    "tests/orchestration/test_kill_recovery.py",
    "tests/hostile/test_hostile_corpus.py",
    "demo_2021",
    "tests/orchestration/test_backfill.py",
    "tests/warehouse/test_upgrade_from_previous_release.py",
    "tests/quality/test_fuzz_sources.py",
)


def xdist_group(item: pytest.Item) -> str:
    return "demo_2021" if "demo_2021" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
    items.sort(key=lambda item: rank.get(xdist_group(item), len(rank)))  # stable: the rest keep their order
