"""The ``unionwh`` command: parses, calls, prints. Errors end as one clear line."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from flows.errors import ConfigError, Exit, UnionWHError, safe_error_text
from flows.orchestration.logfilter import quiet_tracebacks

if TYPE_CHECKING:
    from flows.settings import Settings

# The imports inside the commands below are deferred on purpose: flows.settings alone brings
# pydantic and SQLAlchemy (~0.3 s), the warehouse modules DuckDB, the flows Prefect, Polars and
# Great Expectations (seconds). `unionwh --help` and a refused option import none of them, and
# each command imports only what it uses. (A few light ones, a millisecond or more each, are
# deferred too, where one command needs them: `--help` is not slower than it was.)


def _common(p: argparse.ArgumentParser, *, landing: bool = False, members: bool = False) -> None:
    p.add_argument(
        "--warehouse",
        metavar="URL",
        help="warehouse URL (env UNIONWH_WAREHOUSE; default duckdb:///data/warehouse.duckdb)",
    )
    if landing:
        p.add_argument(
            "--landing", metavar="DIR", help="landing zone (env UNIONWH_LANDING; default data/landing)"
        )
    if members:
        p.add_argument(
            "--members-url",
            metavar="URL",
            help="members database URL (env UNIONWH_MEMBERS_URL; default <landing>/members.sqlite)",
        )


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line like every other (not the usage lines, then the error);
    ``--help`` still shows the usage. Sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(Exit.USAGE, f"unionwh: error: {_one_line(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unionwh", description="Trade-union federation warehouse: nightly load, validation, figures."
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write a synthetic landing zone (and members.sqlite)")
    demo.add_argument("--year", type=int, default=2021)
    demo.add_argument("--landing", metavar="DIR")
    demo.add_argument("--seed", type=int, default=None, help="random seed (default: the year)")
    demo.add_argument(
        "--scale",
        type=int,
        default=1,
        metavar="N",
        help="N copies of the zone side by side, with their own identifiers (for benchmarks; "
        "default 1: the zone, whose figures land in their seed ranges)",
    )

    run = sub.add_parser("run", help="run the nightly-load flow: extract, validate, load, dbt build, figures")
    _common(run, landing=True, members=True)
    run.add_argument("--year", type=int, help="report year (default from config: 2021)")
    run.add_argument(
        "--members-full",
        action="store_true",
        help="re-pull every member row, not only those changed since the watermark (rows "
        "already loaded are still not loaded twice)",
    )
    run.add_argument(
        "--lock-wait",
        type=int,
        metavar="SECONDS",
        help="how long to wait for another run's warehouse lock (env UNIONWH_LOCK_WAIT_SECONDS; "
        "default 3600)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="clear the file sources' raw rows, ledger and quarantine, reload the whole landing zone, "
        "rebuild every model, and check the result equals the incremental warehouse (exit 1 if not)",
    )
    run.add_argument(
        "--load-only",
        action="store_true",
        help="extract, validate and load only: no dbt build, docs, grants or figures",
    )

    back = sub.add_parser(
        "backfill", help="replay the deliveries dated FROM..TO in order, one run per delivery date"
    )
    _common(back, landing=True, members=True)
    back.add_argument("--from", dest="date_from", required=True, type=_iso_date, metavar="YYYY-MM-DD")
    back.add_argument("--to", dest="date_to", required=True, type=_iso_date, metavar="YYYY-MM-DD")
    back.add_argument("--year", type=int, help="report year (default from config)")
    back.add_argument("--lock-wait", type=int, metavar="SECONDS", help="as for run")
    back.add_argument("--load-only", action="store_true", help="no dbt build at the end")

    figures = sub.add_parser("figures", help="print a year's figures from the warehouse")
    _common(figures)
    figures.add_argument("--year", type=int, help="report year (default from config)")
    figures.add_argument("--format", choices=("table", "json", "csv"), default="table")
    figures.add_argument(
        "--as-known-on",
        metavar="YYYY-MM-DD",
        type=_iso_date,
        help="recompute the figures from the deliveries up to this date (dbt build into "
        "schemas suffixed _asof_YYYYMMDD; the current marts are not touched)",
    )
    metrics = sub.add_parser(
        "metrics",
        help="the figures as a semantic layer (MetricFlow): list the metrics, query them by month, zone…",
    )
    maction = metrics.add_subparsers(dest="metrics_action", required=True)
    mlist = maction.add_parser("list", help="every metric (one per figure), its unit, label and group-bys")
    _common(mlist)
    mlist.add_argument("--format", choices=("table", "json", "csv"), default="table")
    mquery = maction.add_parser(
        "query",
        help="query metrics: --metrics A,B --group-by metric_time__month,enterprise__zone",
    )
    _common(mquery)
    mquery.add_argument("--metrics", required=True, metavar="A,B", help="metric names (unionwh metrics list)")
    mquery.add_argument(
        "--group-by",
        default="",
        metavar="X,Y",
        help="metric_time__day|week|month|quarter|year, enterprise__zone, enterprise__industry_section, "
        "trade_union__union_form, figure_row__category, …",
    )
    mquery.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FILTER",
        help="a MetricFlow filter, e.g. \"{{ Dimension('enterprise__zone') }} = '海港'\" (repeatable: all hold)",
    )
    mquery.add_argument(
        "--order-by", default="", metavar="X,-Y", help="order (default: the group-bys); -X descends"
    )
    mquery.add_argument("--limit", type=int, help="at most this many rows")
    mquery.add_argument("--format", choices=("table", "json", "csv"), default="table")
    mquery.add_argument("--explain", action="store_true", help="print the SQL instead of running it")
    quality = sub.add_parser("quality", help="per source: rows, quarantined, top failing rules of a run")
    _common(quality)
    quality.add_argument("--run", default="latest", help="run id, or latest (default)")
    wh = sub.add_parser("warehouse", help="warehouse administration")
    wh.add_argument(
        "action",
        choices=("init", "upgrade", "rotate-key"),
        help="init: create (or upgrade) the raw/ops schemas and tables and, on PostgreSQL, the roles "
        "unionwh_loader, unionwh_analyst, unionwh_auditor with their grants; upgrade: apply "
        "the missing schema migrations only and list the warehouse's schema history; "
        "rotate-key: re-key every pseudonym under the key in UNIONWH_NEW_PII_KEY (the current "
        "key from UNIONWH_PII_KEY or pii.key); the next run rebuilds every model",
    )
    _common(wh)
    audit = sub.add_parser("audit", help="write the fund-audit workbook of a year (one sheet per check)")
    _common(audit)
    audit.add_argument("--year", type=int, help="report year (default from config)")
    audit.add_argument(
        "--out", metavar="FILE.xlsx", help="output workbook (default <output>/audit-<year>.xlsx)"
    )
    report = sub.add_parser(
        "report",
        help="write the annual summary in Chinese (Markdown, HTML, Word) from the "
        "warehouse; publish it; diff it against the warehouse now",
    )
    _common(report)
    report.add_argument("--year", type=int, help="report year (default from config)")
    report.add_argument("--out", metavar="DIR", help="output folder (default <output>/summary-<year>)")
    report.add_argument(
        "--template", metavar="FILE", help="report template (default config/report/summary.zh.md)"
    )
    actions = report.add_subparsers(dest="action", required=False)
    for name, text in (
        (
            "publish",
            (
                "freeze the year's summary, figures, source rows and source-file hashes "
                "with a SHA-256 manifest into <published>/<year>/ (never rewritten)"
            ),
        ),
        (
            "diff",
            (
                "check the published copy against its manifest and list each figure that "
                "would change now, with the source rows behind the change (exit 1 if any)"
            ),
        ),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--year", type=int, default=argparse.SUPPRESS, help="report year (default from config)"
        )
        action.add_argument("--warehouse", metavar="URL", default=argparse.SUPPRESS, help="warehouse URL")
        if name == "publish":
            action.add_argument(
                "--template", metavar="FILE", default=argparse.SUPPRESS, help="report template"
            )
    status = sub.add_parser(
        "status", help="the last runs from the run ledger, and the figures the latest changed"
    )
    _common(status)
    status.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    status.add_argument(
        "--changes",
        action="store_true",
        help="list every figure the newest run changed (default: counts and the first 10)",
    )
    serve = sub.add_parser(
        "serve",
        help="register the Prefect deployments (nightly at 02:00, backfill, annual "
        "report) with PREFECT_API_URL and run their flow runs until stopped",
    )
    serve.add_argument("--limit", type=int, help="at most this many flow runs at once (default: no limit)")
    live = sub.add_parser(
        "liveness",
        help="install (or update) on PREFECT_API_URL the Prefect automation that marks "
        "a unionwh flow run Crashed when its heartbeats stop (its process died)",
    )
    live.add_argument(
        "--crashed-after",
        type=int,
        metavar="SECONDS",
        help="silence after which a flow run is marked Crashed (env UNIONWH_CRASHED_AFTER_SECONDS; "
        "default 90)",
    )
    server = sub.add_parser(
        "prefect-server", help="run a Prefect server (API and UI) backed by PostgreSQL, for production"
    )
    server.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL database of the server (env UNIONWH_PREFECT_DATABASE_URL; default "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/prefect); created if missing",
    )
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=4200)
    return parser


def _settings(args: argparse.Namespace, **more: object) -> Settings:
    """The command's settings, resolved once: its options (None: not given) over the environment,
    the config file and the defaults. The command passes this object down (to a flow run in this
    process through :func:`flows.settings.bound`, never as a logged flow parameter); nothing is
    written to ``os.environ``."""
    from flows.settings import load_settings  # deferred: pydantic and SQLAlchemy (~0.3 s), not for --help

    return load_settings(
        # an empty option (`--warehouse "$UNSET"`) is not given, as before issue 21
        warehouse=getattr(args, "warehouse", None) or None,
        members_url=getattr(args, "members_url", None) or None,
        landing=getattr(args, "landing", None) or None,
        lock_wait_seconds=getattr(args, "lock_wait", None),
        **more,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Writes the landing zone (and only it): its year, scale and folder are checked first."""
    if args.scale < 1:
        raise ConfigError("--scale must be at least 1")
    settings = _settings(args, report_year=args.year)  # the year's range, as a run's
    landing = settings.landing_dir
    folder = landing
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the demo landing zone {landing}: {folder} is not a writable folder; "
            "fix --landing (or UNIONWH_LANDING)"
        )
    from flows.demo.synth import generate  # deferred: Faker and openpyxl, after the checks above

    try:
        manifest = generate(
            landing, year=args.year, seed=args.seed if args.seed is not None else args.year, scale=args.scale
        )
    except OSError as exc:  # a folder that cannot be made or written (a full disk, permissions)
        raise ConfigError(
            f"cannot write the demo landing zone {landing} ({exc.strerror}): fix --landing (or "
            "UNIONWH_LANDING)"
        ) from None
    files = getattr(manifest, "files", [])
    print(f"demo landing zone for {args.year} written to {landing} ({len(files)} files)")
    print(f"members database: {landing / 'members.sqlite'}")
    return 0


