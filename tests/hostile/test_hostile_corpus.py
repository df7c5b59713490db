"""Acceptance test of issue 18: the hostile-delivery corpus (tests/hostile/corpus.py) through
real `unionwh run` calls, on DuckDB and on PostgreSQL.

Per warehouse, the small baseline landing zone is loaded once by a full run (dbt included)
into a template warehouse. Each case then gets a fresh copy of the landing zone plus its
hostile entries, a copy of the template warehouse, and ONE real load-only run in this
process (``flows.cli.main``, the session's Prefect test server). Per case: the exit code,
the ledger rows (file -> status and rule), the quarantine rules and counts, row
conservation per physical line, the raw tables of untouched sources unchanged, and none of
the case's personal values in the console, the ledger, the run log, any ops table but
``ops.quarantine.original_values``, or the run folder. Then one full run over a landing zone
holding every case at once must leave the figures table byte-identical to the baseline's.
Both warehouses must give the same outcome case by case.

Failures are collected and reported together, one line per case (expected, actual).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.schema import SOURCES, TABLES
from flows.warehouse import refresh
from tests.hostile import corpus
from tests.hostile.corpus import CASES, Case, Entry
from tests.orchestration.faultkit import KEY, figures_table, small_landing
from tests.support import ARTIFACTS

pytestmark = pytest.mark.e2e

ONLY = {n for n in os.environ.get("UNIONWH_HOSTILE_ONLY", "").split(",") if n}
"""For working on the corpus: run only these cases (comma-separated names); unset in CI."""
OUTCOMES: dict[str, dict[str, tuple]] = {}
"""warehouse kind -> case -> its comparable outcome (exit code, ledger rows, quarantine rows)."""


# ------------------------------------------------------------------ warehouses
class DuckWarehouse:
    """A template DuckDB file, copied per case."""

    kind = "duckdb"

    def __init__(self, work: Path) -> None:
        self.template = work / "template" / "wh.duckdb"
        self.template.parent.mkdir(parents=True, exist_ok=True)

    def template_url(self) -> str:
        return f"duckdb:///{self.template}"

    def fresh(self, name: str, folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.template, folder / "wh.duckdb")
        return f"duckdb:///{folder / 'wh.duckdb'}"

    def drop(self, url: str) -> None:
        Path(url.removeprefix("duckdb:///")).unlink(missing_ok=True)

    def seal(self) -> None:
        """Nothing to do: a file is copied whole."""

    def close(self) -> None:
        pass


class PgWarehouse:
    """A template PostgreSQL database, cloned per case with CREATE DATABASE ... TEMPLATE."""

    kind = "postgres"

    def __init__(self, server: str, tag: str) -> None:
        self.server = server
        self.base = f"hostile_base_{tag}"
        self.made: set[str] = set()
        self._admin(f'DROP DATABASE IF EXISTS "{self.base}" WITH (FORCE)', f'CREATE DATABASE "{self.base}"')
        self.made.add(self.base)

    def _admin(self, *statements: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(f"{self.server}/test")
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname="test", autocommit=True
        ) as con:
            for s in statements:
                con.execute(s)

    def template_url(self) -> str:
        return f"{self.server}/{self.base}"

    def seal(self) -> None:
        """A template must have no open connections (engines of the run may linger in pools)."""
        self._admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.base}' "
            "AND pid <> pg_backend_pid()"
        )

    def fresh(self, name: str, folder: Path) -> str:
        db = f"hostile_case_{self.base.removeprefix('hostile_base_')}"
        self.seal()
        self._admin(
            f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}" TEMPLATE "{self.base}"'
        )
        self.made.add(db)
        return f"{self.server}/{db}"

    def drop(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def close(self) -> None:
        for db in self.made:
            self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# ------------------------------------------------------------------- running
@dataclass
class Runner:
    """Runs `unionwh run` in this process with the environment of one landing zone and warehouse."""

    monkeypatch: pytest.MonkeyPatch
    capfd: pytest.CaptureFixture[str]
    api_url: str

    def __call__(self, landing: Path, url: str, work: Path, *args: str) -> tuple[int, str]:
        from flows.cli import main

        work.mkdir(parents=True, exist_ok=True)
        for name, value in {
            "UNIONWH_LANDING": str(landing),
            "UNIONWH_WAREHOUSE": url,
            "UNIONWH_OUTPUT": str(work / "runs"),
            "UNIONWH_HOME": str(work),
            "UNIONWH_PII_KEY": KEY,
            "UNIONWH_REPORT_YEAR": "2021",
            "UNIONWH_MEMBERS_URL": f"sqlite:///{landing / 'members.sqlite'}",
            "PREFECT_API_URL": self.api_url,
        }.items():
            self.monkeypatch.setenv(name, value)
        _console_handlers_to_current_stderr()
        self.capfd.readouterr()
        try:
            rc = main(["run", "--year", "2021", *args])
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
        except Exception as exc:  # noqa: BLE001 - a crash is an outcome of the case, reported with it
            rc = -1
            print(f"CRASH {type(exc).__name__}: {exc}")
        out = self.capfd.readouterr()
        console = out.out + out.err
        (work / "console.txt").write_text(console, encoding="utf-8")
        return rc, console


def _console_handlers_to_current_stderr() -> None:
    """Logging is configured once per process (Prefect's console handler, ``basicConfig`` in
    the CLI) and keeps the stderr of the test that ran first; pytest closes that capture when
    the test ends. Point every console handler at this test's stderr before a run."""
    import logging
    import sys

    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler or hasattr(handler, "console"):
                handler.stream = sys.stderr  # not setStream: it flushes the closed one
                if hasattr(handler, "console"):
                    handler.console.file = sys.stderr


