"""Our own exception types: caught once by the CLI and printed as one line."""

from __future__ import annotations


class UnionWHError(Exception):
    """Base class of every error the pipeline reports to a user."""


class ConfigError(UnionWHError):
    """Settings that cannot work (bad URL, missing folder, bad identifier)."""


class BatchError(UnionWHError):
    """A whole file (or sheet) is rejected: wrong encoding, missing columns, unreadable.

    ``rule`` is a stable identifier (``batch.encoding``, ``batch.columns`` …) so the
    ledger and tests can match on it; the message names the file.
    """

    def __init__(self, file: str, rule: str, message: str) -> None:
        self.file = file
        self.rule = rule
        self.message = message
        super().__init__(f"{file}: [{rule}] {message}")


class RunFailed(UnionWHError):
    """The run finished but something in it failed (a batch error, a dbt test)."""


class TransientError(UnionWHError):
    """A failure worth retrying (a file still being written); tasks retry these with backoff."""


class FileInFlux(TransientError):
    """A delivered file changed while it was being read."""
