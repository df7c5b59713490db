"""Fail points: named places where a test can make the process die, to prove recovery.

``UNIONWH_FAULT_AT=<point>[#<n>]`` kills the process with SIGKILL (no cleanup, no
``finally``: what a power cut or an OOM kill does) the n-th time (default the first)
execution reaches ``checkpoint(<point>)``. Unset, a checkpoint is one dictionary lookup.
The points: ``extract.<source>`` (after reading a file), ``extract.members`` (after the
pull), ``validate.<source>`` (after validating a batch), ``load.in_transaction`` (raw rows
written, not committed), ``load.committed`` (a batch committed), ``load.source_done``,
``dbt.node`` (dbt reported a node; dbt itself dies with its parent), ``dbt.done``,
``figures.computed`` and ``run.finishing``. The idea is that of FoundationDB's and TiKV's
fail points; tests/orchestration/test_kill_recovery.py uses them.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "UNIONWH_FAULT_AT"
_hits: dict[str, int] = {}
_lock = threading.Lock()


def checkpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("#")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
