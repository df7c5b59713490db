"""ruff over the Python (flows/, tests/, the lint context of dbt_project/): `ruff check` and
`ruff format --check`, with the repository's config ([tool.ruff] in pyproject.toml), as a developer
runs them from the repository root."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.parametrize(
    "command", [["check", "--output-format", "concise", "."], ["format", "--check", "."]]
)
def test_python_passes_ruff(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"ruff {' '.join(command)}:\n{proc.stdout}{proc.stderr}"
