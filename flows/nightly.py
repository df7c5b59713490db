"""The ``nightly-load`` Prefect flow: the pipeline core (flows/pipeline/) as Prefect tasks.

Each step of a run is a plain function of flows/pipeline/; here it becomes a task (a named task
run in the UI; retries for the steps that touch files and databases), the slices run on
Prefect's task runner (threads, or a Dask cluster), and the run's outputs become artifacts.
Secrets never travel as flow parameters: settings come resolved from the CLI
(:func:`flows.settings.bound`) or, for a deployment's run, from environment and config file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from sqlalchemy.engine import Engine

from flows.dbcheck import is_transient
from flows.errors import ConfigError, safe_error_text
from flows.orchestration import artifacts as ui_artifacts
from flows.orchestration import interrupt
from flows.pipeline import extract, load, run, validate
from flows.pipeline.extract import delivery_dates, in_window
from flows.pipeline.run import CARRIES_ON, Options, Steps, Submit
from flows.pipeline.state import Batch, RunSummary
from flows.settings import QualitySettings, Settings, settings_for_run
from flows.sources.common import Delivery
from flows.warehouse import dbt, pii
from flows.warehouse.figures import Figure
from flows.warehouse.loader import LedgerEntry

__all__ = ["CARRIES_ON", "RunSummary", "delivery_dates", "in_window", "is_transient", "nightly_load"]


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
TASK = {"cache_policy": NO_CACHE}


# ------------------------------------------------------------------ the core's steps as tasks
@task(name="extract", task_run_name="extract-{source}", **TASK, **RETRY)
def extract_source(
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[Delivery],
    this_run: set[str],
    max_rows: int | None,
) -> tuple[list[Batch], int, int, set[str]]:
    return extract.extract_files(source, seen, deliveries, this_run, max_rows, get_run_logger())


@task(name="validate", task_run_name="validate-{source}", **TASK)
def validate_batches(
    source: str,
    batches: list[Batch],
    gates: QualitySettings,
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
) -> list[Batch]:
    return validate.validate_slice(source, batches, gates, previous, docs_dir, get_run_logger())


@task(name="prepare", task_run_name="prepare-{source}", **TASK)
def prepare_slice(
    settings: Settings,
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[Delivery],
    this_run: set[str],
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
) -> tuple[list[Batch], int, int, set[str], dict[str, float], str]:
    """The unit the task runner schedules (a thread, or a Dask worker): extract and validate of
    one slice, each its own task run (extract is retried on its own)."""
    work = (settings, source, seen, deliveries, this_run, previous, docs_dir)
    return run.prepare_slice(*work, extract=extract_source, validate=validate_batches)


@task(name="extract-members", task_run_name="extract-members-{table}", **TASK, **RETRY)
def extract_members(
    settings: Settings,
    engine: Engine,
    run_id: str,
    table: str,
    full: bool = False,
    after: tuple[Any, Any] | None = None,
    max_rows: int | None = None,
) -> tuple[list[Batch], tuple[Any, Any] | None]:
    page = (settings, engine, run_id, table, full, after, max_rows)
    return extract.extract_members_page(*page, log=get_run_logger())


@task(name="load", task_run_name="load-{source}", **TASK, **RETRY)
def load_batches(
    engine: Engine, run_id: str, source: str, batches: list[Batch], settings: Settings
) -> list[LedgerEntry]:
    key, _ = pii.resolve_key(settings)  # read here: the key is never a task parameter
    return load.load_slice(engine, run_id, source, batches, key, get_run_logger())


@task(name="dbt-build", task_run_name="dbt-build", **TASK)
def build_marts(
    settings: Settings, artifacts: Path, full_refresh: bool = False, select: tuple[str, ...] = ()
) -> dict[str, int]:
    """dbt build and docs; the node results become the run's ``dbt-results`` artifact."""
    try:
        return run.build_marts(settings, artifacts, full_refresh, select, get_run_logger())
    finally:  # (a failed build's results too: the failures are what to look at)
        ui_artifacts.publish_dbt_results(dbt.node_results(artifacts), artifacts)


