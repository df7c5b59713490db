"""The Data Docs index of a run that validated nothing (a scheduled run on a landing zone with
no new delivery and no members database): an empty index, not a FileNotFoundError."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.quality.docs import write_index

pytestmark = pytest.mark.unit


def test_index_of_a_run_that_validated_nothing(tmp_path: Path) -> None:
    page = write_index(tmp_path / "run" / "data_docs", "20261127T020000-abcdef", [])
    text = page.read_text(encoding="utf-8")
    assert page == tmp_path / "run" / "data_docs" / "index.html"
    assert "20261127T020000-abcdef" in text and "<td>" not in text
