"""Extract: read and normalise the new deliveries of a file source, a slice at a time, and pull
the member rows changed since the watermark, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy.engine import Engine

from flows import faults, schema
from flows.errors import BatchError, FileInFlux
from flows.orchestration.progress import Progress
from flows.pipeline.state import LOG, Batch, Log, abandoned
from flows.quality.screen import WHOLE_FILE, read_delivery_pending
from flows.settings import Settings
from flows.sources import common, members
from flows.warehouse.engine import members_engine
from flows.warehouse.loader import already_seen, drop_watermark, previous_rows, seen_versions, watermarks

Window = tuple[date | None, date | None]


def tables_of_file(source: str, delivery: common.Delivery) -> list[str]:
    """The tables a delivered file holds (an entry of no known source, ledger source ``landing``,
    holds the one its name says: it is rejected whole)."""
    src = schema.find_source(source)
    return [Path(delivery.rel_name).stem] if src is None else list(src.tables_of_file(delivery.rel_name))


def in_window(day: date | None, window: Window) -> bool:
    """A delivery folder's date within [from, to] (an open window takes every file, also
    the misplaced ones without a date, which are then rejected with their reason)."""
    lo, hi = window
    if lo is None and hi is None:
        return True
    return day is not None and (lo is None or day >= lo) and (hi is None or day <= hi)


def delivery_dates(landing: Path, window: Window) -> list[date]:
    """The distinct delivery-folder dates of every file source within ``window``, in order."""
    days = {
        d.delivery_date
        for s in schema.file_sources()
        for d in common.discover(landing, s)
        if d.delivery_date is not None and in_window(d.delivery_date, window)
    }
    return sorted(days)


@dataclass
class SourceWork:
    """A file source's deliveries still to read this run, and what the warehouse knows of it."""

    deliveries: list[common.Delivery]
    seen: set[tuple[str, str, str]]
    previous: dict[tuple[str, str], int]
    this_run: set[str] = field(default_factory=set)
    in_flight: bool = False


def plan_file_sources(
    settings: Settings, engine: Engine, window: Window, log: Log = LOG
) -> dict[str, SourceWork]:
    """Each file source's deliveries within ``window`` (unknown entries of the landing zone too,
    ledger source ``landing``: they are rejected with their reason), in order."""
    work = {}
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    for source in (*schema.file_sources(), common.LANDING):
        found = (
            common.hold_future(common.discover(settings.landing_dir, source), today)
            if source != common.LANDING
            else common.discover_unknown(settings.landing_dir)
        )
        deliveries = [d for d in found if in_window(d.delivery_date, window)]
        for d in found:
            if d.unread:  # said every run (the ledger has it once): a stray folder is easy to miss
                log.warning("landing zone: %s: [%s] %s", d.rel_name, d.rule, d.problem)
        if deliveries:
            work[source] = SourceWork(deliveries, already_seen(engine, source), previous_rows(engine, source))
    return work


def extract_files(
    source: str,
    seen: set[tuple[str, str, str]],
    deliveries: list[common.Delivery],
    this_run: set[str] | None = None,
    max_rows: int | None = None,
    log: Log = LOG,
) -> tuple[list[Batch], int, int, set[str]]:
    """Read and normalise the delivered files of ``source`` not loaded before, in order, until
    ``max_rows`` rows are read (None: all of them).

    Returns the batches, how many files were skipped as unchanged, how many of ``deliveries``
    were dealt with (read or skipped) and the hashes seen so far in this run (``this_run``
    plus those read here): a byte-identical file later in the same run changes nothing either.
    The files' rows are canonicalised together once they are all read (one Polars query per
    table and header form, not one per file or sheet: ``common.canonical_frames``).
    """
    batches: list[Batch] = []
    parts: list[common.PendingFrame | pl.DataFrame] = []  # of batches[i] with a frame, in order
    skipped = 0
    this_run = set(this_run or ())
    progress = Progress(f"extract {source}", len(deliveries), "files", log.info)
    done = 0
    src = schema.find_source(source)
    for delivery in progress.over(deliveries):  # a file counts (and its time) once it has been read
        if (max_rows is not None and progress.rows >= max_rows) or abandoned.is_set():
            break
        done += 1
        unread = delivery.unread  # a link out of the landing zone, a FIFO: never opened
        before = None if unread else common.file_state(delivery.path)
        sha = common.delivery_sha256(delivery)
        tables = tables_of_file(source, delivery)
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
            frames = read_delivery_pending(delivery)
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
        # a source that keeps a register of its files (welfare's workbooks): the file's fields
        workbook = src.file_key(delivery.rel_name) if src is not None and src.register is not None else None
        for name, frame in frames.items():
            if (name, sha, "loaded") not in seen:
                batches.append(Batch(table_name=name, workbook=workbook, **base))
                parts.append(frame)
    with_rows = iter(common.canonical_frames(parts))
    for batch in batches:
        if batch.error is None:
            batch.frame = next(with_rows)
    log.info(
        "extract %s: %d new table batches (%d rows), %d files unchanged",
        source,
        len(batches),
        progress.rows,
        skipped,
    )
    return batches, skipped, done, this_run


