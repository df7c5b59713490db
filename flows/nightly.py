"""The ``nightly-load`` Prefect flow: wiring only.

For each upstream system: extract (read + normalise new files) -> validate
(Great Expectations; failing rows to quarantine) -> load (raw rows, quarantine
and ledger per file in one transaction). Then dbt build, then the figures.
Secrets never travel as flow parameters: the warehouse and members URLs come
from settings (environment or config file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from sqlalchemy.engine import Engine

from flows import faults, schema
from flows.errors import BatchError, ConfigError, FileInFlux, RunFailed, TransientError, safe_error_text
from flows.orchestration import artifacts as ui_artifacts
from flows.orchestration import interrupt, notify, retention
from flows.orchestration.progress import Progress
from flows.quality.docs import DocPage, page_name, write_index, write_page
from flows.quality.gates import delivery_kind
from flows.quality.runner import validate_files, warm_up
from flows.quality.screen import WHOLE_FILE, gate, read_delivery
from flows.report.format import figures_markdown
from flows.settings import QualitySettings, Settings, load_settings
from flows.sources import common, members
from flows.warehouse import builds, dbt, pii, refresh, roles, runlog
from flows.warehouse.ddl import OPS_SCHEMA
from flows.warehouse.engine import init_warehouse, members_engine, warehouse_engine
from flows.warehouse.figures import Figure, fetch_figures
from flows.warehouse.loader import (
    LedgerEntry,
    already_seen,
    drop_watermark,
    ledger_of_run,
    previous_rows,
    rows_without_completed_load,
    seen_versions,
    watermarks,
    write_batch,
    written,
)
from flows.warehouse.lock import WarehouseBusy, warehouse_lock


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


def _tables_of_file(source: str, delivery: common.Delivery) -> list[str]:
    """The tables a delivered file holds (an entry of no known source, ledger source ``landing``,
    holds the one its name says: it is rejected whole)."""
    src = schema.find_source(source)
    return [Path(delivery.rel_name).stem] if src is None else list(src.tables_of_file(delivery.rel_name))


def in_window(day: date | None, window: tuple[date | None, date | None]) -> bool:
    """A delivery folder's date within [from, to] (an open window takes every file, also
    the misplaced ones without a date, which are then rejected with their reason)."""
    lo, hi = window
    if lo is None and hi is None:
        return True
    return day is not None and (lo is None or day >= lo) and (hi is None or day <= hi)


def delivery_dates(landing: Path, window: tuple[date | None, date | None]) -> list[date]:
    """The distinct delivery-folder dates of every file source within ``window``, in order."""
    days = {
        d.delivery_date
        for s in schema.FILE_SOURCES
        for d in common.discover(landing, s)
        if d.delivery_date is not None and in_window(d.delivery_date, window)
    }
    return sorted(days)


# ------------------------------------------------------------------------ tasks
TRANSIENT_DB_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)
"""The SQLAlchemy error classes that *may* be transient; :func:`is_transient` then asks the
driver's error which one it is (a wrong password is an OperationalError too)."""


