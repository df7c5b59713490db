"""Run dbt in a child process (flows/warehouse/dbt_child.py) against the configured warehouse.

The settings decide the target (``Settings.dbt_target``); profiles.yml inside
dbt_project/ reads the connection from the environment this sets. Artifacts
(manifest.json, run_results.json) and dbt's log go to the run's own folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows import faults
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


PROGRESS = re.compile(r"\d+ of \d+ (OK|PASS|FAIL|ERROR|WARN|SKIP)\b")
"""dbt's per-node result lines ("12 of 250 OK created sql table model marts.dim_zone ... [OK in 0.05s]")."""


class Digest:
    """dbt's output as a run's log sees it: not every line (each would be a Prefect log record, an
    API call: 700 of them for the demo's build), but the start (``Running with dbt=…``,
    ``Found … models …``), every failure, error and warning with its node, a progress line at
    most every ``every`` seconds (``120 of 354 nodes done, 0 failed``) and the summary (the
    failures' details, ``Done. PASS=… TOTAL=…``). Hand it to :func:`run_dbt` as ``on_line``:
    it is called with each line of the output; ``emit`` gets the lines to log. The whole output
    stays in ``dbt-output.log``."""

    _RESULT = re.compile(r"\b(\d+) of (\d+) (OK|PASS|FAIL|ERROR|WARN|SKIP)\b")
    _STAMP = re.compile(r"^\d\d:\d\d:\d\d(  |\s*$)")  # (dbt's time, then two spaces)
    _SAY = re.compile(r"^(Running with dbt=|Found \d+ |Finished running |Completed |Done\. )")
    _TROUBLE = re.compile(r"\[WARNING\]|\b(Warning|Error|Failure|Exception)\b", re.IGNORECASE)

    def __init__(
        self, emit: Callable[[str], None], every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.emit, self.every, self.clock = emit, every, clock
        self.done = self.failed = self.total = 0
        self.started = False
        self.details = False  # between "Completed with … errors" and "Done.": the failures' details
        self.last: float | None = None  # when the last progress line (or the first line) came

    def __call__(self, line: str) -> None:
        text = self._STAMP.sub("", line.rstrip())
        if not text.strip():
            return
        if self.last is None:
            self.last = self.clock()
        result = self._RESULT.search(text)
        if result is not None:
            self.done += 1
            self.total = int(result.group(2))
            if result.group(3) in ("FAIL", "ERROR", "WARN"):
                self.failed += 1 if result.group(3) != "WARN" else 0
                self.emit(text)
            elif self.clock() - self.last >= self.every:
                self.last = self.clock()
                self.emit(f"{self.done} of {self.total} nodes done, {self.failed} failed")
            return
        if " START " in text:  # a node starting (its result line follows)
            return
        if text.startswith("Running with dbt="):
            if not self.started:  # (a second command in the same process says it again)
                self.started = True
                self.emit(text)
            return
        if text.startswith("Completed with"):
            self.details = True
        elif text.startswith("Done. "):
            self.details = False
            self.emit(text)
            return
        if self.details or self._SAY.match(text) or self._TROUBLE.search(text):
            self.emit(text)


def run_dbt(
    settings: Settings,
    command: list[str],
    artifacts: Path,
    on_line: Callable[[str], None] | None = None,
    then: Sequence[list[str]] = (),
) -> DbtResult:
    """``dbt <command>`` (e.g. ``["build"]``) with the run's target, in a child process;
    ``then``: more commands for the same process once this one succeeded (dbt starts once;
    see flows/warehouse/dbt_child.py). The result is the first command's.

    A child process, not dbtRunner in ours: dbt-duckdb keeps the DuckDB file open with its
    own configuration for the life of the process, which would lock the warehouse out.
    Its output goes to ``dbt-output.log``; each line is also handed to ``on_line`` as it comes
    (the flow's :class:`Digest` of it goes to the run's log).
    """
    flags, child_env = _flags(settings, artifacts)
    proc = _hand_to_warm(artifacts, flags, child_env, [command, *then])
    with (artifacts / "dbt-output.log").open("w", encoding="utf-8") as out:
        if proc is None:
            args = [str(Path(sys.executable).with_name("dbt")), *command, *flags]
            if then:
                args = [sys.executable, "-m", "flows.warehouse.dbt_child", str(artifacts), *command, *flags]
                for more in then:
                    args += ["--and", *more, *flags]
            proc = _spawn(args, child_env)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.write(line)
                if on_line is not None:
                    on_line(line.rstrip())
                if PROGRESS.search(line):
                    faults.checkpoint("dbt.node")
            proc.wait()
        except BaseException:  # the run was stopped (Ctrl-C, SIGTERM): so is dbt, before the run records it
            stop(proc)
            raise
    counts: dict[str, int] = {}
    failures: list[str] = []
    results_file = artifacts / "run_results.json"
    if results_file.exists():
        for r in json.loads(results_file.read_text(encoding="utf-8")).get("results", []):
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            if r["status"] in ("error", "fail", "runtime error"):
                failures.append(f"{r['unique_id']}: {r['status']} {(r.get('message') or '').strip()[:300]}")
    success = proc.returncode == 0 or (bool(then) and proc.returncode == 3)  # 3: a later command failed
    if not success and not failures:
        failures.append(f"dbt exited {proc.returncode}; see {artifacts / 'dbt-output.log'}")
    return DbtResult(success=success, command=command, artifacts=artifacts, counts=counts, failures=failures)


def _flags(settings: Settings, artifacts: Path) -> tuple[list[str], dict[str, str]]:
    """The flags every dbt command of a run takes, and the child's environment."""
    target, env = settings.dbt_target()
    artifacts.mkdir(parents=True, exist_ok=True)
    flags = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        target,
        "--target-path",
        str(artifacts),
        "--log-path",
        str(artifacts),
        "--log-level-file",
        settings.dbt_log_file_level,
    ]
    return flags, {**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}