@contextlib.contextmanager
def _flow_process() -> Iterator[Callable[[], None]]:
    """Around a command that runs a flow, before it imports the flow: Prefect's temporary server
    starts (a child process, flows/orchestration/server.py) and Great Expectations loads (in a
    thread), overlapping the imports. Call the yielded function before the flow runs: it waits
    until the server answers; the flow reports to it. The server stops when the block ends."""
    # deferred: Prefect and Great Expectations (seconds); only the commands that run a flow need them
    from flows.orchestration.server import start_temporary_server_early
    from flows.quality.runner import warm_up

    server = start_temporary_server_early()
    warm_up()
    if server is None:
        yield lambda: None
        return
    try:
        with server.configured():
            yield server.join
    finally:
        server.stop()


def _preflight(settings: Settings, window: tuple[date, date] | None = None) -> None:
    """Before Prefect starts, on the command's settings: the PostgreSQL
    warehouse's key, the warehouse and the members database answering with this login, the
    landing zone holding a delivery (for a backfill: one dated within ``window``)
    (flows/preflight.py). A mistake there is one line in a second, not a temporary server, three
    retries and a traceback a minute later."""
    from flows.preflight import check_before_run  # deferred: SQLAlchemy (~0.3 s)

    check_before_run(settings, window)


def _run_exit(status: str, refresh_equal: bool | None = None) -> Exit:
    """A run's exit code from its status (flows/errors.py ``Exit``): rejected files (status
    ``failed``: the run itself completed) or a full refresh that differs ask for attention."""
    if status == "succeeded":
        return Exit.OK if refresh_equal is not False else Exit.ATTENTION
    if status == "failed":
        return Exit.ATTENTION
    return Exit.INTERRUPTED if status == "interrupted" else Exit.FAILED


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args, report_year=args.year)  # (the report year in its range: refused here)
    _preflight(settings)
    with _flow_process() as ready:
        # deferred: the flow imports Prefect, Polars, Great Expectations and dbt (seconds), after
        # the checks above and while the temporary server starts
        from flows.nightly import nightly_load
        from flows.orchestration.liveness import heartbeats
        from flows.report.format import figures_table
        from flows.settings import bound

        ready()
        with heartbeats(settings), bound(settings):
            summary = nightly_load(
                landing=None,
                year=settings.report_year,
                members_full=args.members_full,
                build=not args.load_only,
                full_refresh=args.full_refresh,
            )
    read, loaded, quarantined = summary.rows
    if not args.load_only:
        print(figures_table(settings.report_year, summary.figures))
        print()
    if summary.refresh_equal is not None:
        if summary.refresh_equal:
            print(
                "full refresh: equals the incremental warehouse (raw tables, ledger, quarantine"
                f"{', figures' if summary.figure_changes is not None else ''})"
            )
        else:
            for line in summary.refresh_differences or []:
                print(f"full refresh differs: {line}")
            for c in summary.figure_changes or []:
                print(f"full refresh differs: figure {c.figure_id} {c.report_year}: {c.old} -> {c.new}")
    print(f"run {summary.run_id}: {summary.status}")
    print(
        f"rows read {read} = loaded {loaded} + quarantined {quarantined}; "
        f"{summary.held_back} rows held back in rejected files; "
        f"{summary.skipped_files} files unchanged since an earlier run"
    )
    for err in summary.errors:
        print(f"rejected: {err}")
    print(f"warehouse: {settings.safe_warehouse()}")
    for path in summary.report_files:
        print(f"report: {path}")
    print(f"dbt artifacts: {summary.run_dir / 'dbt' if summary.run_dir else '-'}")
    return _run_exit(summary.status, summary.refresh_equal)


