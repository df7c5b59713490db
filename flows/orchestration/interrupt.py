"""A run stopped from outside: Ctrl-C (SIGINT), a scheduler's SIGTERM, a closed terminal (SIGHUP).

What such a stop does (flows/nightly.py, flows/backfill.py): the batch being written is rolled
back (one transaction per file with its ledger entry), the slices being read stop at their next
file, a running dbt child is stopped, and the run's ``ops.runs`` row is finished as
``interrupted`` with the counts of the ledger entries it committed (the ledger is the truth);
then the warehouse lock goes. The command prints one line and exits ``128 + signal``: 130 for
Ctrl-C, 143 for SIGTERM, 129 for SIGHUP. The next run loads only what is left.

Nothing here imports Prefect. The signals reach the flow as exceptions:

- SIGINT (and SIGHUP) raise :class:`Interrupted`, a ``KeyboardInterrupt`` that carries the
  signal (:func:`watch`, around a run's body; :func:`stop_on_signals`, for the CLI process);
- SIGTERM inside a flow run is Prefect's: its handler raises ``TerminationSignal`` (which
  Prefect's runner uses to cancel a flow run, so it is never replaced there); the flow turns
  it into :class:`Interrupted` once the run is recorded.

A library can take a signal's exception for itself: DuckDB turns one raised while it runs into
an error of its own (``Query interrupted``, ``… failed: TerminationSignal``), and a retried task
would then simply run again. So :func:`requested` says whether a stop signal came at all,
whichever handler took it: during :func:`watch`, Python writes each signal's number to a pipe
of ours (``signal.set_wakeup_fd``), and our own handlers set the flag too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_requested = threading.Event()
_signal: list[int] = []
_wakeups: list[int] = []
"""The read ends of :func:`watch`'s wakeup pipes, innermost last."""
_wakeup_lock = threading.Lock()


class Interrupted(KeyboardInterrupt):
    """The process was told to stop (``signum``); ``detail`` says what the stop left, in one line
    (``run <id> stopped; …``), for the CLI's ``unionwh: interrupted: <detail>``."""

    def __init__(self, signum: int = signal.SIGINT, detail: str | None = None) -> None:
        super().__init__(detail or f"stopped by {signal_name(signum)}")
        self.signum = signum
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or f"stopped by {signal_name(self.signum)}"


def signal_name(signum: int) -> str:
    return NAMES.get(signum, f"signal {signum}")


def _first(exc: BaseException) -> BaseException:
    """The stop that says what it left: a second Ctrl-C while Prefect reports the first one's
    end raises anew, with the first (and its account of the run) as its context."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Interrupted) and seen.detail:
            return seen
        seen = seen.__context__
    return exc


def exit_code(exc: BaseException) -> int:
    """128 + the signal, as a shell reports a process a signal ended: 130 for a plain Ctrl-C."""
    return 128 + int(getattr(_first(exc), "signum", signal.SIGINT))


def describe(exc: BaseException) -> str:
    """The CLI's line after ``unionwh: interrupted: ``."""
    first = _first(exc)
    if isinstance(first, Interrupted) and first.detail:
        return first.detail
    return f"stopped by {signal_name(int(getattr(first, 'signum', signal.SIGINT)))}"


def requested() -> bool:
    """A stop signal came since :func:`reset` (even one a library swallowed)."""
    _drain()
    return _requested.is_set()


def _drain() -> None:
    """Note the stop signals Python wrote to the wakeup pipe (any thread may ask)."""
    with _wakeup_lock:
        if not _wakeups:
            return
        try:
            data = os.read(_wakeups[-1], 512)
        except (BlockingIOError, OSError):
            return
    for signum in data:
        if signum in STOPS:
            note(signum)


def received() -> int:
    """The first stop signal since :func:`reset` (SIGINT when none came)."""
    return _signal[0] if _signal else signal.SIGINT


def note(signum: int) -> None:
    """Record that ``signum`` came (a handler of someone else's took it: Prefect's SIGTERM)."""
    if not _requested.is_set():
        _signal.append(signum)
        _requested.set()


def reset() -> None:
    """A new run begins: no stop requested."""
    _requested.clear()
    _signal.clear()


def _raise(signum: int, frame: FrameType | None) -> None:
    note(signum)
    raise Interrupted(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def stop_on_signals() -> None:
    """For the CLI process of a run: SIGTERM and SIGHUP stop it as Ctrl-C does (an exception,
    so ``finally`` blocks and Python's exit handlers run: Prefect's temporary server, in a
    session of its own, is stopped by one). A signal set to be ignored (``nohup``) stays ignored."""
    if not _in_main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise)


@contextlib.contextmanager
def watch() -> Iterator[None]:
    """Around a run's body (main thread only; elsewhere nothing changes): SIGINT and SIGHUP raise
    :class:`Interrupted` and set the flag. SIGTERM is left to Prefect's handler; that it came,
    :func:`requested` learns from the wakeup pipe."""
    saved: dict[int, Any] = {}
    if not _in_main_thread():
        yield
        return
    for signum in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            saved[signum] = signal.signal(signum, _raise)
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    with _wakeup_lock:
        _wakeups.append(read)
    try:
        yield
    finally:
        _drain()
        signal.set_wakeup_fd(previous)
        with _wakeup_lock:
            _wakeups.remove(read)
            os.close(read)
            os.close(write)
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """While a stopped run records what it did (well under a second): one more Ctrl-C or SIGTERM
    (people press Ctrl-C twice) is held back until the block ends and then ignored, since the
    run is stopping anyway; a third one stops the recording too. Main thread only."""
    if not _in_main_thread():
        yield
        return
    count = [0]

    def hold(signum: int, frame: FrameType | None) -> None:
        count[0] += 1
        if count[0] >= 2:
            raise Interrupted(signum)

    saved = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
