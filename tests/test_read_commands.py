"""The read commands (figures, quality, audit, report, status) read and create nothing.

A missing DuckDB file, a PostgreSQL server not listening, a database that does not exist or
a refused login: one line on stderr, exit 2, nothing made (no file, folder or ``.wal`` beside
it; no schema on PostgreSQL). A year without data is refused before a workbook is written.
``status`` summarises; ``figures --format csv`` starts with a UTF-8 BOM.

No pipeline run: the warehouse with data is the smallest one the commands read, made by
``init_warehouse`` and a few inserted rows (marts shaped like dbt's). The sweep calls
``flows.cli.main`` in-process (a second each would be minutes as subprocesses); a few cases
run the real ``python -m flows.cli`` to prove the entry point and the bytes on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.report.format import figures_csv, figures_json, figures_table
from flows.report.status import changes_summary, dbt_text, one_line
from flows.warehouse.figures import Figure
from flows.warehouse.runlog import FigureChange
from tests.support import clean_env, postgres_or_skip, throwaway_postgres

READ_COMMANDS: list[list[str]] = [
    ["figures"],
    ["figures", "--format", "csv"],
    ["figures", "--as-known-on", "2022-02-19"],
    ["quality"],
    ["audit"],
    ["report"],
    ["report", "publish"],
    ["report", "diff"],
    ["status"],
]
IDS = [" ".join(c) for c in READ_COMMANDS]


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with its content hash: what a command may not change."""
    return {
        str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as cwd and UNIONWH_HOME, no other UNIONWH_* setting."""
    for name in [n for n in os.environ if n.startswith("UNIONWH_")]:
        monkeypatch.delenv(name)
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("UNIONWH_HOME", str(folder))
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc: int, err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("unionwh: error: "), err
    assert rc == 2, err
    return lines[0]


# ------------------------------------------------------------------ nothing there
@pytest.mark.unit
@pytest.mark.parametrize("argv", READ_COMMANDS, ids=IDS)
def test_a_missing_duckdb_warehouse_is_one_line_and_never_created(
    argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UNIONWH_WAREHOUSE", "duckdb:///data/warehouse.duckdb")
    rc, out, err = run(argv, capsys)
    line = one_error_line(rc, err)
    assert f"no DuckDB warehouse at {home / 'data' / 'warehouse.duckdb'}" in line
    assert "run `unionwh run` first" in line and "--warehouse" in line
    assert out == ""
    assert tree(home) == {}  # no data/, no warehouse.duckdb, no .wal


@pytest.mark.unit
@pytest.mark.parametrize("argv", READ_COMMANDS, ids=IDS)
def test_a_postgres_port_nobody_listens_on_is_one_line(
    argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UNIONWH_WAREHOUSE", "postgresql://postgres@127.0.0.1:1/unionwh")
    rc, _, err = run(argv, capsys)
    assert "cannot reach the warehouse at 127.0.0.1:1" in one_error_line(rc, err)
    assert tree(home) == {}


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=IDS)
def test_a_postgres_database_that_does_not_exist_is_one_line(
    argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = postgres_or_skip()
    monkeypatch.setenv("UNIONWH_WAREHOUSE", f"{server}/unionwh_no_such_database")
    rc, _, err = run(argv, capsys)
    assert "has no database 'unionwh_no_such_database'" in one_error_line(rc, err)
    assert tree(home) == {}


def test_a_refused_postgres_login_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = postgres_or_skip()
    host = server.split("@", 1)[1]
    monkeypatch.setenv("UNIONWH_WAREHOUSE", f"postgresql+psycopg://unionwh_no_such_role@{host}/test")
    for argv in (["status"], ["figures"]):
        rc, _, err = run(argv, capsys)
        assert "refused the login of user unionwh_no_such_role" in one_error_line(rc, err)
    assert tree(home) == {}


def test_status_on_an_empty_postgres_database_creates_no_schema(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` used to create (migrate) the warehouse's schemas; a read command never does."""
    with throwaway_postgres("unionwh_ro") as url:
        monkeypatch.setenv("UNIONWH_WAREHOUSE", url)
        rc, _, err = run(["status"], capsys)
        assert "is not a unionwh warehouse, or no run has written to it yet" in one_error_line(rc, err)
        rc, _, err = run(["figures"], capsys)
        assert "has no figures mart" in one_error_line(rc, err)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                schemas = (
                    conn.execute(sa.text("SELECT schema_name FROM information_schema.schemata"))
                    .scalars()
                    .all()
                )
        finally:
            engine.dispose()
    assert not {"ops", "raw", "marts"} & set(schemas)
    assert tree(home) == {}


def test_the_real_cli_on_a_missing_warehouse(tmp_path: Path) -> None:
    """The entry point itself (``python -m flows.cli``): one line, exit 2, nothing created."""
    env = dict(clean_env(), UNIONWH_HOME=str(tmp_path), UNIONWH_WAREHOUSE="duckdb:///data/warehouse.duckdb")
    for argv, needle in (
        (["status"], "no DuckDB warehouse at"),
        (
            ["report", "--warehouse", "postgresql://postgres@127.0.0.1:1/x"],
            "cannot reach the warehouse at 127.0.0.1:1",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert one_error_line(done.returncode, done.stderr).find(needle) > 0, done.stderr
        assert done.stdout == ""
    assert tree(tmp_path) == {}


# ------------------------------------------------------------------ a small warehouse
YEARS = range(2011, 2022)
FIGURES = [
    ("org.union_units_total", "家", "工会单位总数", "union units"),
    ("funds.project_subsidy_yuan", "元", "项目补助金额", "project subsidies"),
    ("members.cards_issued_or_renewed", "张", "发卡或换卡", "cards issued or renewed"),
]
NEWEST = "20220301T020000-bbbbbb"
MESSAGE = "dbt build failed:\n  model marts.fig_annual_figures\n\n\terror " + "x" * 400


def small_warehouse(folder: Path) -> Path:
    """The tables the read commands read, with a few rows: the run ledger (two runs, the newest
    changed 462 figure-years), the figures mart for 2011–2021 and the audit marts for 2021."""
    from flows.settings import load_settings
    from flows.warehouse.engine import init_warehouse, warehouse_engine

    path = folder / "warehouse.duckdb"
    engine = warehouse_engine(load_settings(warehouse=f"duckdb:///{path}"))
    try:
        init_warehouse(engine)
        with engine.begin() as conn:
            x = conn.exec_driver_sql
            x("CREATE SCHEMA marts")
            x(
                "CREATE TABLE marts.fig_annual_figures (figure_id VARCHAR, report_year INTEGER, value DECIMAL(24, 6), "
                "unit VARCHAR, label_zh VARCHAR, label_en VARCHAR, definition VARCHAR, source_rows BIGINT, "
                "models_read VARCHAR, sort_order INTEGER)"
            )
            for year in YEARS:
                for i, (fid, unit, zh, en) in enumerate(FIGURES):
                    x(
                        "INSERT INTO marts.fig_annual_figures VALUES (?, ?, ?, ?, ?, ?, '', 1, '', ?)",
                        (fid, year, Decimal(year - 2000 + i), unit, zh, en, i),
                    )
            x(
                "CREATE TABLE marts.audit_exceptions (exception_id VARCHAR, rule VARCHAR, project_code VARCHAR, "
                "reference VARCHAR, event_date DATE, amount_yuan DECIMAL(18, 2), reason_zh VARCHAR, reason_en VARCHAR, "
                "source_file VARCHAR, source_row BIGINT, report_year INTEGER)"
            )
            x(
                "INSERT INTO marts.audit_exceptions VALUES ('e1', 'budget_overrun', 'XMBZ', 'XMBZ:2021', "
                "DATE '2021-12-31', 12.5, '超预算', 'over budget', 'budget.csv', 2, 2021)"
            )
            x(
                "CREATE TABLE marts.audit_reconciliation (project_code VARCHAR, ledger_total_yuan DECIMAL(18, 2), "
                "ledger_rows BIGINT, postings_yuan DECIMAL(18, 2), posting_lines BIGINT, "
                "difference_yuan DECIMAL(18, 2), is_gap BOOLEAN, report_year INTEGER)"
            )
            x(
                "CREATE TABLE marts.audit_budget_vs_actual (project_code VARCHAR, report_month INTEGER, "
                "project_name VARCHAR, budget_yuan DECIMAL(18, 2), actual_yuan DECIMAL(18, 2), "
                "actual_to_date_yuan DECIMAL(18, 2), remaining_yuan DECIMAL(18, 2), is_over_budget BOOLEAN, "
                "report_year INTEGER)"
            )
            x(
                "INSERT INTO marts.audit_budget_vs_actual VALUES ('XMBZ', 12, '项目补助', 100, 112.5, 112.5, -12.5, "
                "true, 2021)"
            )
            start = datetime(2022, 3, 1, 2, 0)
            x(
                "INSERT INTO ops.runs (run_id, started_at, finished_at, status, message) VALUES (?, ?, ?, 'failed', ?)",
                (
                    "20220228T020000-aaaaaa",
                    start - timedelta(days=1),
                    start - timedelta(days=1, seconds=-40),
                    MESSAGE,
                ),
            )
            x(
                "INSERT INTO ops.runs (run_id, started_at, finished_at, status, files_loaded, files_rejected, "
                "files_unchanged, rows_read, rows_loaded, rows_quarantined, dbt_results, figures_changed) "
                "VALUES (?, ?, ?, 'succeeded', 95, 0, 1, 149833, 149813, 20, ?, 462)",
                (
                    NEWEST,
                    start,
                    start + timedelta(seconds=31),
                    json.dumps({"pass": 288, "success": 56, "warn": 2}, sort_keys=True),
                ),
            )
            changes = [
                (f"fig.number_{i:02d}", year, None, Decimal(0) if i % 2 else Decimal(i + 1))
                for year in YEARS
                for i in range(41)
            ]
            changes += [("fig.moved", 2021, Decimal(2), Decimal(3)), ("fig.gone", 2020, Decimal(5), None)]
            changes += [(f"fig.extra_{i}", 2021, None, Decimal(1)) for i in range(462 - len(changes))]
            for fid, year, old, new in changes:
                x(
                    "INSERT INTO ops.figure_changes VALUES (?, NULL, ?, ?, ?, ?)",
                    (NEWEST, fid, year, old, new),
                )
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    small_warehouse(folder)
    return folder


@pytest.fixture
def at_small(small: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """UNIONWH_WAREHOUSE is the small warehouse; outputs go to ``home``."""
    monkeypatch.setenv("UNIONWH_WAREHOUSE", f"duckdb:///{small / 'warehouse.duckdb'}")
    return small


@pytest.mark.unit
def test_read_commands_leave_the_warehouse_byte_for_byte_as_it_was(
    at_small: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB opened read-only: no .wal, no checkpoint, the file unchanged; no schema migrated."""
    before = tree(at_small)
    assert run(["status"], capsys)[0] == 0
    assert run(["figures", "--year", "2021"], capsys)[0] == 0
    rc, _, err = run(["quality"], capsys)  # no load in the ledger: refused in one line
    assert "no run 'latest' with loaded files" in one_error_line(rc, err)
    assert run(["audit", "--year", "2021", "--out", str(home / "audit.xlsx")], capsys)[0] == 0
    assert tree(at_small) == before
    assert set(tree(home)) == {"audit.xlsx"}


@pytest.mark.unit
@pytest.mark.parametrize(
    "argv",
    [["audit"], ["report"], ["report", "publish"], ["figures"], ["figures", "--as-known-on", "2022-02-19"]],
    ids=lambda a: " ".join(a),
)
def test_a_year_without_data_is_refused_and_nothing_is_written(
    argv: list[str], at_small: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2005: a year the settings accept but the warehouse has no data for (its years are
    2011–2021); 1999 is refused by the settings already. One line each, nothing written."""
    rc, out, err = run([*argv, "--year", "2005"], capsys)
    line = one_error_line(rc, err)
    assert "no data for 2005 in the warehouse: years with data are 2011–2021: choose one with --year" in line
    rc, out2, err = run([*argv, "--year", "1999"], capsys)
    one_error_line(rc, err)  # (its words are the settings')
    assert out == out2 == "" and tree(home) == {}  # no workbook, no report folder, no published folder


@pytest.mark.unit
def test_audit_of_a_year_with_figures_but_no_finance_data_is_refused(
    at_small: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty workbook would look like a clean audit; 2021 (positive control) is written."""
    rc, _, err = run(["audit", "--year", "2015"], capsys)
    assert "no finance data for 2015 in the warehouse" in one_error_line(rc, err)
    assert "years with finance data are 2021" in err
    assert tree(home) == {}
    rc, out, _ = run(["audit", "--year", "2021"], capsys)
    assert rc == 0 and "fund audit 2021: 1 exceptions" in out
    assert set(tree(home)) == {"data", "data/runs", "data/runs/audit-2021.xlsx"}


@pytest.mark.unit
def test_status_summarises_the_newest_runs_changes_and_keeps_lines_whole(
    at_small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(["status"], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run "))
    newest, older, message = lines[header + 1], lines[header + 2], lines[header + 3]
    assert newest.startswith(NEWEST) and newest.endswith("56 success, 288 pass, 2 warn")  # never cut
    assert lines[header].index("dbt") == newest.index("56 success")  # the column fits its widest cell
    assert older.startswith("20220228T020000-aaaaaa") and "failed" in older
    # the multi-line message: one line under its run, whitespace collapsed, cut with …
    assert message.startswith("  failed: dbt build failed: model marts.fig_annual_figures error xxx")
    assert message.endswith("…") and len(message) == len("  failed: ") + 200
    summary = next(i for i, line in enumerate(lines) if line.startswith("figures changed by"))
    assert lines[summary] == (
        f"figures changed by {NEWEST}: 462 (1 changed value, 460 new figure-years "
        "2011–2021, 220 of them 0, 1 gone); the first 10, old -> new:"
    )
    listed = lines[summary + 1 : summary + 11]
    assert listed[:3] == ["  2021 fig.moved: 2 -> 3", "  2020 fig.gone: 5 -> -", "  2021 fig.extra_0: - -> 1"]
    assert lines[summary + 11 :] == ["  … 452 more: `unionwh status --changes` lists them all"]

    rc, out, _ = run(["status", "--changes"], capsys)
    every = [line for line in out.splitlines() if line.startswith("  20")]
    assert rc == 0 and len(every) == 462 and "more:" not in out
    assert every == sorted(every, key=lambda line: int(line.split()[0]))  # year by year


def test_figures_csv_starts_with_a_utf8_bom_on_stdout(at_small: Path, tmp_path: Path) -> None:
    """The bytes on the real stdout, so Excel opens the Chinese labels as UTF-8."""
    env = dict(
        clean_env(),
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_WAREHOUSE=f"duckdb:///{at_small / 'warehouse.duckdb'}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "figures", "--year", "2021", "--format", "csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"\xef\xbb\xbfyear,id,value,unit,zh,en\n")
    rows = done.stdout.decode("utf-8-sig").splitlines()
    assert rows[1] == "2021,org.union_units_total,21,家,工会单位总数,union units" and len(rows) == 4


def test_a_reader_that_leaves_early_gets_no_traceback(at_small: Path, tmp_path: Path) -> None:
    """``unionwh status --changes | head -0``: the pipe closes under the writer; no error line."""
    env = dict(
        clean_env(),
        UNIONWH_HOME=str(tmp_path),
        UNIONWH_WAREHOUSE=f"duckdb:///{at_small / 'warehouse.duckdb'}",
    )
    with subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "status", "--changes"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader leaves before the first line (the process is still starting)
        err = proc.stderr.read().decode("utf-8")
        code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and err == "", err
    assert code in (0, 1)  # status's own code (1: the small warehouse's newest run failed)


@pytest.mark.unit
def test_as_known_on_is_stated_in_every_format() -> None:
    """The date in the table's title, a json field and a csv column (a comment line above the
    header would be a data row to Excel); without it the outputs are as before."""
    figs = [Figure("rights.consultations", Decimal(7), "件", "接待咨询", "consultations")]
    on = date(2022, 2, 19)
    assert (
        figures_table(2021, figs, as_known_on=on).splitlines()[0]
        == "Figures for 2021 as known on 2022-02-19 (1)"
    )
    assert json.loads(figures_json(2021, figs, as_known_on=on))["as_known_on"] == "2022-02-19"
    assert figures_csv(2021, figs, as_known_on=on).splitlines() == [
        "year,id,value,unit,zh,en,as_known_on",
        "2021,rights.consultations,7,件,接待咨询,consultations,2022-02-19",
    ]
    assert "as_known_on" not in json.loads(figures_json(2021, figs))
    assert figures_csv(2021, figs).splitlines()[0] == "year,id,value,unit,zh,en"
    assert figures_table(2021, figs).splitlines()[0] == "Figures for 2021 (1)"


@pytest.mark.unit
def test_status_text_helpers() -> None:
    assert (
        dbt_text({"warn": 2, "pass": 288, "success": 56, "zzz": 1}) == "56 success, 288 pass, 2 warn, 1 zzz"
    )
    assert dbt_text({}) == "-"
    assert one_line("a\n\n b\tc", 10) == "a b c"
    assert one_line("x" * 20, 10) == "x" * 9 + "…"
    assert changes_summary("r", []) == []
    few = [FigureChange("f", 2021, Decimal(1), Decimal(2))]
    assert changes_summary("r", few) == [
        "figures changed by r: 1 (1 changed value), old -> new:",
        "  2021 f: 1 -> 2",
    ]


@pytest.mark.unit
def test_a_command_run_in_process_leaves_the_environment_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main()`` resolves its options into the settings it hands down and never writes them to the
    environment: called in-process (a test, a notebook), the next call does not inherit them."""
    from flows.cli import main

    monkeypatch.delenv("UNIONWH_MEMBERS_URL", raising=False)
    monkeypatch.delenv("UNIONWH_LANDING", raising=False)
    monkeypatch.setenv("UNIONWH_WAREHOUSE", "duckdb:///kept.duckdb")
    monkeypatch.setenv("UNIONWH_HOME", str(tmp_path))
    assert main(["status", "--warehouse", f"duckdb:///{tmp_path / 'none.duckdb'}"]) == 2
    assert main(["run", "--landing", str(tmp_path / "none"), "--members-url", "sqlite:///none.sqlite"]) == 2
    capsys.readouterr()
    assert os.environ["UNIONWH_WAREHOUSE"] == "duckdb:///kept.duckdb"
    assert "UNIONWH_MEMBERS_URL" not in os.environ and "UNIONWH_LANDING" not in os.environ