def cmd_backfill(args: argparse.Namespace) -> int:
    if args.date_from > args.date_to:
        raise ConfigError(f"backfill: --from {args.date_from} is after --to {args.date_to}")
    settings = _settings(args, report_year=args.year)
    _preflight(settings, (args.date_from, args.date_to))
    with _flow_process() as ready:
        # deferred: the flows import Prefect, Polars, Great Expectations and dbt (seconds), after
        # the checks above and while the temporary server starts
        from flows.backfill import backfill
        from flows.orchestration.liveness import heartbeats
        from flows.report.format import figures_table
        from flows.settings import bound

        year = settings.report_year
        ready()
        with heartbeats(settings), bound(settings):
            runs = backfill(args.date_from, args.date_to, landing=None, year=year, build=not args.load_only)
    for r in runs:
        read, loaded, quarantined = r.rows
        print(
            f"run {r.run_id}: {r.status}; rows read {read} = loaded {loaded} + quarantined {quarantined}; "
            f"{len(r.errors)} rejected"
        )
        for err in r.errors:
            print(f"  rejected: {err}")
    if runs and runs[-1].figures:
        print()
        print(figures_table(year, runs[-1].figures))
    return max((_run_exit(r.status) for r in runs), default=Exit.OK)


def _write_stdout(data: bytes) -> None:
    """Bytes to stdout as they are (a BOM stays a BOM whatever the terminal's encoding)."""
    sys.stdout.flush()
    raw = getattr(sys.stdout, "buffer", None)
    if raw is None:  # stdout replaced by a text-only stream (library use)
        sys.stdout.write(data.decode("utf-8"))
        return
    raw.write(data)
    raw.flush()