def is_transient(exc: BaseException | None) -> bool:
    """Worth retrying: a file still being written, a database that dropped, refused or timed out
    the connection. Never a data or configuration error (those fail the same way every time): a
    refused login, an unknown database or host name, a missing database file, a bad statement —
    retrying those only delays the one-line error by a minute (flows/dbcheck.py classifies)."""
    from flows.dbcheck import db_error_is_transient

    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, TRANSIENT_DB_ERRORS):  # (never a ProgrammingError, DataError or IntegrityError)
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True  # the dialect saw a disconnect
        return db_error_is_transient(exc)
    return False


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient failures (never once the run was told
    to stop: DuckDB turns Ctrl-C into an error of its own, ``Query interrupted``)."""
    if interrupt.requested():
        return False
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # noqa: BLE001 - the result itself could not be read
        exc = err
    transient = is_transient(exc if isinstance(exc, BaseException) else None)
    if not transient:
        get_run_logger().info("%s failed with a non-transient error: not retried", task.name)
    return transient


RETRY = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient,
}
"""Transient failures: up to 3 retries after about 5, 10 and 20 s (jittered)."""


@task(name="extract", task_run_name="extract-{source}", cache_policy=NO_CACHE, **RETRY)
def extract_source(
    settings: Settings,
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[common.Delivery],
    this_run: set[str] | None = None,
    max_rows: int | None = None,
) -> tuple[list[Batch], int, int, set[str]]:
    """Read and normalise the delivered files of ``source`` not loaded before, in order, until
    ``max_rows`` rows are read (None: all of them).

    Returns the batches, how many files were skipped as unchanged, how many of ``deliveries``
    were dealt with (read or skipped) and the hashes seen so far in this run (``this_run``
    plus those read here): a byte-identical file later in the same run changes nothing either.
    """
    logger = get_run_logger()
    batches: list[Batch] = []
    skipped = 0
    this_run = set(this_run or ())
    progress = Progress(f"extract {source}", len(deliveries), "files", logger.info)
    done = 0
    for delivery in progress.over(deliveries):  # a file counts (and its time) once it has been read
        if (max_rows is not None and progress.rows >= max_rows) or _abandoned.is_set():
            break
        done += 1
        unread = delivery.unread  # a link out of the landing zone, a FIFO: never opened
        before = None if unread else common.file_state(delivery.path)
        sha = common.delivery_sha256(delivery)
        tables = _tables_of_file(source, delivery)
        if (
            all((t, sha, "loaded") in seen for t in tables)
            or (WHOLE_FILE, sha, "rejected") in seen
            or sha in this_run
        ):
            skipped += 1
            continue
        this_run.add(sha)
        base = {
            "source": source,
            "file_name": delivery.rel_name,
            "sha256": sha,
            "delivery_date": getattr(delivery, "delivery_date", None),
        }
        try:
            frames = read_delivery(delivery)
        except BatchError as err:
            frames, error = {}, err
        else:
            error = None
        faults.checkpoint(f"read.{source}")
        if not unread and common.file_state(delivery.path) != before:
            raise FileInFlux(f"{delivery.rel_name} changed while it was being read (still being written?)")
        faults.checkpoint(f"extract.{source}")
        progress.rows += sum(f.height for f in frames.values())
        if error is not None:
            batches.append(Batch(table_name=WHOLE_FILE, error=error, **base))
            continue
        for name, frame in frames.items():
            if (name, sha, "loaded") in seen:
                continue
            # a source that keeps a register of its files (welfare's workbooks): the file's fields
            src = schema.source(source)
            workbook = src.file_key(delivery.rel_name) if src.register is not None else None
            batches.append(Batch(table_name=name, frame=frame, workbook=workbook, **base))
    logger.info(
        "extract %s: %d new table batches (%d rows), %d files unchanged",
        source,
        len(batches),
        progress.rows,
        skipped,
    )
    return batches, skipped, done, this_run


@task(name="extract-members", task_run_name="extract-members-{table}", cache_policy=NO_CACHE, **RETRY)
def extract_members(
    settings: Settings,
    engine: Engine,
    run_id: str,
    table: str,
    full: bool = False,
    after: tuple[Any, Any] | None = None,
    max_rows: int | None = None,
) -> tuple[list[Batch], tuple[Any, Any] | None]:
    """Pull a page of ``table``'s member rows changed since the stored watermark, less the
    overlap window (``full``: every row): at most ``max_rows`` rows past the cursor ``after``.
    Rows the warehouse already holds from earlier runs are dropped (this run's earlier pages
    cannot hold a row of this one). Returns the batch (none when every row was
    held) and the cursor of the next page (None: this was the last). The batch carries the
    pull's start time, not a watermark: :func:`load_batches` sets that from the rows that pass
    validation. A stored watermark later than the pull is dropped and the table pulled in full."""
    logger = get_run_logger()
    url = settings.members_database_url
    if url is None:
        logger.warning("members: no database configured and no <landing>/members.sqlite; skipped")
        return [], None
    t = schema.table("members", table)
    mark = watermarks(engine, "members").get(table)
    pulled_at = datetime.now(ZoneInfo(settings.timezone)).replace(tzinfo=None)  # as the platform writes time
    if mark is not None and mark > pulled_at:
        # Set by a row dated in the future (releases before issue 18): what changed since it was set
        # is unknown, so everything is read again (rows held are dropped); the load sets a new one.
        logger.warning(
            "members %s: the stored watermark %s is later than this pull: dropped, every row is pulled again",
            table,
            f"{mark:%Y-%m-%d %H:%M:%S}",
        )
        drop_watermark(engine, "members", table)
        mark, full = None, True
    since = None if full else members.lower_bound(mark, timedelta(minutes=settings.members_overlap_minutes))
    today = pulled_at.date()
    source_engine = members_engine(url)
    try:
        with source_engine.connect() as conn:
            pulled, cursor = members.read_page(conn, t, today, since, after, max_rows)
    except BatchError as err:
        # named by its table: a run may reject both tables, each gets its own ledger row
        return [Batch("members", table, err.file, "-", today, error=err)], None
    finally:
        source_engine.dispose()
    faults.checkpoint("extract.members")
    lo, hi = members.updated_range(pulled)
    held = seen_versions(engine, t, max((d for d in (since, lo) if d is not None), default=None), hi, run_id)
    frame, dropped = members.drop_seen(pulled, t, *held)
    logger.info(
        "extract members %s: %d rows pulled%s, %d new",
        table,
        pulled.height,
        " (full re-pull)" if full else "",
        frame.height,
    )
    if dropped:
        logger.info(
            "extract members %s: %d rows re-read in the overlap window were already loaded", table, dropped
        )
    if frame.height == 0:
        return [], cursor
    # The watermark comes later (load_batches): from the rows that pass validation, capped at pulled_at.
    return [
        Batch(
            "members",
            table,
            frame["_file_name"][0],
            frame["_file_sha256"][0],
            today,
            frame=frame,
            pulled_at=pulled_at,
        )
    ], cursor


@task(name="validate", task_run_name="validate-{source}", cache_policy=NO_CACHE)
def validate_batches(
    source: str,
    batches: list[Batch],
    gates: QualitySettings,
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
) -> list[Batch]:
    """Run each batch's expectation suite; split passing and quarantined rows; apply batch gates;
    write each validation's Data Docs page."""
    logger = get_run_logger()
    docs_dir.mkdir(parents=True, exist_ok=True)
    by_table: dict[str, list[Batch]] = {}
    for b in batches:
        if b.frame is not None:
            by_table.setdefault(b.table_name, []).append(b)
    progress = Progress(f"validate {source}", len(by_table), "tables", logger.info)
    # one validation per table: GE's cost per validation is fixed; a table counts once validated
    for name, group in progress.over(by_table.items()):
        if _abandoned.is_set():  # the run stops: nobody will load this slice
            break
        assert all(b.frame is not None for b in group)
        progress.rows += sum(b.frame.height for b in group if b.frame is not None)
        label = (
            group[0].file_name if len(group) == 1 else f"{group[0].file_name} and {len(group) - 1} more files"
        )
        try:
            results, ge_results = validate_files(
                [b.frame for b in group if b.frame is not None], schema.table(source, name), label
            )
        except BatchError as err:
            for b in group:
                b.error = BatchError(b.file_name, err.rule, err.message)
            continue
        pages = []
        for i, ge_result in enumerate(ge_results):
            # the first file's hash: slices of a source (and pages of a members pull) share labels
            pages.append(
                write_page(
                    docs_dir / page_name(source, name, f"{label}.{group[0].sha256[:12]}", i),
                    ge_result,
                    run_id=docs_dir.parent.name,
                    asset=label,
                )
            )  # (run folder: run id)
        faults.checkpoint(f"validate.{source}")
        for b, result in zip(group, results, strict=True):
            assert b.frame is not None
            b.doc_pages += [
                DocPage(
                    b.source,
                    b.table_name,
                    b.file_name,
                    b.frame.height,
                    result.quarantined.height,
                    page.path,
                    page.validated_at,
                )
                for page in pages
            ]
            b.error = gate(
                result, b.file_name, gates, previous.get((b.table_name, delivery_kind(b.file_name)))
            )
            if b.error is not None:
                continue
            b.passed, b.quarantined = result.passed, result.quarantined
            if result.failures_by_rule:
                top = ", ".join(
                    f"{r}={n}" for r, n in sorted(result.failures_by_rule.items(), key=lambda x: -x[1])[:3]
                )
                logger.info(
                    "validate %s %s: %d rows, %d quarantined (%s)",
                    b.file_name,
                    b.table_name,
                    b.frame.height,
                    result.quarantined.height,
                    top,
                )
    return batches