@pytest.fixture(scope="module")
def baseline_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo landing zone (its members database compacted: it is copied per case)."""
    root = small_landing(tmp_path_factory.mktemp("hostile-baseline") / "landing")
    con = sqlite3.connect(root / "members.sqlite")
    con.execute("VACUUM")
    con.close()
    return root


def _logging_state() -> list[tuple[object, list[tuple[object, object, object]]]]:
    """Every logger's handlers with the stream (and Rich console file) each writes to."""
    import logging

    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    return [
        (
            lg,
            [
                (h, getattr(h, "stream", None), getattr(getattr(h, "console", None), "file", None))
                for h in lg.handlers
            ],
        )
        for lg in loggers
    ]


def _restore_logging(state: list[tuple[object, list[tuple[object, object, object]]]]) -> None:
    """Undo what this module's in-process runs did to logging: handlers they added (the CLI's
    ``basicConfig``) go, and those re-pointed at a test's stderr write where they wrote before.
    Left as they were, they would write to a capture pytest has closed, and every later test
    that logs (Prefect's console handler) would fail with a RecursionError."""
    import logging

    known = {id(lg): handlers for lg, handlers in state}
    for lg in [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]:
        before = known.get(id(lg), [])
        keep = {id(h) for h, _, _ in before}
        for h in list(lg.handlers):
            if id(h) not in keep:
                lg.removeHandler(h)
        for h, stream, file in before:
            if stream is not None:
                h.stream = stream  # type: ignore[attr-defined]
            if file is not None:
                h.console.file = file  # type: ignore[attr-defined]


@pytest.fixture
def runner(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Iterator[Runner]:
    from prefect.settings import PREFECT_API_URL

    state = _logging_state()
    try:
        yield Runner(monkeypatch, capfd, str(PREFECT_API_URL.value()))
    finally:
        _restore_logging(state)


# ------------------------------------------------------------------- checking
def _ledger(conn: sa.Connection, run_id: str) -> list[tuple]:
    return [
        tuple(r)
        for r in conn.exec_driver_sql(
            "SELECT file_name, table_name, status, error_rule, rows_read, rows_loaded, rows_quarantined "
            f"FROM ops.load_ledger WHERE run_id = '{run_id}' ORDER BY file_name, table_name"
        )
    ]


def _quarantine(conn: sa.Connection, run_id: str) -> list[tuple]:
    return sorted(
        tuple(r)
        for r in conn.exec_driver_sql(
            "SELECT q.file_name, q.table_name, q.row_number, q.rules FROM ops.quarantine q "
            f"JOIN ops.load_ledger l ON q.load_id = l.load_id WHERE l.run_id = '{run_id}'"
        )
    )


def _latest_run(conn: sa.Connection) -> str:
    return str(conn.exec_driver_sql("SELECT run_id FROM ops.runs ORDER BY started_at DESC LIMIT 1").scalar())


def _ops_text(conn: sa.Connection) -> str:
    """Every ops table as text, ``ops.quarantine.original_values`` left out (it keeps the
    rejected row's values on purpose)."""
    tables = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ops'"
        )
    ]
    parts = []
    for t in sorted(tables):
        cols = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ops' "
                f"AND table_name = '{t}'"
            )
            if not (t == "quarantine" and r[0] == "original_values")
        ]
        if cols:
            parts += [str(tuple(r)) for r in conn.exec_driver_sql(f"SELECT {', '.join(cols)} FROM ops.{t}")]
    return "\n".join(parts)


