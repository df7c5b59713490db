"""Fail points: named places where a test can make the process die or stop, to prove recovery.

``UNIONWH_FAULT_AT=<point>[#<n>]`` kills the process with SIGKILL (no cleanup, no
``finally``: what a power cut or an OOM kill does) the n-th time (default the first)
execution reaches ``checkpoint(<point>)``. With ``UNIONWH_FAULT_PAUSE=<file>`` as well,
the process does not die there: it creates ``<file>`` and waits until the file is removed,
so that a test can do something to the world at that exact moment (drop the database
connections, lock the warehouse file, append to a landing file) and then let the run go
on. ``UNIONWH_FAULT_TRACE=<file>`` appends the name of every point reached, one a line: a
clean run's trace is the list a test draws random fail points from. Unset, a checkpoint
is one dictionary lookup.

The points: ``extract.<source>`` (after reading a file), ``read.<source>`` (a file read,
before checking that it did not change meanwhile), ``extract.members`` (after the pull),
``validate.<source>`` (after validating a batch), ``load.in_transaction`` (raw rows
written, not committed), ``load.committed`` (a slice committed), ``load.source_done``,
``dbt.node`` (dbt reported a node; dbt itself dies with its parent), ``dbt.done``,
``figures.computed`` and ``run.finishing``. The idea is that of FoundationDB's and TiKV's
fail points; tests/orchestration/test_kill_recovery.py and test_interrupt.py use them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

ENV = "UNIONWH_FAULT_AT"
PAUSE_ENV = "UNIONWH_FAULT_PAUSE"
TRACE_ENV = "UNIONWH_FAULT_TRACE"
PAUSE_LIMIT_SECONDS = 600
_hits: dict[str, int] = {}
_lock = threading.Lock()


def checkpoint(name: str) -> None:
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with _lock, open(trace, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("#")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] != int(nth or 1):
            return
        pause = os.environ.get(PAUSE_ENV)
        if not pause:
            os.kill(os.getpid(), signal.SIGKILL)
        # (under the lock: another thread reaching this point waits too, as at a debugger's breakpoint)
        marker = Path(pause)
        marker.write_text(f"{name} {os.getpid()}\n", encoding="utf-8")
        deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