def extract_members_page(
    settings: Settings,
    engine: Engine,
    run_id: str,
    table: str,
    full: bool = False,
    after: tuple[Any, Any] | None = None,
    max_rows: int | None = None,
    log: Log = LOG,
) -> tuple[list[Batch], tuple[Any, Any] | None]:
    """Pull a page of ``table``'s member rows changed since the stored watermark, less the
    overlap window (``full``: every row): at most ``max_rows`` rows past the cursor ``after``.
    Rows the warehouse already holds from earlier runs are dropped (this run's earlier pages
    cannot hold a row of this one). Returns the batch (none when every row was
    held) and the cursor of the next page (None: this was the last). The batch carries the
    pull's start time, not a watermark: the load sets that from the rows that pass
    validation. A stored watermark later than the pull is dropped and the table pulled in full."""
    url = settings.members_database_url
    if url is None:
        log.warning("members: no database configured and no <landing>/members.sqlite; skipped")
        return [], None
    t = schema.table("members", table)
    mark = watermarks(engine, "members").get(table)
    pulled_at = datetime.now(ZoneInfo(settings.timezone)).replace(tzinfo=None)  # as the platform writes time
    if mark is not None and mark > pulled_at:
        # Set by a row dated in the future (releases before issue 18): what changed since it was set
        # is unknown, so everything is read again (rows held are dropped); the load sets a new one.
        log.warning(
            "members %s: the stored watermark %s is later than this pull: dropped, every row is pulled again",
            table,
            f"{mark:%Y-%m-%d %H:%M:%S}",
        )
        drop_watermark(engine, "members", table)
        mark, full = None, True
    since = None if full else members.lower_bound(mark, timedelta(minutes=settings.members_overlap_minutes))
    today = pulled_at.date()
    source_engine = members_engine(url)
    window, skipped, in_window = None, 0, (set[str](), set[str]())
    try:
        with source_engine.connect() as conn:
            if since is not None and mark is not None:
                # The overlap window is mostly rows already loaded: their versions are read first,
                # and only the window's rows the warehouse does not hold are read in full.
                keys, versions = members.window_versions(conn, t, since, mark, after)
                in_window = seen_versions(engine, t, since, mark, run_id)
                unseen = [k for k, v in zip(keys, versions, strict=True) if v not in in_window[0]]
                if len(unseen) <= members.WINDOW_KEYS_MAX:
                    window, skipped = members.Window(mark, unseen), len(keys) - len(unseen)
            pulled, cursor = members.read_page(conn, t, today, since, after, max_rows, window)
    except BatchError as err:
        # named by its table: a run may reject both tables, each gets its own ledger row
        return [Batch("members", table, err.file, "-", today, error=err)], None
    finally:
        source_engine.dispose()
    faults.checkpoint("extract.members")
    lo, hi = members.updated_range(pulled)
    if pulled.height == 0:
        held = in_window
    elif window is not None:  # what is held of the window is known: only the rows after it are looked up
        later = seen_versions(engine, t, window.end, hi, run_id, quarantined=False)[0]
        held = (in_window[0] | later, in_window[1])
    else:
        held = seen_versions(
            engine, t, max((d for d in (since, lo) if d is not None), default=None), hi, run_id
        )
    frame, dropped = members.drop_seen(pulled, t, *held)
    dropped += skipped
    log.info(
        "extract members %s: %d rows pulled%s, %d new",
        table,
        pulled.height + skipped,
        " (full re-pull)" if full else "",
        frame.height,
    )
    if dropped:
        log.info(
            "extract members %s: %d rows re-read in the overlap window were already loaded%s",
            table,
            dropped,
            f" ({skipped} of them read by key and updated_at only)" if skipped else "",
        )
    if frame.height == 0:
        return [], cursor
    # The watermark comes later (the load): from the rows that pass validation, capped at pulled_at.
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
