"""The fast tier (``pytest -m unit``) stays fast: none of its tests may use the Prefect harness or the
session demo run, or carry a marker that says it needs a server or a whole run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit

SLOW_FIXTURES = {"prefect_harness", "demo_2021"}
SERVER_MARKERS = {"postgres", "mariadb", "e2e"}


class _Collected:
    def __init__(self) -> None:
        self.items: list[pytest.Item] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.items = list(items)


def test_no_unit_test_needs_a_server_or_a_run() -> None:
    from tests.support import ROOT

    collected = _Collected()
    code = pytest.main(
        [
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "unit",
            "-n",
            "0",
            "--rootdir",
            str(ROOT),
            str(ROOT / "tests"),
        ],
        plugins=[collected],
    )
    assert code == pytest.ExitCode.OK, code
    unit = [item for item in collected.items if item.get_closest_marker("unit")]
    assert len(unit) > 300, len(unit)  # the tier is there (and the marker selects it)
    wrong = {
        item.nodeid: sorted(
            SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            | SERVER_MARKERS & {m.name for m in item.iter_markers()}
        )
        for item in unit
    }
    assert not {k: v for k, v in wrong.items() if v}
