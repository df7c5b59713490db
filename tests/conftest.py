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


# ``python -m pytest -n 2`` (pytest-xdist, the README's test command) runs the suite on two workers. The
# scheduler below keeps a module's tests on one worker (its module fixtures are made once, and its tests
# run in their order) and the modules on the session demo run (``demo_2021``) together, so that run is
# made once. (xdist's own ``--dist loadgroup`` cannot do it under pytest 9: it renames node ids through an
# attribute pytest 9 no longer reads, so its groups are silently ignored.) Work is handed out in collection
# order (``--no-loadscope-reorder`` in pyproject), which lists the longest first (minutes each in CI), so
# the long ones start at once and the many short ones fill in beside them.
LONGEST_FIRST = (
    "tests/orchestration/test_kill_recovery.py",
    "tests/hostile/test_hostile_corpus.py",
    "demo_2021",
    "tests/orchestration/test_backfill.py",
    "tests/warehouse/test_upgrade_from_previous_release.py",
    "tests/quality/test_fuzz_sources.py",
)
DEMO_MODULES = frozenset(
    {
        "tests/test_nightly.py",
        "tests/report/test_audit_workbook.py",
        "tests/report/test_charts_reconcile.py",
        "tests/report/test_facts_single_source.py",
        "tests/test_report_year_without_data.py",
        "tests/test_outputs_frozen.py",
        "tests/warehouse/test_snapshot.py",
        "tests/metrics/test_metrics.py",
    }
)
"""The modules with tests on the session demo run (a test elsewhere using it is refused below)."""


def scope(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "demo_2021" if module in DEMO_MODULES else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    return ModuleScheduling(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    strays = sorted(
        {i.nodeid.split("::", 1)[0] for i in items if "demo_2021" in getattr(i, "fixturenames", ())}
        - DEMO_MODULES
    )
    if strays:
        raise pytest.UsageError(
            f"tests on the session demo outside DEMO_MODULES (tests/conftest.py): {strays}"
        )
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(scope(item.nodeid), len(rank)))  # stable: the rest keep their order