_WARM: dict[Path, tuple[subprocess.Popen[str], list[str], dict[str, str]]] = {}
"""dbt processes started ahead of their commands (:func:`start_parse`), by artifacts folder."""


def start_parse(settings: Settings, artifacts: Path) -> subprocess.Popen[str]:
    """A dbt process for ``artifacts``, started in the background before the load: it imports
    dbt and parses the project (``dbt parse``: manifest.json and partial_parse.msgpack in
    ``artifacts``, its output in ``dbt-parse.log``) while the run loads, then waits. The next
    :func:`run_dbt` into the same folder with the same target hands it its commands, which run
    on the parsed manifest: dbt neither starts nor parses again (flows/warehouse/dbt_child.py,
    ``--warm``; about 2 s of the demo run). Parsing opens no warehouse connection, so it never
    meets the load's lock. Hand it to :func:`discard_parse` when the run builds nothing.

    The newest earlier run's ``partial_parse.msgpack`` (a sibling of ``artifacts``) is copied in
    first, so dbt re-parses only what changed since (dbt checks that the project, profile, variables
    and environment are the same, and parses everything when they are not)."""
    flags, env = _flags(settings, artifacts)
    _seed_partial_parse(artifacts)
    warm = ["--warm", str(artifacts), str(artifacts / "dbt-parse.log"), *flags]
    proc = _spawn([sys.executable, "-m", "flows.warehouse.dbt_child", *warm], env, commands_in=True)
    _WARM[artifacts.resolve()] = (proc, flags, env)
    return proc


PARTIAL_PARSE = "partial_parse.msgpack"


def _seed_partial_parse(artifacts: Path) -> None:
    """Copy the newest ``<earlier run>/dbt/partial_parse.msgpack`` beside ``artifacts`` into it."""
    if (artifacts / PARTIAL_PARSE).exists():
        return
    found = []
    for saved in artifacts.parent.parent.glob(f"*/{artifacts.name}/{PARTIAL_PARSE}"):
        with contextlib.suppress(OSError):  # (a folder removed meanwhile by retention)
            found.append((saved.stat().st_mtime, saved))
    if found:
        with contextlib.suppress(OSError):  # dbt then parses everything, as without one
            shutil.copyfile(max(found)[1], artifacts / PARTIAL_PARSE)


def _spawn(args: list[str], env: dict[str, str], commands_in: bool = False) -> subprocess.Popen[str]:
    """A dbt child: its output (stdout and stderr) on a text pipe; ``commands_in``: a pipe to its
    standard input too (a warm dbt reads its commands there)."""
    return subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE if commands_in else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl(PDEATHSIG) before exec; no thread runs in the child
    )


