"""Retention of run folders: ``<output>/<run-id>/`` takes 6–16 MB a run (Data Docs, dbt artifacts,
the summary), so a successful run removes the folders beyond the newest ``keep_runs``.

Never removed, whatever their age: a folder of a run that has not finished in ``ops.runs``
(``running``), or that ``ops.runs`` does not list at all (a run still waiting for the
warehouse lock has its folder before its row; another warehouse may share the output folder);
the folder of every published year's run (``<published>/<year>/publication.json``); the
newest succeeded run's, and the newest succeeded run's whose dbt artifacts are on disk (the
annual summary reads them: :func:`flows.report.trace.latest_artifacts`); and anything that is
not a directory named like a run id (``YYYYMMDDTHHMMSS-xxxxxx``): no file, no symlink (never
followed), no ``asof_…`` or ``summary-…`` folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.errors import safe_error_text
from flows.settings import Settings
from flows.warehouse.ddl import OPS_SCHEMA

RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
"""A run folder's name: :func:`flows.nightly.new_run_id`."""


@dataclass
class Pruned:
    """What one retention pass did."""

    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    failed: list[str] = field(default_factory=list)
    """Folders that could not be removed (``<run id>: <error type>``), left for the next pass."""


def run_folders(output_dir: Path) -> list[str]:
    """The run ids of the real directories in ``output_dir`` named like a run id, newest first
    (a run id starts with its start time); symlinks and files are not run folders."""
    try:
        entries = list(os.scandir(output_dir))
    except FileNotFoundError:
        return []
    return sorted(
        (e.name for e in entries if RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)),
        reverse=True,
    )


def to_remove(folders: list[str], keep: int, finished: set[str], protected: set[str]) -> list[str]:
    """Which of ``folders`` (newest first) go: beyond the newest ``keep``, a run ``finished``
    in the ledger and not ``protected``. ``keep`` 0 keeps every folder."""
    if keep <= 0:
        return []
    return [f for f in folders[keep:] if f in finished and f not in protected]


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):  # (os.walk does not follow symlinked folders)
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def prune(output_dir: Path, keep: int, runs: Mapping[str, str], protected: set[str]) -> Pruned:
    """Remove the run folders of ``output_dir`` beyond the newest ``keep`` whose run ``runs``
    (run id -> status, from ``ops.runs``) lists as finished (any status but ``running``),
    except the ``protected`` ones. A folder that cannot be removed is reported, not raised."""
    finished = {run_id for run_id, status in runs.items() if status != "running"}
    pruned = Pruned()
    for run_id in to_remove(run_folders(output_dir), keep, finished, protected):
        path = output_dir / run_id
        if path.is_symlink() or not path.is_dir():  # (changed since it was listed)
            continue
        size = _size(path)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            pruned.failed.append(f"{run_id}: {type(exc).__name__}")
            continue
        pruned.removed.append(run_id)
        pruned.freed_bytes += size
    return pruned


def published_runs(published_dir: Path) -> set[str]:
    """The run id of every published year (and of a publication being written): the
    ``run_id`` of each ``<published>/*/publication.json``. Raises ``ValueError`` when one
    cannot be read: then no run can be known not to be published."""
    runs: set[str] = set()
    try:
        folders = [e for e in os.scandir(published_dir) if e.is_dir()]
    except FileNotFoundError:
        return runs
    except OSError as exc:
        raise ValueError(f"cannot list {published_dir} ({type(exc).__name__})") from None
    for folder in folders:
        meta = Path(folder.path) / "publication.json"
        if not meta.exists() and folder.name.startswith("."):
            continue  # a publication still being written has no publication.json yet
        try:
            run_id = json.loads(meta.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError) as exc:
            raise ValueError(f"cannot read {meta} ({type(exc).__name__})") from None
        if run_id:
            runs.add(str(run_id))
    return runs


def ledger_runs(engine: Engine) -> dict[str, str]:
    """run id -> status of every run in ``ops.runs``."""
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(sa.text(f"SELECT run_id, status FROM {OPS_SCHEMA}.runs"))}


def apply(settings: Settings, engine: Engine, current: str, log: Callable[[str], None]) -> Pruned | None:
    """After a successful run (``current``; the lock is held): prune ``settings.output_dir`` to
    ``keep_runs``, keeping what the module docstring lists. Logs one line when it removed a
    folder or could not; returns None when retention is off or was skipped. Never raises: a
    run that succeeded stays succeeded, its folders are pruned by the next one."""
    # deferred: flows.report.trace (~0.3 s with the fund audit), only pruning needs it
    from flows.report.trace import latest_artifacts

    if settings.keep_runs <= 0:
        return None
    try:
        published = published_runs(settings.published_dir)
        runs = ledger_runs(engine)
        newest_with_artifacts, _ = latest_artifacts(engine, settings.output_dir)
        succeeded = sorted((r for r, s in runs.items() if s == "succeeded"), reverse=True)
        protected = {
            current,
            *published,
            *succeeded[:1],
            *([newest_with_artifacts] if newest_with_artifacts else []),
        }
        pruned = prune(settings.output_dir, settings.keep_runs, runs, protected)
    except Exception as exc:  # noqa: BLE001 - (a folder it cannot read, the warehouse gone): nothing more is removed
        log(f"run folders: none removed ({safe_error_text(exc)})")
        return None
    if pruned.removed or pruned.failed:
        names = ", ".join(pruned.removed[:3]) + (
            f" and {len(pruned.removed) - 3} more" if len(pruned.removed) > 3 else ""
        )
        log(
            f"run folders: removed {len(pruned.removed)} beyond the newest {settings.keep_runs} "
            f"({pruned.freed_bytes / 1e6:.1f} MB{': ' + names if names else ''})"
            + (f"; could not remove {', '.join(pruned.failed[:3])}" if pruned.failed else "")
        )
    return pruned
