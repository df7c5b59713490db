"""Shared fixtures: a Prefect test harness and a demo warehouse built by a real flow run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT


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
