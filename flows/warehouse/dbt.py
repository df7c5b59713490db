"""Run dbt in-process against the configured warehouse.

The settings decide the target (``Settings.dbt_target``); profiles.yml inside
dbt_project/ reads the connection from the environment this sets. Artifacts
(manifest.json, run_results.json) and dbt's log go to the run's own folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flows.errors import RunFailed
from flows.settings import Settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@dataclass
class DbtResult:
    success: bool
    command: list[str]
    artifacts: Path
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dbt(settings: Settings, command: list[str], artifacts: Path) -> DbtResult:
    """``dbt <command>`` (e.g. ``["build"]``) with the run's target; never raises on model failures."""
    from dbt.cli.main import dbtRunner

    target, env = settings.dbt_target()
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [
        *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", target,
        "--target-path", str(artifacts),
        "--log-path", str(artifacts),
        "--quiet",
    ]
    env = {**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with _env(env):
        res = dbtRunner().invoke(args)
    counts: dict[str, int] = {}
    failures: list[str] = []
    for r in getattr(res.result, "results", None) or []:
        status = str(r.status)
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{r.node.unique_id}: {status} {(r.message or '').strip()[:300]}")
    if res.exception is not None:
        failures.append(f"dbt raised {type(res.exception).__name__}: {res.exception}")
    return DbtResult(success=bool(res.success), command=command, artifacts=artifacts, counts=counts,
                     failures=failures)


def build(settings: Settings, artifacts: Path) -> DbtResult:
    result = run_dbt(settings, ["build"], artifacts)
    if not result.success:
        raise RunFailed("dbt build failed: " + "; ".join(result.failures[:5]))
    return result
