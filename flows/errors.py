"""Our own exception types: caught once by the CLI and printed as one line; the CLI's exit codes."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import ClassVar


class Exit(IntEnum):
    """``unionwh``'s exit codes, one table for every command (docs/commands.md, "Exit codes")."""

    OK = 0
    """Done."""
    ATTENTION = 1
    """Done, with findings to look at: a run or backfill rejected files (or a full refresh
    differs), ``report diff`` finds figures that would change, ``status``'s newest run failed."""
    USAGE = 2
    """Refused: a usage, configuration or input error (argparse, the settings, the checks before
    a run, a landing zone without deliveries, a year without data, a year already published, the
    warehouse held by another run): fix what the line says and run again."""
    FAILED = 3
    """Failed: the command broke off on an error not in what was asked (a dbt test, a value the
    warehouse refused, a lost connection or lock, a bug: ``unexpected <Type>``). What a run
    committed stays; the next run carries on."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT)."""


class UnionWHError(Exception):
    """Base class of every error the pipeline reports to a user."""

    exit_code: ClassVar[Exit] = Exit.USAGE
    """How the CLI exits on this error (:class:`Exit`): our own refusals are usage errors."""


class ConfigError(UnionWHError):
    """Settings that cannot work (bad URL, missing folder, bad identifier)."""


class BatchError(UnionWHError):
    """A whole file (or sheet) is rejected: wrong encoding, missing columns, unreadable.

    ``rule`` is a stable identifier (``batch.encoding``, ``batch.columns`` …) so the
    ledger and tests can match on it; the message names the file.
    """

    exit_code = Exit.FAILED

    def __init__(self, file: str, rule: str, message: str) -> None:
        self.file = file
        self.rule = rule
        self.message = message
        super().__init__(f"{file}: [{rule}] {message}")


class RunFailed(UnionWHError):
    """The run finished but something in it failed (a batch error, a dbt test)."""

    exit_code = Exit.FAILED


class TransientError(UnionWHError):
    """A failure worth retrying (a file still being written); tasks retry these with backoff."""

    exit_code = Exit.FAILED


class FileInFlux(TransientError):
    """A delivered file changed while it was being read."""


class WarehouseWriteError(UnionWHError):
    """The warehouse refused rows (a value it cannot store): the message names the table, and
    where it can the file, row and column, never the value (see :func:`safe_error_text`)."""

    exit_code = Exit.FAILED


# ----------------------------------------------------------- safe error text
# A library's error text can quote the data it choked on: PostgreSQL's `invalid input syntax
# for type bigint: "11010519491231002X"` and its COPY CONTEXT line (the whole row), DuckDB's
# `Could not convert string '张三丰' to INT32`, a SQLite `no such column: 张三丰`. Contract v1.1:
# messages, logs, notifications and ledger fields never hold a cell value of a personal column.
_QUOTED = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|“[^”\n]*”|‘[^’\n]*’|「[^」\n]*」|`[^`\n]*`")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_LONG_NUMBER = re.compile(r"\d{7,}[Xx]?")


def scrub_text(text: str, limit: int = 300) -> str:
    """A foreign error text without what may be a value: quoted strings become '…', runs of
    Chinese characters (names) become …, runs of 7+ digits (resident IDs, phones) become #;
    one line, at most ``limit`` characters. Structure (offsets, types, positions) stays."""
    text = _QUOTED.sub("'…'", text)
    text = _CJK.sub("…", text)
    text = _LONG_NUMBER.sub("#", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _condition_name(exc: BaseException) -> str:
    """psycopg's class names are PostgreSQL's condition names in CamelCase: back to snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _sqlstate_text(exc: BaseException) -> str | None:
    """SQLSTATE, condition, the table/column/constraint it names and the primary message
    (scrubbed: it often quotes the value), from a psycopg error's diagnostics; None for
    errors without a SQLSTATE."""
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    if not sqlstate or diag is None:
        return None
    text = f"SQLSTATE {sqlstate} ({_condition_name(exc)})"
    if diag.message_primary:
        text += f": {scrub_text(diag.message_primary, 200)}"
    table = ".".join(n for n in (diag.schema_name, diag.table_name) if n)
    names = [
        f"{label} {scrub_text(value, 80)}"
        for label, value in (
            ("table", table),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
        )
        if value
    ]
    return text + (f" ({', '.join(names)})" if names else "")


def safe_error_text(exc: BaseException) -> str:
    """One line about any exception, safe for ops.runs, the ledger, logs and the notification.

    Our own errors (:class:`UnionWHError`) are written never to quote a value and stay as they
    are (``<type>: <message>``); a SQLAlchemy error is reduced to its driver error (its text
    adds the statement and its parameters); a driver error with a SQLSTATE becomes
    ``SQLSTATE <code> (<condition>): <scrubbed primary message> (table …, column …)``;
    anything else ``<type>: <first line, scrubbed>`` (:func:`scrub_text`)."""
    if isinstance(exc, UnionWHError):
        return f"{type(exc).__name__}: {exc}"
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    detail = _sqlstate_text(exc)
    if detail is not None:
        return detail
    lines = str(exc).strip().splitlines()
    detail = scrub_text(lines[0]) if lines else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