@task(name="prepare", task_run_name="prepare-{source}", cache_policy=NO_CACHE)
def prepare_slice(
    settings: Settings,
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[common.Delivery],
    this_run: set[str],
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
) -> tuple[list[Batch], int, int, set[str], dict[str, float], str]:
    """Extract and validate one slice of a file source (see :func:`extract_source`), wherever
    the task runner puts it (a thread, or a Dask worker): returns the validated batches, what
    extract returns besides, the seconds each step took and the process that did it (host:pid)."""
    t0 = time.perf_counter()
    batches, skipped, done, this_run = extract_source(
        settings, source, seen, deliveries, this_run, settings.stream_rows
    )
    t1 = time.perf_counter()
    validated = validate_batches(source, batches, settings.quality, previous, docs_dir)
    return (
        validated,
        skipped,
        done,
        this_run,
        {"extract": t1 - t0, "validate": time.perf_counter() - t1},
        f"{socket.gethostname()}:{os.getpid()}",
    )


@task(name="load", task_run_name="load-{source}", cache_policy=NO_CACHE, **RETRY)
def load_batches(
    engine: Engine, run_id: str, source: str, batches: list[Batch], settings: Settings
) -> list[LedgerEntry]:
    """Write each batch and its ledger entry in one transaction; personal columns get their
    keyed pseudonyms (the key is read here, never passed as a task parameter). Keyed by
    (table, file hash): a batch already written (by an earlier run, or by this task before a
    retry) is not written again."""
    logger = get_run_logger()
    key, _ = pii.resolve_key(settings)
    entries = []
    done = written(engine, source, run_id)
    progress = Progress(f"load {source}", len(batches), "batches", logger.info)
    with engine.connect() as conn:  # one connection, one transaction per batch
        for b in progress.over(batches):  # a batch counts once written (or skipped)
            progress.rows += b.frame.height if b.frame is not None else 0
            if (b.table_name, b.sha256) in done:
                logger.info("load %s %s: already written, skipped", b.file_name, b.table_name)
                continue
            if b.error is not None or b.frame is None:
                err = b.error or BatchError(b.file_name, "batch.unreadable", "no rows were read")
                rows_read = b.frame.height if b.frame is not None else 0
                entry = LedgerEntry(
                    run_id,
                    b.source,
                    b.table_name,
                    b.file_name,
                    b.sha256,
                    b.delivery_date,
                    rows_read,
                    0,
                    0,
                    "rejected",
                    err.rule,
                    err.message,
                )
                write_batch(conn, entry, None, None, None)
                logger.error("rejected %s: [%s] %s", b.file_name, err.rule, err.message)
                entries.append(entry)
                continue
            t = schema.table(b.source, b.table_name)
            passed = b.passed if b.passed is not None else b.frame.clear()
            quarantined = b.quarantined if b.quarantined is not None else b.frame.clear()
            entry = LedgerEntry(
                run_id,
                b.source,
                b.table_name,
                b.file_name,
                b.sha256,
                b.delivery_date,
                b.frame.height,
                passed.height,
                quarantined.height,
                "loaded",
            )
            # A members pull's watermark comes from the rows loaded, never from quarantined ones.
            mark = None if b.pulled_at is None else members.watermark_of(passed, b.pulled_at)
            write_batch(
                conn,
                entry,
                t,
                pii.pseudonymise(common.to_typed(passed, t), t, key),
                pii.pseudonymise(quarantined, t, key),
                workbook=b.workbook,
                watermark=mark,
            )
            entries.append(entry)
    loaded = sum(e.rows_loaded for e in entries)
    quarantined_rows = sum(e.rows_quarantined for e in entries)
    logger.info(
        "load %s: %d batches, %d rows loaded, %d quarantined", source, len(entries), loaded, quarantined_rows
    )
    return entries


