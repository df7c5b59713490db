"""What a run carries from step to step: a batch on its way to the warehouse, the run's summary."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from flows.errors import BatchError
from flows.quality.docs import DocPage
from flows.warehouse import runlog
from flows.warehouse.figures import Figure
from flows.warehouse.loader import LedgerEntry


@dataclass
class Batch:
    """One table of one delivered file (or one members pull), on its way to the warehouse."""

    source: str
    table_name: str
    file_name: str
    sha256: str
    delivery_date: date | None
    frame: pl.DataFrame | None = None
    error: BatchError | None = None
    workbook: tuple[str, ...] | None = None
    pulled_at: datetime | None = None
    """A members pull's start (naive, settings' zone): caps the watermark its loaded rows set."""
    passed: pl.DataFrame | None = None
    quarantined: pl.DataFrame | None = None
    doc_pages: list[DocPage] = field(default_factory=list)


@dataclass
class RunSummary:
    run_id: str
    status: str = "running"
    run_dir: Path | None = None
    ledger: list[LedgerEntry] = field(default_factory=list)
    skipped_files: int = 0
    errors: list[str] = field(default_factory=list)
    dbt_counts: dict[str, int] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    report_files: list[Path] = field(default_factory=list)
    doc_pages: list[DocPage] = field(default_factory=list)
    workers: set[str] = field(default_factory=set)
    """The processes (host:pid) that extracted and validated the file sources."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase (extract, validate, load: summed over sources and slices; dbt; figures)."""
    refresh_differences: list[str] | None = None
    """Full refresh only: relations whose rebuilt rows differ from the incremental ones."""
    figure_changes: list[runlog.FigureChange] | None = None
    """Figures (any year) that differ from the previous run's (None: no build this run)."""

    @property
    def refresh_equal(self) -> bool | None:
        """Full refresh only: the rebuild equals the incremental warehouse (rows and figures)."""
        if self.refresh_differences is None:
            return None
        return not self.refresh_differences and not self.figure_changes

    @property
    def docs_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "data_docs"

    def timed(self, phase: str, started: float) -> None:
        self.add_time(phase, time.perf_counter() - started)

    def add_time(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @property
    def rows(self) -> tuple[int, int, int]:
        """(read, loaded, quarantined) over the batches that loaded."""
        loaded = [e for e in self.ledger if e.status == "loaded"]
        return (
            sum(e.rows_read for e in loaded),
            sum(e.rows_loaded for e in loaded),
            sum(e.rows_quarantined for e in loaded),
        )

    @property
    def held_back(self) -> int:
        """Rows of batches rejected whole (a batch gate tripped)."""
        return sum(e.rows_read for e in self.ledger if e.status == "rejected")


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Flag:
    """A flag threads read without a lock (a bool's assignment is atomic). Not a
    ``threading.Event``: the steps that read it are pickled for a Dask cluster, and a lock
    cannot be (there, in other processes, the flag is simply never set)."""

    def __init__(self) -> None:
        self._value = False

    def set(self) -> None:
        self._value = True

    def clear(self) -> None:
        self._value = False

    def is_set(self) -> bool:
        return self._value

    def __reduce__(self) -> tuple[type[Flag], tuple[()]]:
        return (Flag, ())


abandoned = Flag()
"""Set when the run's file-source phase ends in an exception (Ctrl-C, SIGTERM, a failed load):
the slices being read in threads stop at their next file or table, so the task runner, which
waits for them, lets the run stop in seconds. Cleared as each run's file-source phase begins."""

Log = logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]
"""Where a step logs: Prefect's run logger in a flow, any logger without one."""

LOG = logging.getLogger("unionwh.pipeline")