def _note(line: str) -> None:
    print(line, file=sys.stderr)


def cmd_figures(args: argparse.Namespace) -> int:
    """Reads the warehouse read-only; ``--as-known-on`` builds its own ``_asof_`` schemas with dbt
    (the current marts untouched), after the same checks."""
    settings = _settings(args, report_year=args.year)
    # deferred: SQLAlchemy and DuckDB (~0.3 s); only the read commands need them
    from flows.report.format import figures_csv, figures_json, figures_table
    from flows.warehouse.figures import FIGURES_RELATION, fetch_figures
    from flows.warehouse.readonly import reading, relation_exists, require_year

    year = settings.report_year
    # while a run holds a DuckDB warehouse, the figures come from its marts snapshot (not for
    # --as-known-on, which builds in the warehouse itself)
    note = None if args.as_known_on is not None else _note
    with reading(settings, note) as engine:  # closed before dbt opens the warehouse for --as-known-on
        if args.as_known_on is None:
            require_year(engine, year)
            figures = fetch_figures(engine, year)
        elif relation_exists(engine, FIGURES_RELATION):  # else only the build below can tell
            require_year(engine, year)
    if args.as_known_on is not None:
        # deferred: dbt (seconds), for this option only
        from flows.warehouse.asof import figures_as_known_on, schema_suffix

        artifacts = settings.output_dir / f"asof{schema_suffix(args.as_known_on)}"
        figures = figures_as_known_on(settings, year, args.as_known_on, artifacts)
    if not figures:
        known = f" as known on {args.as_known_on}" if args.as_known_on is not None else ""
        raise UnionWHError(f"no figures for {year}{known} in the warehouse")
    render = {"table": figures_table, "json": figures_json, "csv": figures_csv}[args.format]
    _print_as(args.format, render(year, figures, as_known_on=args.as_known_on))
    return 0


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def cmd_metrics(args: argparse.Namespace) -> int:
    """Reads the warehouse (or, while a run holds a DuckDB warehouse, its marts snapshot) with the
    SQL MetricFlow plans from the newest run's semantic manifest (flows/metrics/engine.py)."""
    settings = _settings(args)
    # deferred: MetricFlow (~1 s), SQLAlchemy and DuckDB; only this command needs them
    from flows.metrics import engine as mf
    from flows.warehouse.readonly import reading

    metrics = mf.Metrics(mf.manifest_path(settings.output_dir), duckdb=settings.is_duckdb)
    if args.metrics_action == "list":
        listed = metrics.list()
        render_list = {"table": mf.metrics_table, "json": mf.metrics_json, "csv": mf.metrics_csv}[args.format]
        _print_as(args.format, render_list(listed))
        return 0
    names, group_by = _names(args.metrics), _names(args.group_by)
    if not names:
        raise UnionWHError(
            "--metrics names no metric: give one or more, comma-separated (unionwh metrics list)"
        )
    if args.limit is not None and args.limit < 1:
        raise UnionWHError("--limit must be 1 or more")
    order_by = _names(args.order_by)
    if args.explain:
        sys.stdout.write(metrics.sql(names, group_by, args.where, order_by, args.limit) + "\n")
        return 0
    with reading(settings, _note) as engine:
        answer = mf.query(metrics, engine, names, group_by, args.where, order_by, args.limit)
    render = {"table": mf.answer_table, "json": mf.answer_json, "csv": mf.answer_csv}[args.format]
    _print_as(args.format, render(answer))
    return 0