@task(name="dbt-build", task_run_name="dbt-build", cache_policy=NO_CACHE)
def build_marts(
    settings: Settings, artifacts: Path, full_refresh: bool = False, select: tuple[str, ...] = ()
) -> dict[str, int]:
    """dbt build (models, seeds and their tests) on the run's target: everything, or the
    ``select`` selectors; then, in the same dbt process, the docs site. Each node's result is
    logged as dbt reports it; the whole result table becomes the run's ``dbt-results``
    artifact; manifest.json and run_results.json stay in the run's folder."""
    logger = get_run_logger()
    try:
        result = dbt.build(
            settings,
            artifacts,
            on_line=lambda line: logger.info("dbt: %s", line),
            full_refresh=full_refresh,
            select=select,
            with_docs=True,
        )
    finally:  # (a failed build's results too: the failures are what to look at)
        ui_artifacts.publish_dbt_results(dbt.node_results(artifacts), artifacts)
    logger.info("dbt build: %s", ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    return result.counts


@task(name="figures", task_run_name="figures", cache_policy=NO_CACHE)
def compute_figures(engine: Engine, year: int, run_dir: Path) -> tuple[list[Figure], list[Path]]:
    """Read the year's figures from the mart and write their table (``figures-<year>.json``, the
    figures with their trace, is the annual summary's: written once, by ``write_summary``)."""
    figures = fetch_figures(engine, year)
    md_path = run_dir / f"report-{year}.md"
    md_path.write_text(
        figures_markdown(year, figures, f"{year}年工作总结数据 / annual summary figures"), encoding="utf-8"
    )
    get_run_logger().info("figures %d: %d computed", year, len(figures))
    return figures, [md_path]


@task(name="annual-summary", task_run_name="annual-summary", cache_policy=NO_CACHE)
def write_summary(settings: Settings, engine: Engine, run_id: str, run_dir: Path) -> list[Path]:
    """The year's summary in Chinese (Markdown, HTML, Word) with this run's dbt results."""
    from flows.report.summary import write_report
    from flows.report.trace import collect

    data = collect(engine, settings.report_year, settings.output_dir, (run_id, run_dir / "dbt"))
    files = write_report(data, settings.template_path.read_text(encoding="utf-8"), run_dir)
    get_run_logger().info(
        "annual summary %d written: %s", settings.report_year, ", ".join(p.name for p in files)
    )
    return files


# ------------------------------------------------------------------------- flow
def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def check_conservation(engine: Engine) -> None:
    """Every loaded batch: rows read = rows loaded + rows quarantined. A rejected batch loads
    nothing: its rows are all held back (counted in rows_read, none loaded or quarantined).
    And every raw and quarantine row's load id has a completed ledger entry (all or nothing)."""
    with engine.connect() as conn:
        bad = conn.execute(
            sa.text(
                f"SELECT file_name, table_name FROM {OPS_SCHEMA}.load_ledger "
                "WHERE (status = 'loaded' AND rows_read <> rows_loaded + rows_quarantined) "
                "OR (status = 'rejected' AND rows_loaded + rows_quarantined <> 0)"
            )
        ).all()
    if bad:
        raise RunFailed("row conservation broken for " + ", ".join(f"{f} ({t})" for f, t in bad[:5]))
    orphans = rows_without_completed_load(engine)
    if orphans:
        raise RunFailed(
            "rows whose load has no completed ledger entry: "
            + ", ".join(f"{relation} {n}" for relation, n in orphans.items())
        )


def _finish(engine: Engine, summary: RunSummary, message: str | None) -> None:
    faults.checkpoint("run.finishing")
    runlog.finish(
        engine,
        summary.run_id,
        summary.status,
        message,
        summary.ledger,
        summary.skipped_files,
        summary.dbt_counts,
        None if summary.figure_changes is None else len(summary.figure_changes),
        summary.seconds,
    )


def stop_signal(exc: BaseException) -> int | None:
    """The signal that stopped the run, when ``exc`` is (or stands for) a stop: Ctrl-C's
    KeyboardInterrupt, Prefect's TerminationSignal (SIGTERM), or any error raised after a stop
    signal came (:func:`interrupt.requested`) — DuckDB turns one it takes in into an error of its
    own, which, should the signal have gone unseen, names it. None: a failure of its own."""
    if isinstance(exc, interrupt.Interrupted):
        return exc.signum
    if isinstance(exc, TerminationSignal):
        return exc.signal
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if interrupt.requested():
        return interrupt.received()
    seen: BaseException | None = exc
    while seen is not None:  # (a library's error naming the exception it took in)
        text = f"{seen} {getattr(seen, 'orig', '')}"
        if "TerminationSignal" in text:
            return signal.SIGTERM
        if "Query interrupted" in text:
            return signal.SIGINT
        seen = seen.__cause__ or seen.__context__
    return None


def runner_cancels(exc: BaseException) -> bool:
    """A SIGTERM that Prefect's runner sent to cancel (or reschedule) this flow run: Prefect's
    engine must see its own TerminationSignal to report that."""
    if not isinstance(exc, TerminationSignal):
        return False
    try:
        from prefect._internal.control_listener import get_intent
    except ImportError:  # pragma: no cover (another Prefect)
        return False
    return get_intent() is not None


CARRIES_ON = "; the next run carries on"
"""How a stopped run's line ends (a backfill says its own)."""


def _record_interruption(engine: Engine, summary: RunSummary, signum: int) -> interrupt.Interrupted:
    """Finish the run's ops.runs row as ``interrupted`` with what it committed: its completed
    ledger entries (each written in one transaction with its rows; the batch being written
    when the signal came was rolled back). The lock is still held. Returns the exception the
    run ends with, whose text the CLI prints."""
    logger = get_run_logger()
    summary.status = "interrupted"
    how = interrupt.signal_name(signum)
    with interrupt.shielded():  # (one more Ctrl-C does not cut this short)
        try:
            summary.ledger = ledger_of_run(engine, summary.run_id)  # the ledger is the truth
            files = len({(e.source, e.file_name) for e in summary.ledger if e.status == "loaded"})
            committed = f"{files} files ({summary.rows[0]} rows)"
            recorded = runlog.finish(
                engine,
                summary.run_id,
                "interrupted",
                f"interrupted by {how}: {committed} committed before it stopped stay loaded",
                summary.ledger,
                summary.skipped_files,
                summary.dbt_counts,
                None,
                summary.seconds,
            )
        except Exception as exc:  # noqa: BLE001 - (the warehouse may be what is gone)
            logger.error(
                "could not record the interrupted run in ops.runs (%s): the next run marks it crashed",
                safe_error_text(exc),
            )
            detail = (
                f"run {summary.run_id} stopped by {how}; what it committed stays loaded, but the warehouse "
                "could not be told (the next run marks the run crashed and carries on)"
            )
        else:
            detail = (
                f"run {summary.run_id} stopped by {how}; {committed} it committed stay loaded{CARRIES_ON}"
                if recorded
                else f"run {summary.run_id} had finished (its ops.runs row stands) when {how} came"
            )
        engine.dispose()  # closed before the lock goes: the next run may open the file at once
    logger.warning("%s", detail)
    return interrupt.Interrupted(signum, detail)


def _report_refresh(summary: RunSummary) -> None:
    logger = get_run_logger()
    for line in summary.refresh_differences or []:
        logger.warning("full refresh differs from the incremental warehouse: %s", line)
    if summary.figure_changes:
        logger.warning(
            "full refresh changed %d figure values (ops.figure_changes)", len(summary.figure_changes)
        )
    if summary.refresh_equal:
        logger.info(
            "full refresh equals the incremental warehouse: raw tables, ledger, quarantine%s",
            " and figures" if summary.figure_changes is not None else "",
        )


def _publish(settings: Settings, summary: RunSummary, failure: str | None = None) -> None:
    """The run's artifacts in the Prefect UI: ``run-outputs`` (its files, ledger counts, status)
    and ``figure-changes`` (see flows/orchestration/artifacts.py). Could they not be written, that
    is logged, never the run's failure: its work is done and recorded in ops.runs."""
    try:
        markdown = ui_artifacts.run_outputs_markdown(
            summary.run_id,
            summary.status,
            settings.report_year,
            summary.run_dir,
            summary.report_files,
            summary.docs_dir if summary.run_dir is not None else None,
            summary.ledger,
            summary.skipped_files,
            summary.figure_changes,
            summary.errors,
            summary.seconds,
            failure,
        )
        ui_artifacts.publish(
            markdown,
            ui_artifacts.run_outputs_description(summary.run_id, summary.status),
            summary.run_id,
            summary.figure_changes,
        )
    except Exception as exc:  # noqa: BLE001 - a boundary: any error becomes a line, not a crash
        get_run_logger().warning("could not write the run's Prefect artifacts: %s", safe_error_text(exc))


def _notify(settings: Settings, summary: RunSummary, errors: list[str]) -> None:
    title, body = notify.message(summary.run_id, summary.status, errors, settings.safe_warehouse())
    if notify.send(settings.notify_url, title, body):
        get_run_logger().info("failure notification sent")


def _load(
    settings: Settings,
    summary: RunSummary,
    engine: Engine,
    key: bytes,
    members_full: bool,
    window: tuple[date | None, date | None],
) -> None:
    """Extract, validate and load every source (the lock is held)."""
    logger = get_run_logger()
    pii.check_fingerprint(engine, key)
    filled = pii.backfill(engine, key)
    if filled:
        logger.info("pseudonyms filled in for %d rows loaded before pseudonymisation", filled)
    docs_dir = summary.docs_dir
    max_rows = settings.stream_rows
    _load_file_sources(settings, summary, engine, window)
    if settings.members_database_url is None:
        logger.warning("members: no database configured and no <landing>/members.sqlite; skipped")
    previous = previous_rows(engine, "members")
    for t in schema.tables_of("members") if settings.members_database_url is not None else ():
        cursor: tuple[Any, Any] | None = None
        while True:
            t0 = time.perf_counter()
            batches, cursor = extract_members(
                settings, engine, summary.run_id, t.name, full=members_full, after=cursor, max_rows=max_rows
            )
            summary.timed("extract", t0)
            _validate_and_load(settings, summary, engine, "members", batches, previous)
            if cursor is None:
                break
    summary.ledger = ledger_of_run(engine, summary.run_id)  # what was written, retries included
    summary.report_files.append(write_index(docs_dir, summary.run_id, summary.doc_pages))
    check_conservation(engine)
    summary.errors = [
        f"{e.file_name}: [{e.error_rule}] {e.error_message}" for e in summary.ledger if e.status == "rejected"
    ]


def task_runner(settings: Settings) -> TaskRunner[Any]:
    """Where the file sources' extract and validation run: threads of this process (default),
    or a Dask cluster through prefect-dask (``task_runner: dask``; ``dask_address`` names a
    running scheduler, else a temporary local cluster of ``parallel_slices`` worker processes)."""
    if settings.task_runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigError("task_runner dask needs prefect-dask: pip install 'unionwh[dask]'") from None
        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.parallel_slices,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=settings.parallel_slices)


