"""A nightly run whose report year has no data yet (early January, say) loads and builds as usual
and says so, instead of failing on the annual summary it cannot write."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Demo2021, Env, copy_demo

pytestmark = pytest.mark.e2e


def test_a_run_for_a_year_without_data_succeeds_without_a_summary(
    demo_2021: Demo2021, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from flows.nightly import nightly_load

    mine = copy_demo(demo_2021, tmp_path / "demo")
    with Env(**mine.env), caplog.at_level("WARNING"):
        run = nightly_load(year=2023)
    assert run.status == "succeeded", run.errors
    assert run.figures == []
    assert not list(run.run_dir.glob("summary-2023.*"))
    assert "no figures for 2023 in the warehouse yet" in caplog.text
