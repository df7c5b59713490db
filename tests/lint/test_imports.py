"""The import layers and the absence of cycles ([tool.importlinter] in pyproject.toml), checked by
import-linter's ``lint-imports`` as a developer runs it from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_dependencies_point_down_and_form_no_cycle() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"lint-imports:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    assert "0 broken" in proc.stdout and "3 kept" in proc.stdout, proc.stdout[-2000:]
    assert "the pipeline core (flows.pipeline) runs without Prefect" in proc.stdout.replace("\n", "")