class _Flag:
    """A flag threads read without a lock (a bool's assignment is atomic). Not a
    ``threading.Event``: the tasks that read it are pickled for a Dask cluster, and a lock
    cannot be (there, in other processes, the flag is simply never set)."""

    def __init__(self) -> None:
        self._value = False

    def set(self) -> None:
        self._value = True

    def clear(self) -> None:
        self._value = False

    def is_set(self) -> bool:
        return self._value

    def __reduce__(self) -> tuple[type[_Flag], tuple[()]]:
        return (_Flag, ())


_abandoned = _Flag()
"""Set when the run's file-source phase ends in an exception (Ctrl-C, SIGTERM, a failed load):
the slices being read in threads stop at their next file or table, so the task runner, which
waits for them, lets the run stop in seconds. Cleared as each run's file-source phase begins."""


@contextlib.contextmanager
def _abandon_slices_on_exit() -> Iterator[None]:
    _abandoned.clear()
    try:
        yield
    except BaseException:
        _abandoned.set()
        raise


@dataclass
class _SourceWork:
    deliveries: list[common.Delivery]
    seen: set[tuple[str, str, str]]
    previous: dict[tuple[str, str], int]
    this_run: set[str] = field(default_factory=set)
    in_flight: bool = False


def _load_file_sources(
    settings: Settings, summary: RunSummary, engine: Engine, window: tuple[date | None, date | None]
) -> None:
    """Every file source, slice by slice: up to ``parallel_slices`` slices are extracted and
    validated on the task runner at once; on a Dask cluster also while this process loads the
    one before them. Slices load in the order they were submitted, which depends only on the
    data, never on timing; a source's next slice starts where the one before stopped."""
    work = {}
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    for source in (*schema.FILE_SOURCES, common.LANDING):
        found = (
            common.hold_future(common.discover(settings.landing_dir, source), today)
            if source != common.LANDING
            else common.discover_unknown(settings.landing_dir)
        )
        deliveries = [d for d in found if in_window(d.delivery_date, window)]
        for d in found:
            if d.unread:  # said every run (the ledger has it once): a stray folder is easy to miss
                get_run_logger().warning("landing zone: %s: [%s] %s", d.rel_name, d.rule, d.problem)
        if deliveries:
            work[source] = _SourceWork(
                deliveries, already_seen(engine, source), previous_rows(engine, source)
            )
    in_flight: deque[tuple[str, PrefectFuture[Any]]] = deque()
    # In threads of this process, reading the next slice while loading this one makes both
    # slower: the readers' per-cell Python holds the GIL and every DuckDB call of the load waits
    # for it (at 100x the demo the welfare load ran at ~10,000 rows/s and the load phase took
    # 550 s, against 184 s with the phases one after the other).
    overlap = settings.task_runner != "threads"
    with task_runner(settings) as runner, _abandon_slices_on_exit():  # (this one exits first)

        def submit() -> None:
            for source, w in work.items():
                if len(in_flight) >= settings.parallel_slices:
                    return
                if w.deliveries and not w.in_flight:
                    w.in_flight = True
                    in_flight.append(
                        (
                            source,
                            runner.submit(
                                prepare_slice,
                                parameters={
                                    "settings": settings,
                                    "source": source,
                                    "seen": w.seen,
                                    "deliveries": w.deliveries,
                                    "this_run": w.this_run,
                                    "previous": w.previous,
                                    "docs_dir": summary.docs_dir,
                                },
                            ),
                        )
                    )

        submit()
        while in_flight:
            source, future = in_flight.popleft()
            validated, skipped, done, this_run, seconds, worker = future.result(raise_on_failure=True)
            summary.workers.add(worker)
            w = work[source]
            w.deliveries, w.this_run, w.in_flight = w.deliveries[done:], this_run, False
            summary.skipped_files += skipped
            for phase, took in seconds.items():
                summary.add_time(phase, took)
            if overlap:
                submit()  # the next slices are read in other processes while this one loads
            _write(settings, summary, engine, source, validated)
            submit()


