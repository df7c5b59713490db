"""A whole run, without Prefect: the lock, ``ops.runs``, every source sliced through extract ->
validate -> load, conservation, the dbt build and the figures, and a stop or a failure recorded.

:class:`Steps` names the steps a run calls: :func:`plain_steps` gives the plain functions of this
package, flows/nightly.py the same functions as Prefect tasks (with retries, named task runs and
a task runner). :func:`execute` is the run itself; the flow calls it with its steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from flows import faults, schema
from flows.errors import safe_error_text
from flows.orchestration import interrupt, notify, retention
from flows.pipeline.extract import Window, extract_files, extract_members_page, plan_file_sources
from flows.pipeline.load import check_conservation, load_slice
from flows.pipeline.state import LOG, Batch, Log, RunSummary, abandoned, new_run_id
from flows.pipeline.validate import validate_slice
from flows.quality.docs import write_index
from flows.quality.runner import warm_up
from flows.report.format import figures_markdown
from flows.settings import Settings
from flows.warehouse import builds, dbt, pii, refresh, roles, runlog, snapshot
from flows.warehouse.engine import init_warehouse, warehouse_engine
from flows.warehouse.figures import Figure, fetch_figures
from flows.warehouse.loader import ledger_of_run, previous_rows
from flows.warehouse.lock import WarehouseBusy, warehouse_lock

CARRIES_ON = "; the next run carries on"
"""How a stopped run's line ends (a backfill says its own)."""


class Result(Protocol):
    def result(self) -> Any: ...


Submit = Callable[[dict[str, Any]], Result]
"""Submits one slice's :func:`prepare_slice` (its keyword arguments) to where slices run."""


@dataclass
class Options:
    """What a run is asked to do (the flow's parameters besides landing and year)."""

    members_full: bool = False
    build: bool = True
    window: Window = (None, None)
    full_refresh: bool = False


@dataclass
class Steps:
    """The steps a run calls, and how it learns of a stop. Each step is a function of this
    package (:func:`plain_steps`) or the same function as a Prefect task (flows/nightly.py)."""

    log: Log
    slices: Callable[[Settings], contextlib.AbstractContextManager[Submit]]
    extract_members: Callable[..., tuple[list[Batch], tuple[Any, Any] | None]]
    validate: Callable[..., list[Batch]]
    load: Callable[..., Any]
    build_marts: Callable[..., dict[str, int]]
    figures: Callable[..., tuple[list[Figure], list[Path]]]
    summary: Callable[..., list[Path]]
    publish: Callable[[Settings, RunSummary, str | None], None] = lambda settings, summary, failure: None
    """The run's outputs where its users look (Prefect: the run's artifacts)."""
    stops: tuple[type[BaseException], ...] = (KeyboardInterrupt,)
    """Exceptions that mean "told to stop" (Prefect adds its TerminationSignal)."""
    signal_of: Callable[[BaseException], int | None] = lambda exc: None
    """The signal an exception of ``stops`` stands for, beyond Ctrl-C's."""
    passes_through: Callable[[BaseException], bool] = lambda exc: False
    """A stop the orchestrator must see as it came (Prefect's runner cancelling the flow run)."""


# ------------------------------------------------------------------ the steps, plain
def prepare_slice(
    settings: Settings,
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[Any],
    this_run: set[str],
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
    extract: Callable[..., tuple[list[Batch], int, int, set[str]]] = extract_files,
    validate: Callable[..., list[Batch]] = validate_slice,
) -> tuple[list[Batch], int, int, set[str], dict[str, float], str]:
    """Extract and validate one slice of a file source (see :func:`.extract.extract_files`),
    wherever it runs (a thread, or a Dask worker): returns the validated batches, what extract
    returns besides, the seconds each step took and the process that did it (host:pid)."""
    t0 = time.perf_counter()
    batches, skipped, done, this_run = extract(source, seen, deliveries, this_run, settings.stream_rows)
    t1 = time.perf_counter()
    validated = validate(source, batches, settings.quality, previous, docs_dir)
    took = {"extract": t1 - t0, "validate": time.perf_counter() - t1}
    return validated, skipped, done, this_run, took, f"{socket.gethostname()}:{os.getpid()}"