def _forms(token: str) -> list[bytes]:
    """A personal value as it could appear in a file: UTF-8, JSON-escaped, HTML-escaped."""
    return list(
        {
            token.encode("utf-8"),
            json.dumps(token).strip('"').encode("ascii"),
            "".join(f"&#{ord(c)};" if ord(c) > 127 else c for c in token).encode("ascii"),
            "".join(f"&#x{ord(c):x};" if ord(c) > 127 else c for c in token).encode("ascii"),
        }
    )


def leaks(tokens: list[str], console: str, ops: str, folder: Path) -> list[str]:
    """Where a personal value of the case shows up (empty: nowhere)."""
    found = []
    for token in tokens:
        if token in console:
            found.append(f"console has {token[:1]}…")
        if token in ops:
            found.append(f"ops tables have {token[:1]}…")
        forms = _forms(token)
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(f in data for f in forms):
                    found.append(f"{path.relative_to(folder)} has {token[:1]}…")
    return sorted(set(found))


def _raw_rows_of(conn: sa.Connection, source: str, file: str) -> int:
    return sum(
        int(
            conn.exec_driver_sql(
                f"SELECT count(*) FROM raw.{t.raw_table} WHERE _file_name = '{file}'"
            ).scalar()
            or 0
        )
        for t in TABLES
        if t.source == source
    )


def expected_exit(entries: list[Entry]) -> int:
    return 1 if any(e.status == "rejected" for e in entries) else 0


def check_run(
    case: Case,
    ctx: corpus.Ctx,
    expected: list[Entry],
    rc: int,
    console: str,
    url: str,
    base_prints: dict[str, dict],
    work: Path,
) -> tuple[list[str], tuple]:
    """Problems of one case's run (empty: as the contract says) and its comparable outcome."""
    problems: list[str] = []
    want_rc = expected_exit(expected)
    if rc != want_rc:
        said = [line for line in console.splitlines() if "rejected" in line or "error" in line]
        tail = " | ".join(said)[:400]
        problems.append(f"exit {rc}, expected {want_rc} ({tail})")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            run_id = _latest_run(conn)
            ledger = _ledger(conn, run_id)
            quarantine = _quarantine(conn, run_id)
            ops = _ops_text(conn)
            got = {(f.rstrip("/"), t, s, r) for f, t, s, r, *_ in ledger}
            want = {(e.file, e.table, e.status, e.rule) for e in expected}
            if got != want:
                problems.append(f"ledger {sorted(got - want)} where the contract says {sorted(want - got)}")
            for e in expected:
                rows = [q for q in quarantine if q[0] == e.file and q[1] == e.table]
                if e.status != "loaded" or (e.file, e.table, e.status, e.rule) not in got:
                    continue
                if len(rows) != sum(n for _, n in e.quarantined):
                    problems.append(
                        f"{e.table}: {len(rows)} rows quarantined "
                        f"({sorted({q[3] for q in rows})}), expected {dict(e.quarantined) or 0}"
                    )
                for rule, n in e.quarantined:
                    hit = sum(1 for q in rows if rule in q[3].split(";"))
                    if hit != n:
                        problems.append(f"{e.table}: {hit} rows under {rule}, expected {n}")
            for file, kind in ctx.files.items():
                mine = [r for r in ledger if r[0] == file]
                if any(r[2] == "rejected" for r in mine):
                    if sum(r[5] + r[6] for r in mine) or _raw_rows_of(conn, file.split("/")[0], file):
                        problems.append(f"{file} rejected but rows of it loaded")
                elif mine:
                    lines = corpus.physical_lines(ctx.root / file, kind)
                    accounted = sum(r[5] + r[6] for r in mine)
                    if lines != accounted:
                        problems.append(
                            f"{file}: {lines} physical data lines, {accounted} loaded + quarantined"
                        )
            for table, n in ctx.members.items():
                mine = [r for r in ledger if r[0] == f"members/{table}"]
                if sum(r[5] + r[6] for r in mine) != n:
                    problems.append(
                        f"members/{table}: {n} changed rows, "
                        f"{sum(r[5] + r[6] for r in mine)} loaded + quarantined"
                    )
        for source in sorted(set(SOURCES) - ctx.sources):
            if refresh.fingerprints(engine, (source,)) != base_prints[source]:
                problems.append(f"untouched source {source} changed in the warehouse")
    finally:
        engine.dispose()
    found = leaks(ctx.pii, console, ops, work / "runs")
    if found:
        problems.append(f"personal data: {', '.join(found[:6])}")
    outcome = (
        rc,
        tuple((f.rstrip("/"), t, s, r, a, b, c) for f, t, s, r, a, b, c in ledger),
        tuple(quarantine),
    )
    return problems, outcome