def _validate_and_load(
    settings: Settings,
    summary: RunSummary,
    engine: Engine,
    source: str,
    batches: list[Batch],
    previous: dict[tuple[str, str], int],
) -> None:
    t0 = time.perf_counter()
    validated = validate_batches(source, batches, settings.quality, previous, summary.docs_dir)
    summary.timed("validate", t0)
    _write(settings, summary, engine, source, validated)


def _write(
    settings: Settings, summary: RunSummary, engine: Engine, source: str, validated: list[Batch]
) -> None:
    t0 = time.perf_counter()
    load_batches(engine, summary.run_id, source, validated, settings)
    faults.checkpoint("load.source_done")
    summary.timed("load", t0)
    for b in validated:
        summary.doc_pages += b.doc_pages
        b.frame = b.passed = b.quarantined = None  # written: the rows need not stay in memory


def _build(
    settings: Settings,
    summary: RunSummary,
    engine: Engine,
    key: bytes,
    full_refresh: bool = False,
    parsing: subprocess.Popen[bytes] | None = None,
) -> None:
    """dbt build and docs, grants, figures (the lock is held)."""
    assert summary.run_dir is not None
    project = builds.project_hash(dbt.DBT_PROJECT_DIR, settings.dbt_target()[0], pii.fingerprint(key))
    chosen = builds.plan(engine, project, everything=full_refresh or settings.dbt_build == "all")
    engine.dispose()  # dbt opens the warehouse itself
    logger = get_run_logger()
    if chosen.everything:
        logger.info("dbt build: every model (%s)", chosen.reason)
    else:
        logger.info("dbt build: the models downstream of %s (%s)", " ".join(chosen.selectors), chosen.reason)
    dbt.finish_parse(parsing)
    t0 = time.perf_counter()
    artifacts = summary.run_dir / "dbt"
    try:
        summary.dbt_counts = build_marts(settings, artifacts, full_refresh, chosen.selectors)
    except Exception:
        with contextlib.suppress(Exception):  # (the warehouse itself may be what failed)
            builds.record(engine, summary.run_id, project, chosen, succeeded=False)
            builds.record_results(engine, summary.run_id, project, artifacts)
        raise
    builds.record(engine, summary.run_id, project, chosen, succeeded=True)
    # every node's result, so the summary states each test's latest result, whichever build ran it
    builds.record_results(engine, summary.run_id, project, artifacts)
    faults.checkpoint("dbt.done")
    summary.timed("dbt", t0)
    summary.report_files.append(dbt.docs_page(summary.run_dir / "dbt"))
    logger.info("dbt docs: %s", summary.report_files[-1])
    roles.apply_grants(engine)  # PostgreSQL: each role's lane on what the build made
    summary.figures, report_files = compute_figures(engine, settings.report_year, summary.run_dir)
    summary.report_files += report_files
    if summary.figures:
        summary.report_files += write_summary(settings, engine, summary.run_id, summary.run_dir)
    else:  # e.g. early in January, before any delivery of the new report year: the load itself is fine
        logger.warning(
            "no figures for %d in the warehouse yet (no delivered row falls in that year): "
            "the annual summary is not written",
            settings.report_year,
        )
    faults.checkpoint("figures.computed")
    summary.figure_changes = runlog.record_figures(engine, summary.run_id)
    for line in runlog.summarise_changes(summary.figure_changes):
        logger.info(line)