def build_marts(
    settings: Settings,
    artifacts: Path,
    full_refresh: bool = False,
    select: tuple[str, ...] = (),
    log: Log = LOG,
) -> dict[str, int]:
    """dbt build (models, seeds and their tests) on the run's target: everything, or the
    ``select`` selectors; then, in the same dbt process, the docs site. manifest.json,
    run_results.json and dbt's whole output (dbt-output.log) stay in ``artifacts``; the log gets
    its digest (start, failures and warnings, progress every ~10 s, summary)."""
    result = dbt.build(
        settings,
        artifacts,
        on_line=dbt.Digest(lambda text: log.info("dbt: %s", text)),  # not every line: an API call each
        full_refresh=full_refresh,
        select=select,
        with_docs=True,
    )
    log.info("dbt build: %s", ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    return result.counts


def compute_figures(
    engine: Engine, year: int, run_dir: Path, log: Log = LOG
) -> tuple[list[Figure], list[Path]]:
    """Read the year's figures from the mart and write their table (``figures-<year>.json``, the
    figures with their trace, is the annual summary's: written once, by :func:`write_summary`)."""
    figures = fetch_figures(engine, year)
    md_path = run_dir / f"report-{year}.md"
    md_path.write_text(
        figures_markdown(year, figures, f"{year}年工作总结数据 / annual summary figures"), encoding="utf-8"
    )
    log.info("figures %d: %d computed", year, len(figures))
    return figures, [md_path]


def write_summary(
    settings: Settings, engine: Engine, run_id: str, run_dir: Path, log: Log = LOG
) -> list[Path]:
    """The year's summary in Chinese (Markdown, HTML, Word) with this run's dbt results."""
    # deferred: the report's Word and HTML writers load only for a run that builds
    from flows.report.summary import write_report
    from flows.report.trace import collect

    data = collect(engine, settings.report_year, settings.output_dir, (run_id, run_dir / "dbt"))
    files = write_report(data, settings.template_path.read_text(encoding="utf-8"), run_dir)
    log.info("annual summary %d written: %s", settings.report_year, ", ".join(p.name for p in files))
    return files


@contextlib.contextmanager
def _thread_slices(settings: Settings, log: Log) -> Iterator[Submit]:
    with ThreadPoolExecutor(max_workers=settings.parallel_slices) as pool:

        def submit(params: dict[str, Any]) -> Future[Any]:
            return pool.submit(
                prepare_slice,
                **params,
                extract=partial(extract_files, log=log),
                validate=partial(validate_slice, log=log),
            )

        yield submit


def plain_steps(log: Log = LOG) -> Steps:
    """The steps as the plain functions of this package: slices in threads, no retries."""
    return Steps(
        log=log,
        slices=partial(_thread_slices, log=log),
        extract_members=partial(extract_members_page, log=log),
        validate=partial(validate_slice, log=log),
        load=lambda engine, run_id, source, batches, settings: load_slice(
            engine, run_id, source, batches, pii.resolve_key(settings)[0], log
        ),
        build_marts=partial(build_marts, log=log),
        figures=partial(compute_figures, log=log),
        summary=partial(write_summary, log=log),
    )


# ------------------------------------------------------------------ the run
def load_all(
    settings: Settings, summary: RunSummary, engine: Engine, key: bytes, steps: Steps, opts: Options
) -> None:
    """Extract, validate and load every source (the lock is held)."""
    pii.check_fingerprint(engine, key)
    filled = pii.backfill(engine, key)
    if filled:
        steps.log.info("pseudonyms filled in for %d rows loaded before pseudonymisation", filled)
    load_file_sources(settings, summary, engine, steps, opts.window)
    if settings.members_database_url is None:
        steps.log.warning("members: no database configured and no <landing>/members.sqlite; skipped")
    previous = previous_rows(engine, "members")
    for t in schema.tables_of("members") if settings.members_database_url is not None else ():
        cursor: tuple[Any, Any] | None = None
        while True:
            t0 = time.perf_counter()
            batches, cursor = steps.extract_members(
                settings, engine, summary.run_id, t.name, opts.members_full, cursor, settings.stream_rows
            )
            summary.timed("extract", t0)
            t0 = time.perf_counter()
            validated = steps.validate("members", batches, settings.quality, previous, summary.docs_dir)
            summary.timed("validate", t0)
            _write(settings, summary, engine, steps, "members", validated)
            if cursor is None:
                break
    summary.ledger = ledger_of_run(engine, summary.run_id)  # what was written, retries included
    summary.report_files.append(write_index(summary.docs_dir, summary.run_id, summary.doc_pages))
    check_conservation(engine)
    summary.errors = [
        f"{e.file_name}: [{e.error_rule}] {e.error_message}" for e in summary.ledger if e.status == "rejected"
    ]


@contextlib.contextmanager
def _abandon_slices_on_exit() -> Iterator[None]:
    abandoned.clear()
    try:
        yield
    except BaseException:
        abandoned.set()
        raise


def load_file_sources(
    settings: Settings, summary: RunSummary, engine: Engine, steps: Steps, window: Window
) -> None:
    """Every file source, slice by slice: up to ``parallel_slices`` slices are extracted and
    validated at once (``steps.slices``); on a Dask cluster also while this process loads the
    one before them. Slices load in the order they were submitted, which depends only on the
    data, never on timing; a source's next slice starts where the one before stopped."""
    work = plan_file_sources(settings, engine, window, steps.log)
    in_flight: deque[tuple[str, Result]] = deque()
    # In threads of this process, reading the next slice while loading this one makes both
    # slower: the readers' per-cell Python holds the GIL and every DuckDB call of the load waits
    # for it (at 100x the demo the welfare load ran at ~10,000 rows/s and the load phase took
    # 550 s, against 184 s with the phases one after the other).
    overlap = settings.task_runner != "threads"
    with steps.slices(settings) as submit, _abandon_slices_on_exit():  # (this one exits first)

        def fill() -> None:
            for source, w in work.items():
                if len(in_flight) >= settings.parallel_slices:
                    return
                if w.deliveries and not w.in_flight:
                    w.in_flight = True
                    params = {
                        "settings": settings,
                        "source": source,
                        "seen": w.seen,
                        "deliveries": w.deliveries,
                        "this_run": w.this_run,
                        "previous": w.previous,
                        "docs_dir": summary.docs_dir,
                    }
                    in_flight.append((source, submit(params)))

        fill()
        while in_flight:
            source, future = in_flight.popleft()
            validated, skipped, done, this_run, seconds, worker = future.result()
            summary.workers.add(worker)
            w = work[source]
            w.deliveries, w.this_run, w.in_flight = w.deliveries[done:], this_run, False
            summary.skipped_files += skipped
            for phase, took in seconds.items():
                summary.add_time(phase, took)
            if overlap:
                fill()  # the next slices are read in other processes while this one loads
            _write(settings, summary, engine, steps, source, validated)
            fill()


def _write(
    settings: Settings, summary: RunSummary, engine: Engine, steps: Steps, source: str, validated: list[Batch]
) -> None:
    t0 = time.perf_counter()
    steps.load(engine, summary.run_id, source, validated, settings)
    faults.checkpoint("load.source_done")
    summary.timed("load", t0)
    for b in validated:
        summary.doc_pages += b.doc_pages
        b.frame = b.passed = b.quarantined = None  # written: the rows need not stay in memory


def build_all(
    settings: Settings,
    summary: RunSummary,
    engine: Engine,
    key: bytes,
    steps: Steps,
    full_refresh: bool = False,
) -> None:
    """dbt build and docs, grants, figures (the lock is held)."""
    assert summary.run_dir is not None
    log = steps.log
    project = builds.project_hash(dbt.DBT_PROJECT_DIR, settings.dbt_target()[0], pii.fingerprint(key))
    chosen = builds.plan(engine, project, everything=full_refresh or settings.dbt_build == "all")
    roles.create_roles(
        engine
    )  # PostgreSQL: the build grants each new mart to them (macros/grant_readers.sql)
    engine.dispose()  # dbt opens the warehouse itself
    if chosen.everything:
        log.info("dbt build: every model (%s)", chosen.reason)
    else:
        log.info("dbt build: the models downstream of %s (%s)", " ".join(chosen.selectors), chosen.reason)
    t0 = time.perf_counter()  # (dbt may still be parsing: dbt.start_parse)
    artifacts = summary.run_dir / "dbt"
    try:
        summary.dbt_counts = steps.build_marts(settings, artifacts, full_refresh, chosen.selectors)
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
    log.info("dbt docs: %s", summary.report_files[-1])
    roles.apply_grants(engine)  # PostgreSQL: each role's lane on what the build made
    summary.figures, report_files = steps.figures(engine, settings.report_year, summary.run_dir)
    summary.report_files += report_files
    if summary.figures:
        summary.report_files += steps.summary(settings, engine, summary.run_id, summary.run_dir)
    else:  # e.g. early in January, before any delivery of the new report year: the load itself is fine
        log.warning(
            "no figures for %d in the warehouse yet (no delivered row falls in that year): "
            "the annual summary is not written",
            settings.report_year,
        )
    faults.checkpoint("figures.computed")
    summary.figure_changes = runlog.record_figures(engine, summary.run_id)
    for line in runlog.summarise_changes(summary.figure_changes):
        log.info(line)


def finish(engine: Engine, summary: RunSummary, message: str | None) -> None:
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


def stop_signal(
    exc: BaseException, signal_of: Callable[[BaseException], int | None] = lambda e: None
) -> int | None:
    """The signal that stopped the run, when ``exc`` is (or stands for) a stop: Ctrl-C's
    KeyboardInterrupt, an orchestrator's own stop exception (``signal_of``: Prefect's
    TerminationSignal for SIGTERM), or any error raised after a stop signal came
    (:func:`interrupt.requested`) — DuckDB turns one it takes in into an error of its own, which,
    should the signal have gone unseen, names it. None: a failure of its own."""
    if isinstance(exc, interrupt.Interrupted):
        return exc.signum
    named = signal_of(exc)
    if named is not None:
        return named
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


def record_interruption(engine: Engine, summary: RunSummary, signum: int, log: Log) -> interrupt.Interrupted:
    """Finish the run's ops.runs row as ``interrupted`` with what it committed: its completed
    ledger entries (each written in one transaction with its rows; the batch being written
    when the signal came was rolled back). The lock is still held. Returns the exception the
    run ends with, whose text the CLI prints."""
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
            log.error(
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
    log.warning("%s", detail)
    return interrupt.Interrupted(signum, detail)


def report_refresh(summary: RunSummary, log: Log) -> None:
    for line in summary.refresh_differences or []:
        log.warning("full refresh differs from the incremental warehouse: %s", line)
    if summary.figure_changes:
        log.warning("full refresh changed %d figure values (ops.figure_changes)", len(summary.figure_changes))
    if summary.refresh_equal:
        log.info(
            "full refresh equals the incremental warehouse: raw tables, ledger, quarantine%s",
            " and figures" if summary.figure_changes is not None else "",
        )


def _notify(settings: Settings, summary: RunSummary, errors: list[str], log: Log) -> None:
    title, body = notify.message(summary.run_id, summary.status, errors, settings.safe_warehouse())
    if notify.send(settings.notify_url, title, body):
        log.info("failure notification sent")


def _work(
    settings: Settings,
    summary: RunSummary,
    engine: Engine,
    key: bytes,
    steps: Steps,
    opts: Options,
) -> None:
    """The run's work, under the lock: (a full refresh's clearing), load, build, the record."""
    before = None
    if opts.full_refresh:
        before = refresh.fingerprints(engine)
        cleared = refresh.clear_file_sources(engine)
        steps.log.info(
            "full refresh: %d raw rows of the file sources cleared; reloading the landing zone", cleared
        )
    load_all(settings, summary, engine, key, steps, opts)
    if before is not None:
        summary.refresh_differences = refresh.differences(before, refresh.fingerprints(engine))
    if opts.build:
        build_all(settings, summary, engine, key, steps, opts.full_refresh)
    if before is not None:
        report_refresh(summary, steps.log)
    summary.status = "failed" if summary.errors else "succeeded"
    finish(engine, summary, "; ".join(summary.errors[:10]) or None)


def _remove_refused(folder: Path | None) -> None:
    """A run refused at the lock leaves no folder: it holds only what the background dbt parse
    wrote (stopped by now), never a report, so the run folders stay one per run that ran."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def execute(settings: Settings, steps: Steps, opts: Options | None = None) -> RunSummary:
    """Load every new delivery, validate, build the marts and compute the figures: one run,
    recorded in ``ops.runs`` whatever happens (succeeded, failed, interrupted, crashed)."""
    opts = opts or Options()
    log = steps.log
    interrupt.reset()
    warm_up()  # (cheap when the CLI did it already)
    summary = RunSummary(run_id=new_run_id())
    summary.run_dir = settings.output_dir / summary.run_id
    summary.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # its reports name members: private
    started = datetime.now()
    log.info(
        "run %s: landing %s, warehouse %s", summary.run_id, settings.landing_dir, settings.safe_warehouse()
    )
    key, notice = pii.resolve_key(settings, create=True)
    if notice:
        log.warning(notice)
    engine = warehouse_engine(settings)
    duckdb_file = settings.duckdb_path if settings.is_duckdb else None
    parsing = dbt.start_parse(settings, summary.run_dir / "dbt") if opts.build else None
    stops = (KeyboardInterrupt, *steps.stops)
    try:
        with (
            interrupt.watch(),
            warehouse_lock(engine, duckdb_file, summary.run_id, settings.lock_wait_seconds, log.warning),
        ):
            for m in init_warehouse(engine):
                log.info("warehouse schema upgraded to version %d: %s", m.version, m.description)
            for crashed in runlog.start(engine, summary.run_id, started):
                log.warning("run %s never finished (killed?): marked crashed in ops.runs", crashed)
            try:
                _work(settings, summary, engine, key, steps, opts)
            except stops as exc:
                # Ctrl-C, SIGTERM: recorded under the lock, then the run ends in one line (the CLI)
                stopped = record_interruption(
                    engine, summary, stop_signal(exc, steps.signal_of) or signal.SIGINT, log
                )
                if steps.passes_through(exc):
                    raise  # (Prefect's runner cancels the flow run: its engine reports that)
                raise stopped from None
            except Exception as exc:
                signum = stop_signal(exc, steps.signal_of)
                if signum is not None:  # an error the stop caused (DuckDB: "Query interrupted")
                    raise record_interruption(engine, summary, signum, log) from None
                summary.status = "failed"
                # ops.runs and the notification get the error without values: a database's or a
                # library's text can quote the row it choked on (errors.safe_error_text)
                failure = safe_error_text(exc)
                try:
                    summary.ledger = ledger_of_run(engine, summary.run_id)  # what it committed before failing
                    finish(engine, summary, failure[:2000])
                except Exception as record_exc:  # noqa: BLE001 - the warehouse itself may be what failed
                    log.error("could not record the failed run in ops.runs: %s", type(record_exc).__name__)
                _notify(settings, summary, [failure, *summary.errors], log)
                steps.publish(settings, summary, failure)
                raise
            if summary.status != "succeeded":
                _notify(settings, summary, summary.errors, log)
            else:  # old run folders go (settings.keep_runs), under the lock: no run of ours is running
                snapshot_path = settings.marts_snapshot_path
                if opts.build and snapshot_path is not None:  # the analysts' copy of the new marts
                    snapshot.publish_logged(engine, snapshot_path, summary.run_id, log.info)
                retention.apply(settings, engine, summary.run_id, log.info)
            engine.dispose()  # closed before the lock goes: the next run may open the file at once
    except WarehouseBusy as exc:
        summary.status = "refused"
        dbt.discard_parse(parsing)
        _remove_refused(summary.run_dir)
        _notify(settings, summary, [str(exc)], log)
        raise
    except stops as exc:  # stopped before or after its work
        if summary.status == "interrupted" or steps.passes_through(exc):
            raise
        signum = stop_signal(exc, steps.signal_of) or signal.SIGINT
        how = interrupt.signal_name(signum)
        if summary.status == "running":
            detail = f"run {summary.run_id} stopped by {how} before it loaded anything"
        else:  # (recorded already: only what follows the record, a notification, was cut short)
            detail = f"run {summary.run_id} had ended ({summary.status}, in ops.runs) when {how} came"
        summary.status = "interrupted"
        raise interrupt.Interrupted(signum, detail) from None
    finally:
        dbt.discard_parse(parsing)  # (done already when the run built)
        engine.dispose()
    read, loaded, quarantined = summary.rows
    log.info(
        "run %s %s: %d rows read, %d loaded, %d quarantined, %d files unchanged, %d rejected",
        summary.run_id,
        summary.status,
        read,
        loaded,
        quarantined,
        summary.skipped_files,
        len(summary.errors),
    )
    steps.publish(settings, summary, None)
    return summary


def run(settings: Settings, opts: Options | None = None, log: Log = LOG) -> RunSummary:
    """A whole run with the plain steps: no Prefect, no retries."""
    return execute(settings, plain_steps(log), opts)