def check_again(url: str, rc: int) -> list[str]:
    """The second run of the future-member case: member 7's later, valid change was pulled."""
    problems = [] if rc == 0 else [f"second run exit {rc}, expected 0"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            got = conn.execute(
                sa.text(
                    "SELECT count(*) FROM raw.members__member WHERE member_id = 7 AND "
                    "updated_at >= :lo AND updated_at < :hi"
                ),
                {"lo": datetime(2021, 12, 20), "hi": datetime(2021, 12, 21)},
            ).scalar()
    finally:
        engine.dispose()
    if not got:
        problems.append("second run did not pull member 7's change of 2021-12-20 (watermark moved to 2099?)")
    return problems


# ------------------------------------------------------------------ the corpus
def run_corpus(wh: DuckWarehouse | PgWarehouse, run: Runner, baseline: Path, work: Path) -> dict:
    """Template, every case, the combined run; returns the figures for the artifact and the
    failure lines (one per failing case)."""
    started = time.monotonic()
    rc, console = run(baseline, wh.template_url(), work / "template")
    assert rc == 0, f"baseline run on {wh.kind} failed:\n{console[-3000:]}"
    wh.seal()
    engine = sa.create_engine(wh.template_url())
    try:
        base_prints = {s: refresh.fingerprints(engine, (s,)) for s in SOURCES}
        base_figures = figures_table(engine)
    finally:
        engine.dispose()
    template_seconds = time.monotonic() - started

    failures: dict[str, str] = {}
    outcomes: dict[str, tuple] = {}
    case_seconds: dict[str, float] = {}
    for index, case in enumerate(CASES):
        if ONLY and case.name not in ONLY:
            continue
        t0 = time.monotonic()
        folder = work / "cases" / case.name
        root = folder / "landing"
        shutil.copytree(baseline, root, symlinks=True)
        try:
            ctx, expected = corpus.build(case, root, folder / "outside", index)
        except Exception as exc:  # noqa: BLE001 - a builder bug is a failure of the corpus, not of the case's rules
            failures[case.name] = f"builder failed: {type(exc).__name__}: {exc}"
            continue
        url = wh.fresh(case.name, folder)
        rc, console = run(root, url, folder, "--load-only")
        problems, outcome = check_run(case, ctx, expected, rc, console, url, base_prints, folder)
        if case.again is not None:
            case.again(ctx)
            rc2, _ = run(root, url, folder / "again", "--load-only")
            problems += check_again(url, rc2)
        outcomes[case.name] = outcome
        if problems:
            failures[case.name] = "; ".join(problems)
        wh.drop(url)
        shutil.rmtree(root, ignore_errors=True)
        case_seconds[case.name] = round(time.monotonic() - t0, 1)
    cases_seconds = time.monotonic() - started - template_seconds

    # every case at once, one full run (dbt): the figures must not move
    t0 = time.monotonic()
    root = work / "combined" / "landing"
    shutil.copytree(baseline, root, symlinks=True)
    for index, case in enumerate(CASES):
        if not case.solo and (not ONLY or case.name in ONLY):
            ctx, _ = corpus.build(case, root, work / "combined" / "outside", index)
            if case.again is not None:
                case.again(ctx)
    url = wh.fresh("combined", work / "combined")
    rc, console = run(root, url, work / "combined")
    combined: list[str] = []
    if rc != 1:
        combined.append(f"combined run exit {rc}, expected 1 (some files are rejected): {console[-800:]}")
    engine = sa.create_engine(url)
    try:
        figures = figures_table(engine)
    except Exception as exc:  # noqa: BLE001 - a boundary: any error becomes a line, not a crash
        figures = f"no figures: {type(exc).__name__}: {exc}"
    finally:
        engine.dispose()
    if figures != base_figures:
        changed = sorted(set(figures.splitlines()) ^ set(base_figures.splitlines()))
        combined.append(f"figures table differs from the baseline's: {changed[:8]}")
    wh.drop(url)
    OUTCOMES[wh.kind] = outcomes
    return {
        "template_seconds": round(template_seconds, 1),
        "cases_seconds": round(cases_seconds, 1),
        "combined_seconds": round(time.monotonic() - t0, 1),
        "case_seconds": case_seconds,
        "failures": failures,
        "combined_problems": combined,
    }


def record(kind: str, result: dict) -> None:
    """test-artifacts/hostile-corpus.json: the corpus's size and classes, seconds and failing
    cases per warehouse (both warehouse tests add their part)."""
    path = ARTIFACTS / "hostile-corpus.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(cases=len(CASES), per_class=corpus.counts_by_class(), solo=[c.name for c in CASES if c.solo])
    data.setdefault("warehouses", {})[kind] = {
        **{k: v for k, v in result.items() if k != "case_seconds"},
        "ran": len(result["case_seconds"])
        + sum(1 for f in result["failures"].values() if f.startswith("builder")),
        "passed": len(result["case_seconds"])
        - sum(1 for n in result["failures"] if n in result["case_seconds"]),
        "passed_per_class": {
            k: sum(
                1
                for c in CASES
                if c.klass == k and c.name in result["case_seconds"] and c.name not in result["failures"]
            )
            for k in corpus.counts_by_class()
        },
        "slowest_cases": sorted(result["case_seconds"].items(), key=lambda kv: -kv[1])[:5],
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def verdict(kind: str, result: dict) -> None:
    lines = [
        f"{name} [{next(c.klass for c in CASES if c.name == name)}] ({kind}): {text}"
        for name, text in result["failures"].items()
    ]
    lines += [f"combined run ({kind}): {text}" for text in result["combined_problems"]]
    head = f"{len(result['failures'])} of {len(CASES)} hostile cases fail on {kind}:\n"
    assert not lines, head + "\n".join(lines)


# ------------------------------------------------------------------------ tests
def test_corpus_is_big_and_covers_every_class() -> None:
    classes = corpus.counts_by_class()
    assert len(CASES) >= 60, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES)
    assert set(classes) == {
        "future_members",
        "control_characters",
        "header_lost",
        "formula_text",
        "symlinks",
        "unbalanced_quotes",
        "wrong_structure",
        "unknown_entries",
        "json_types",
        "other",
    }
    assert all(n >= 3 for n in classes.values()), classes


def test_hostile_corpus_duckdb(runner: Runner, baseline_landing: Path, tmp_path: Path) -> None:
    wh = DuckWarehouse(tmp_path)
    result = run_corpus(wh, runner, baseline_landing, tmp_path)
    record("duckdb", result)
    verdict("duckdb", result)


@pytest.mark.postgres
def test_hostile_corpus_postgres_same_as_duckdb(
    runner: Runner, baseline_landing: Path, tmp_path: Path
) -> None:
    from tests.support import postgres_or_skip

    server = postgres_or_skip()
    # Run without the DuckDB test before it in this process (-k, another order): the DuckDB outcomes
    # it is compared with are made here, so that the comparison is never silently left out.
    if "duckdb" not in OUTCOMES:
        run_corpus(DuckWarehouse(tmp_path / "duckdb"), runner, baseline_landing, tmp_path / "duckdb")
    wh = PgWarehouse(server, str(os.getpid()))
    try:
        result = run_corpus(wh, runner, baseline_landing, tmp_path)
    finally:
        wh.close()
    duck = OUTCOMES["duckdb"]
    differ = {}
    for name, outcome in OUTCOMES["postgres"].items():
        if name in duck and duck[name] != outcome:
            differ[name] = f"DuckDB {duck[name][:2]} / PostgreSQL {outcome[:2]}"
    result["differs_from_duckdb"] = differ
    record("postgres", result)
    for name, text in differ.items():
        said = result["failures"].get(name, "") + f"; warehouses differ: {text}"
        result["failures"][name] = said.lstrip("; ")
    verdict("postgres", result)