@flow(name="nightly-load", log_prints=True)
def nightly_load(
    landing: str | None = None,
    year: int | None = None,
    members_full: bool = False,
    build: bool = True,
    deliveries_from: date | None = None,
    deliveries_to: date | None = None,
    full_refresh: bool = False,
) -> RunSummary:
    """Load every new delivery, validate, build the marts and compute the figures.

    landing: landing-zone folder (default from settings); year: report year;
    members_full: re-pull every member row, not only those after the watermark (rows
    the warehouse already holds are still not loaded twice); build: False loads only
    (no dbt build, docs, grants or figures); deliveries_from / deliveries_to: only
    delivery folders dated within these days (a backfill's step); full_refresh: clear the
    file sources' raw rows, ledger and quarantine, reload them from the landing zone,
    rebuild every dbt model, and compare the result with what was there before.
    """
    interrupt.reset()
    warm_up()  # (cheap when the CLI did it already)
    settings = load_settings(landing=landing, report_year=year)
    logger = get_run_logger()
    summary = RunSummary(run_id=new_run_id())
    summary.run_dir = settings.output_dir / summary.run_id
    summary.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # its reports name members: private
    started = datetime.now()
    logger.info(
        "run %s: landing %s, warehouse %s", summary.run_id, settings.landing_dir, settings.safe_warehouse()
    )
    key, notice = pii.resolve_key(settings, create=True)
    if notice:
        logger.warning(notice)
    engine = warehouse_engine(settings)
    duckdb_file = settings.duckdb_path if settings.is_duckdb else None
    parsing = dbt.start_parse(settings, summary.run_dir / "dbt") if build else None
    try:
        with (
            interrupt.watch(),
            warehouse_lock(engine, duckdb_file, summary.run_id, settings.lock_wait_seconds, logger.warning),
        ):
            for m in init_warehouse(engine):
                logger.info("warehouse schema upgraded to version %d: %s", m.version, m.description)
            for crashed in runlog.start(engine, summary.run_id, started):
                logger.warning("run %s never finished (killed?): marked crashed in ops.runs", crashed)
            try:
                before = None
                if full_refresh:
                    before = refresh.fingerprints(engine)
                    cleared = refresh.clear_file_sources(engine)
                    logger.info(
                        "full refresh: %d raw rows of the file sources cleared; reloading the landing zone",
                        cleared,
                    )
                _load(settings, summary, engine, key, members_full, (deliveries_from, deliveries_to))
                if before is not None:
                    summary.refresh_differences = refresh.differences(before, refresh.fingerprints(engine))
                if build:
                    _build(settings, summary, engine, key, full_refresh, parsing)
                if before is not None:
                    _report_refresh(summary)
                summary.status = "failed" if summary.errors else "succeeded"
                _finish(engine, summary, "; ".join(summary.errors[:10]) or None)
            except (KeyboardInterrupt, TerminationSignal) as exc:
                # Ctrl-C, SIGTERM: recorded under the lock, then the run ends in one line (the CLI)
                stopped = _record_interruption(engine, summary, stop_signal(exc) or signal.SIGINT)
                if runner_cancels(exc):
                    raise  # (Prefect's runner cancels the flow run: its engine reports that)
                raise stopped from None
            except Exception as exc:
                signum = stop_signal(exc)
                if signum is not None:  # an error the stop caused (DuckDB: "Query interrupted")
                    raise _record_interruption(engine, summary, signum) from None
                summary.status = "failed"
                # ops.runs and the notification get the error without values: a database's or a
                # library's text can quote the row it choked on (errors.safe_error_text)
                failure = safe_error_text(exc)
                try:
                    summary.ledger = ledger_of_run(engine, summary.run_id)  # what it committed before failing
                    _finish(engine, summary, failure[:2000])
                except Exception as record_exc:  # noqa: BLE001 - the warehouse itself may be what failed
                    logger.error("could not record the failed run in ops.runs: %s", type(record_exc).__name__)
                _notify(settings, summary, [failure, *summary.errors])
                _publish(settings, summary, failure)
                raise
            if summary.status != "succeeded":
                _notify(settings, summary, summary.errors)
            else:  # old run folders go (settings.keep_runs), under the lock: no run of ours is running
                retention.apply(settings, engine, summary.run_id, logger.info)
            engine.dispose()  # closed before the lock goes: the next run may open the file at once
    except WarehouseBusy as exc:
        summary.status = "refused"
        _notify(settings, summary, [str(exc)])
        raise
    except (KeyboardInterrupt, TerminationSignal) as exc:  # stopped before or after its work
        if summary.status == "interrupted" or runner_cancels(exc):
            raise
        how = interrupt.signal_name(stop_signal(exc) or signal.SIGINT)
        if summary.status == "running":
            detail = f"run {summary.run_id} stopped by {how} before it loaded anything"
        else:  # (recorded already: only what follows the record, a notification, was cut short)
            detail = f"run {summary.run_id} had ended ({summary.status}, in ops.runs) when {how} came"
        summary.status = "interrupted"
        raise interrupt.Interrupted(stop_signal(exc) or signal.SIGINT, detail) from None
    finally:
        dbt.finish_parse(parsing, wait=False)  # (done already when the run built)
        engine.dispose()
    read, loaded, quarantined = summary.rows
    logger.info(
        "run %s %s: %d rows read, %d loaded, %d quarantined, %d files unchanged, %d rejected",
        summary.run_id,
        summary.status,
        read,
        loaded,
        quarantined,
        summary.skipped_files,
        len(summary.errors),
    )
    _publish(settings, summary)
    return summary


logging.getLogger("great_expectations").setLevel(logging.WARNING)
