"""A Data Docs page renders for any run id: Great Expectations reads a run name as a date when it
can, and a run id whose random suffix starts with four digits (``…-5733ad``, about 1 in 1,500)
read as a time zone 57 hours off: the page, and the run, failed (found by the kill test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.pipeline.extract import extract_files
from flows.pipeline.validate import validate_slice
from flows.settings import QualitySettings
from flows.sources import common
from tests.pipeline.test_core import toy_landing
from tests.test_toy_source import toys

__all__ = ["toys"]  # (the fixture, used by name)
pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "run_id", ["20261128T060235-5733ad", "20261128T060235-0000ad", "20261128T060235-3ea875"]
)
def test_a_page_renders_whatever_the_run_id(tmp_path: Path, toys: None, run_id: str) -> None:
    toy_landing(tmp_path / "landing")
    batches, *_ = extract_files("depot", set(), common.discover(tmp_path / "landing", "depot"))
    validate_slice("depot", batches, QualitySettings(), {}, tmp_path / run_id / "data_docs")
    [page] = batches[0].doc_pages
    assert run_id in page.path.read_text(encoding="utf-8")