def _hand_to_warm(
    artifacts: Path, flags: list[str], env: dict[str, str], commands: list[list[str]]
) -> subprocess.Popen[str] | None:
    """The warm dbt of ``artifacts`` (:func:`start_parse`), given ``commands``; None when there
    is none, it has died or it was started for another target (then it is stopped)."""
    warm = _WARM.pop(artifacts.resolve(), None)
    if warm is None:
        return None
    proc, its_flags, its_env = warm
    if proc.poll() is None and its_flags == flags and its_env == env:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps([[*c, *flags] for c in commands]) + "\n")
            proc.stdin.close()
            return proc
        except OSError:  # (it ended meanwhile)
            pass
    discard_parse(proc)
    return None


def discard_parse(proc: subprocess.Popen[str] | None) -> None:
    """Stop a dbt process of :func:`start_parse` that no command took (the run builds nothing,
    or was stopped); nothing when it ran its commands already."""
    if proc is None:
        return
    for folder, (warm, _, _) in list(_WARM.items()):
        if warm is proc:
            del _WARM[folder]
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def stop(proc: subprocess.Popen[Any], grace_seconds: float = 3) -> None:
    """Stop a dbt child as Ctrl-C does (dbt cancels its queries: PostgreSQL stops them), then
    kill it if it is still there after ``grace_seconds``: a stopped run must not leave dbt
    writing to the warehouse, or holding the DuckDB file the run records its end in. Its
    output pipe is closed first: nobody reads it any more, and a child blocked writing to a
    full pipe would never see the signal."""
    if proc.stdout is not None:
        with contextlib.suppress(OSError):
            proc.stdout.close()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def die_with_parent() -> None:
    """In the dbt child, before exec: on Linux, ask for SIGKILL when the parent dies, so a
    killed run never leaves a dbt process writing to (or locking) the warehouse."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    seconds: float
    rows_affected: int | None
    message: str


def node_results(artifacts: Path) -> list[NodeResult]:
    """Every node of the last dbt command, from its run_results.json (empty if there is none)."""
    path = artifacts / "run_results.json"
    if not path.exists():
        return []
    out = []
    for r in json.loads(path.read_text(encoding="utf-8")).get("results", []):
        rows = (r.get("adapter_response") or {}).get("rows_affected")
        out.append(
            NodeResult(
                r["unique_id"],
                r["status"],
                round(float(r.get("execution_time") or 0), 3),
                rows if isinstance(rows, int) and rows >= 0 else None,
                (r.get("message") or "").strip()[:200],
            )
        )
    return out


DOCS = ["docs", "generate", "--static", "--no-compile"]
"""After a build into the same artifacts folder: the docs site (models, columns, tests,
lineage) as one self-contained HTML file, ``static_index.html``."""


def build(
    settings: Settings,
    artifacts: Path,
    on_line: Callable[[str], None] | None = None,
    full_refresh: bool = False,
    select: Sequence[str] = (),
    with_docs: bool = False,
) -> DbtResult:
    """``dbt build`` of everything, or of the ``select`` selectors (see flows/warehouse/builds.py);
    ``with_docs``: then the docs site, in the same dbt process (see :func:`docs_page`)."""
    command = [
        "build",
        *(["--full-refresh"] if full_refresh else []),
        *(["--select", *select] if select else []),
        # exposures (models/_exposures.yml) document what reads the marts; a build has nothing
        # to run for them, and would list each as a "no-op" result among the nodes it built
        "--exclude-resource-type",
        "exposure",
    ]
    result = run_dbt(settings, command, artifacts, on_line, then=[DOCS] if with_docs else [])
    if not result.success:
        raise RunFailed("dbt build failed: " + "; ".join(result.failures[:5]))
    return result


def docs_page(artifacts: Path) -> Path:
    """The docs site a build ``with_docs`` wrote (RunFailed when it could not)."""
    page = artifacts / "static_index.html"
    if not page.exists():
        raise RunFailed(f"dbt docs generate failed; see {artifacts / 'dbt-output.log'}")
    return page
