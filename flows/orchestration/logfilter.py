"""Prefect logs a failed task or flow run with its traceback (``logger.exception`` on
``prefect.flow_runs`` and ``prefect.task_runs``). For our own errors (:class:`UnionWHError`:
a bad setting, a rejected file, a busy warehouse) that traceback says nothing the message does
not, and it buries the one line the CLI prints at the end. :func:`quiet_tracebacks` keeps
Prefect's message line and drops the traceback for those, on the console and in the log lines
sent to the Prefect server alike. Any other exception (a bug) keeps its traceback: it is what
a bug report needs. ``unionwh --debug`` does not install it. Pure logging: no Prefect import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flows.errors import UnionWHError

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
"""The loggers Prefect's flow and task engines log a run's exception to."""


class DropOwnTracebacks(logging.Filter):
    """Keeps every record; removes the traceback of a record about a :class:`UnionWHError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UnionWHError):
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


def quiet_tracebacks() -> Callable[[], None]:
    """Install the filter on Prefect's run loggers (a logger's filters survive Prefect's own
    ``dictConfig`` of them); returns the function that removes it again."""
    added: list[tuple[logging.Logger, logging.Filter]] = []
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropOwnTracebacks) for f in logger.filters):
            added.append((logger, DropOwnTracebacks()))
            logger.addFilter(added[-1][1])

    def remove() -> None:
        for logger, f in added:
            logger.removeFilter(f)

    return remove