@task(name="figures", task_run_name="figures", **TASK)
def compute_figures(engine: Engine, year: int, run_dir: Path) -> tuple[list[Figure], list[Path]]:
    return run.compute_figures(engine, year, run_dir, get_run_logger())


@task(name="annual-summary", task_run_name="annual-summary", **TASK)
def write_summary(settings: Settings, engine: Engine, run_id: str, run_dir: Path) -> list[Path]:
    return run.write_summary(settings, engine, run_id, run_dir, get_run_logger())


# ------------------------------------------------------------------ Prefect's part of a run
def task_runner(settings: Settings) -> TaskRunner[Any]:
    """Where the file sources' slices run: threads of this process (default), or a Dask cluster
    through prefect-dask (``task_runner: dask``; ``dask_address`` names a running scheduler, else
    a temporary local cluster of ``parallel_slices`` worker processes)."""
    if settings.task_runner == "dask":
        try:  # deferred: prefect-dask is an optional extra
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigError("task_runner dask needs prefect-dask: pip install 'unionwh[dask]'") from None
        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        cluster = {"n_workers": settings.parallel_slices, "threads_per_worker": 1, "processes": True}
        return DaskTaskRunner(cluster_kwargs={**cluster, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=settings.parallel_slices)


@contextlib.contextmanager
def slices(settings: Settings) -> Iterator[Submit]:
    with task_runner(settings) as runner:
        yield lambda params: runner.submit(prepare_slice, parameters=params)


def runner_cancels(exc: BaseException) -> bool:
    """A SIGTERM that Prefect's runner sent to cancel (or reschedule) this flow run: Prefect's
    engine must see its own TerminationSignal to report that."""
    if not isinstance(exc, TerminationSignal):
        return False
    try:  # deferred: a private module of Prefect's
        from prefect._internal.control_listener import get_intent
    except ImportError:  # pragma: no cover (another Prefect)
        return False
    return get_intent() is not None


def stop_signal(exc: BaseException) -> int | None:
    """The signal that stopped the run (:func:`flows.pipeline.run.stop_signal`, Prefect's
    TerminationSignal included)."""
    return run.stop_signal(exc, _termination_signal)


def _termination_signal(exc: BaseException) -> int | None:
    return exc.signal if isinstance(exc, TerminationSignal) else None


def publish(settings: Settings, summary: RunSummary, failure: str | None = None) -> None:
    """The run's artifacts in the Prefect UI: ``run-outputs`` (its files, ledger counts, status)
    and ``figure-changes`` (flows/orchestration/artifacts.py). Could they not be written, that is
    logged, never the run's failure: its work is done and recorded in ops.runs."""
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
        description = ui_artifacts.run_outputs_description(summary.run_id, summary.status)
        ui_artifacts.publish(markdown, description, summary.run_id, summary.figure_changes)
    except Exception as exc:  # noqa: BLE001 - a boundary: any error becomes a line, not a crash
        get_run_logger().warning("could not write the run's Prefect artifacts: %s", safe_error_text(exc))


def prefect_steps() -> Steps:
    return Steps(
        log=get_run_logger(),
        slices=slices,
        extract_members=extract_members,
        validate=validate_batches,
        load=load_batches,
        build_marts=build_marts,
        figures=compute_figures,
        summary=write_summary,
        publish=publish,
        stops=(TerminationSignal,),
        signal_of=_termination_signal,
        passes_through=runner_cancels,
    )


# ------------------------------------------------------------------ the flow
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
    settings = settings_for_run(landing=landing, report_year=year)
    options = Options(members_full, build, (deliveries_from, deliveries_to), full_refresh)
    return run.execute(settings, prefect_steps(), options)


logging.getLogger("great_expectations").setLevel(logging.WARNING)
