"""sqlfluff over the dbt project's SQL, with the repository's config (dbt_project/.sqlfluff).

The linter runs as the command a developer runs (from the repository root); it needs no warehouse,
profile or dbt parse (jinja templater with dbt builtins, see dbt_project/.sqlfluff).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT


def test_dbt_project_sql_passes_sqlfluff() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # 0: clean; 1: violations (listed below); anything else: sqlfluff itself failed.
    assert proc.returncode in (0, 1), proc.stderr
    results = json.loads(proc.stdout)
    linted = {r["filepath"].replace("\\", "/") for r in results}
    expected = {
        p.relative_to(ROOT).as_posix()
        for folder in ("models", "macros")
        for p in (ROOT / "dbt_project" / folder).rglob("*.sql")
    }
    assert expected <= linted, f"not linted: {sorted(expected - linted)}"
    problems = [
        f"{r['filepath']}:{v['start_line_no']}:{v['start_line_pos']}: {v['code']} {v['description']}"
        for r in results
        for v in r["violations"]
    ]
    assert not problems, "sqlfluff lint dbt_project:\n" + "\n".join(problems)
    assert proc.returncode == 0, proc.stderr