def _print_as(fmt: str, text: str) -> None:
    """A command's output, ending in one newline. CSV is written as UTF-8 bytes, whatever the
    terminal's encoding, after a BOM so that Excel shows the Chinese labels
    (flows/report/format.py CSV_BOM)."""
    text = text.rstrip("\n") + "\n"
    if fmt == "csv":
        _write_stdout(("\ufeff" + text).encode("utf-8"))
    else:
        sys.stdout.write(text)


def cmd_quality(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # deferred: SQLAlchemy and DuckDB (~0.3 s); only the read commands need them
    from flows.warehouse.ops import format_quality, quality_summary, resolve_run
    from flows.warehouse.readonly import reading, require_ledger

    with reading(settings) as engine:
        require_ledger(engine, settings, version_needed=1)
        run_id = resolve_run(engine, args.run)
        print(format_quality(run_id, quality_summary(engine, run_id)))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    settings = _settings(args, report_year=args.year)
    # deferred: SQLAlchemy and DuckDB (~0.3 s), the workbook writer; only this command needs them
    from flows.report.audit import audit_years, fetch_audit, write_workbook
    from flows.warehouse.readonly import reading, require_year, span

    year = settings.report_year
    with reading(settings) as engine:
        require_year(engine, year)
        audit = fetch_audit(
            engine,
            year,
            published_dir=settings.published_dir,
            template=settings.template_path.read_text(encoding="utf-8"),
        )
        if audit.is_empty:  # an empty workbook would look like a clean audit
            years = audit_years(engine)
            which = (
                f"years with finance data are {span(years)}: choose one with --year"
                if years
                else "no year has any"
            )
            raise UnionWHError(
                f"no finance data for {year} in the warehouse (no budget, posting or welfare "
                f"ledger): nothing to audit; {which}"
            )
    out = Path(args.out) if args.out else settings.output_dir / f"audit-{year}.xlsx"
    write_workbook(audit, out)
    counts = audit.by_rule()
    print(f"fund audit {year}: {len(audit.exceptions)} exceptions")
    for rule, rows in counts.items():
        print(f"  {rule:<26} {len(rows)}")
    published = {True: "published", False: "not published", None: "publication not checked"}[
        audit.meta.published
    ]
    print(f"built by run {audit.meta.run_id or '(none recorded)'}; {year} {published}")
    print(f"workbook: {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Reads the warehouse read-only; writes only the report files (or the published folder)."""
    settings = _settings(args, report_year=args.year, report_template=args.template)
    # deferred: SQLAlchemy, DuckDB and the document writers (~0.5 s); only this command needs them
    from flows.report import publish
    from flows.report.summary import write_report
    from flows.report.trace import collect
    from flows.warehouse.readonly import reading, require_year

    year = settings.report_year
    template = settings.template_path.read_text(encoding="utf-8")
    with reading(settings) as engine:
        if args.action == "diff":  # a published year is compared even if its data left the warehouse
            d = publish.diff(engine, year, settings.published_dir)
            print(publish.format_diff(d))
            return Exit.FAILED if d.problems else (Exit.ATTENTION if d.changes else Exit.OK)
        require_year(engine, year)
        if args.action == "publish":
            folder = publish.publish(
                engine,
                year,
                template,
                settings.output_dir,
                settings.published_dir,
                {"warehouse": settings.safe_warehouse()},
            )
            print(f"published {year}: {folder}")
            for line in (folder / publish.MANIFEST).read_text(encoding="utf-8").splitlines():
                print(f"  {line}")
            return 0
        data = collect(engine, year, settings.output_dir)
    out = Path(args.out) if args.out else settings.output_dir / f"summary-{year}"
    for path in write_report(data, template, out):
        print(f"report: {path}")
    return 0


def _rotate_key(settings: Settings) -> int:
    """Both keys and the warehouse are checked before anything is opened for writing."""
    # deferred: SQLAlchemy, DuckDB and Polars (~0.5 s); only this action needs them
    from flows.preflight import check_existing_warehouse
    from flows.warehouse import pii
    from flows.warehouse.engine import init_warehouse, warehouse_engine
    from flows.warehouse.lock import warehouse_lock

    new = os.environ.get("UNIONWH_NEW_PII_KEY", "")
    if not new:
        raise ConfigError(
            "set UNIONWH_NEW_PII_KEY to the new pseudonymisation key (never on the command line)"
        )
    if len(new) < 16:
        raise ConfigError("the new pseudonymisation key (UNIONWH_NEW_PII_KEY) must be at least 16 characters")
    check_existing_warehouse(settings, "re-key")
    old, _ = pii.resolve_key(settings)
    if new.encode("utf-8") == old:
        raise ConfigError("UNIONWH_NEW_PII_KEY is the current pseudonymisation key: nothing to re-key")
    engine = warehouse_engine(settings)
    try:
        with warehouse_lock(
            engine,
            settings.duckdb_path if settings.is_duckdb else None,
            "rotate-key",
            settings.lock_wait_seconds,
        ):
            init_warehouse(engine)
            values = pii.rotate(engine, old, new.encode("utf-8"))
            engine.dispose()
    finally:
        engine.dispose()
    print(f"pseudonyms re-keyed: {values} distinct values; warehouse {settings.safe_warehouse()}")
    if settings.pii_key is None and settings.is_duckdb:
        print(f"new key written to {pii.replace_key_file(settings, new.encode('utf-8'))}")
    else:
        print("now set UNIONWH_PII_KEY to the new key (the old one no longer matches this warehouse)")
    print("the next `unionwh run` rebuilds every dbt model, so the marts carry the new pseudonyms")
    return 0


def cmd_warehouse(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # deferred: SQLAlchemy, DuckDB and the migrations; only this command needs them
    from flows.preflight import check_existing_warehouse, check_warehouse
    from flows.warehouse import migrations, roles
    from flows.warehouse.engine import init_warehouse, warehouse_engine

    if args.action == "rotate-key":
        return _rotate_key(settings)
    if args.action == "init":  # creates the warehouse where there is none
        check_warehouse(settings)
    else:  # upgrade: only a warehouse that is there
        check_existing_warehouse(settings, "upgrade")
    engine = warehouse_engine(settings)
    created: list[str] = []
    try:
        applied = init_warehouse(engine)
        if args.action == "init":
            created = roles.create_roles(engine)
            roles.apply_grants(engine)
        history = migrations.history(engine)
    finally:
        engine.dispose()
    print(f"warehouse ready: {settings.safe_warehouse()}")
    for version, description, applied_at in history:
        now = " (applied now)" if any(m.version == version for m in applied) else ""
        print(f"schema version {version}, {applied_at:%Y-%m-%d %H:%M}{now}: {description}")
    if args.action == "init" and roles.is_postgres(engine):
        print(
            f"roles: {', '.join(roles.ROLES)} ({'created ' + ', '.join(created) if created else 'already there'})"
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 when the newest run succeeded, 1 when it failed or crashed (for monitoring).
    Reads the warehouse read-only: a warehouse without the run ledger is refused, not created."""
    settings = _settings(args)
    # deferred: SQLAlchemy and DuckDB (~0.3 s); only the read commands need them (zoneinfo: ~2 ms)
    from zoneinfo import ZoneInfo

    from flows.report.status import FIRST_CHANGES, changes_summary, runs_table
    from flows.warehouse import runlog
    from flows.warehouse.ops import stored_watermarks
    from flows.warehouse.readonly import reading, require_ledger

    with reading(settings) as engine:
        require_ledger(engine, settings)
        runs = runlog.recent_runs(engine, args.last)
        changes = runlog.changes_of(engine, runs[0].run_id) if runs else []
        marks = stored_watermarks(engine)
    print(f"warehouse: {settings.safe_warehouse()}")
    if marks:
        # A watermark later than now hides every change dated before it from the incremental pull
        # (before issue 18 a row dated in the future could set one): said where monitoring looks.
        now = datetime.now(ZoneInfo(settings.timezone)).replace(tzinfo=None)
        print(f"{'watermark':<24} {'value':<19} {'set by load':<20} run")
        for m in marks:
            print(
                f"{m.source + '.' + m.table_name:<24} {m.value:%Y-%m-%d %H:%M:%S} {m.load_id:<20} "
                f"{m.run_id or '-'}"
            )
        for m in marks:
            if m.value > now:
                print(
                    f"warning: watermark {m.source}.{m.table_name} {m.value:%Y-%m-%d %H:%M:%S} is later than "
                    f"now ({now:%Y-%m-%d %H:%M:%S} {settings.timezone}): changes dated before it are not "
                    "pulled; the next run re-pulls the table in full and resets it"
                )
        print()
    if not runs:
        print("no runs yet")
        return 0
    for line in runs_table(runs):
        print(line)
    newest = runs[0]
    if changes:
        print()
        for line in changes_summary(newest.run_id, changes, None if args.changes else FIRST_CHANGES):
            print(line)
    return 0 if newest.status in ("succeeded", "running") else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """The settings and the key are checked before Prefect starts: a mistake there is one line now,
    not a nightly run failing at 02:00. (Servers are not connected to: they may start later.)"""
    from flows.preflight import check_key  # deferred: SQLAlchemy (~0.3 s)

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    settings = _settings(args)
    check_key(settings)
    # deferred: imports every flow (Prefect, Polars, Great Expectations, dbt), after the checks above
    from flows.deployments import serve

    if not os.environ.get("PREFECT_API_URL"):
        print(
            "unionwh serve: PREFECT_API_URL is not set, so the deployments go to a temporary server that "
            "ends with this process; see `unionwh prefect-server`",
            file=sys.stderr,
        )
    serve(settings, limit=args.limit)
    return 0


def cmd_liveness(args: argparse.Namespace) -> int:
    from flows.orchestration import liveness  # deferred: light (~1 ms), but only this command needs it

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "set PREFECT_API_URL to the Prefect server that should watch the flow runs (http://host:4200/api)"
        )
    settings = _settings(args, crashed_after_seconds=args.crashed_after)
    try:
        done = liveness.install(settings.crashed_after_seconds)
    except Exception as exc:
        if args.debug:
            raise
        raise UnionWHError(
            f"could not install the automation on {os.environ['PREFECT_API_URL']}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    print(
        f"automation {liveness.AUTOMATION_NAME!r} {done}: a flow run of {', '.join(liveness.FLOW_NAMES)} "
        f"silent for {settings.crashed_after_seconds} s is marked Crashed; unionwh runs send a heartbeat every "
        f"{settings.heartbeat_seconds} s"
    )
    return 0


def cmd_prefect_server(args: argparse.Namespace) -> int:
    """The server does not need unionwh's settings: only its liveness automation does (a mistake
    there is a warning, and the server starts without it)."""
    from flows.orchestration import server  # deferred: SQLAlchemy; Prefect runs in the server's own process

    url = server.database_url(args.database_url)
    try:
        settings: Settings | None = _settings(args)
    except ConfigError as exc:
        print(f"unionwh: warning: liveness automation not installed: {exc}", file=sys.stderr, flush=True)
        settings = None
    return server.start(url, args.host, args.port, settings)


def _one_line(text: str) -> str:
    """A message on one line (a library's text inside ours may hold line breaks)."""
    return " ".join(text.split())


def _unexpected(exc: BaseException) -> str:
    """``<Type>: <text>`` of an exception we did not foresee, scrubbed of values
    (:func:`flows.errors.safe_error_text`: it may quote a row it choked on)."""
    text = safe_error_text(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


COMMANDS = {
    "serve": cmd_serve,
    "liveness": cmd_liveness,
    "backfill": cmd_backfill,
    "status": cmd_status,
    "prefect-server": cmd_prefect_server,
    "warehouse": cmd_warehouse,
    "demo": cmd_demo,
    "run": cmd_run,
    "figures": cmd_figures,
    "metrics": cmd_metrics,
    "quality": cmd_quality,
    "audit": cmd_audit,
    "report": cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The federation's runs carry personal data: no usage telemetry from the local Prefect server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server gets 20 s to start by default; on a busy 2-core machine (or with
    # two runs starting at once) that is too short, and the run dies before it begins.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Everything the CLI writes (the DuckDB warehouse and its .wal, run folders, reports, the audit
    # workbook, dbt's files) holds personal data or figures from it: readable by its owner only.
    # (A stricter umask the user set stays; restored on return, for callers of main() in-process.)
    umask = os.umask(0o077)
    os.umask(umask | 0o077)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # our own errors end in one line (printed below), not in Prefect's traceback too
    loud = quiet_tracebacks() if not args.debug else lambda: None
    try:
        return COMMANDS[args.command](args)
    except UnionWHError as exc:  # ours: one line; the exit code says refused (2) or failed (3)
        if args.debug:
            traceback.print_exc()
        print(f"unionwh: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (flows/orchestration/interrupt.py)
        from flows.orchestration import interrupt  # deferred: signal, threading (~2 ms), on Ctrl-C only

        if args.debug:
            traceback.print_exc()
        print(f"unionwh: interrupted: {interrupt.describe(exc)}", file=sys.stderr)
        return interrupt.exit_code(exc)  # 128 + the signal: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    except BrokenPipeError:  # `unionwh status | head`: the reader left; nothing more to say
        with contextlib.suppress(OSError):  # (and no second error when Python flushes stdout)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
    except Exception as exc:  # noqa: BLE001 - every exception ends in one line, a bug too (--debug: its traceback)
        if args.debug:
            traceback.print_exc()
        if "could not set lock on file" in str(exc).lower():  # an expected state, not a bug: refused
            print(
                "unionwh: error: the DuckDB warehouse is open in another process (a run in progress?); "
                "DuckDB allows one process at a time: try again when it has finished",
                file=sys.stderr,
            )
            return Exit.USAGE
        # a bug (or a library error nobody foresaw): one line without values, as docs/commands.md promises
        print(
            f"unionwh: error: unexpected {_unexpected(exc)} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return Exit.FAILED
    finally:
        os.umask(umask)
        loud()
        if argv is None:  # (the command line's process, which ends now; not a caller in-process)
            # Python's last garbage collection at exit walks every object Prefect, Great
            # Expectations and dbt's readers left (~1.3 s after a run); the OS frees them at once
            gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
