"""End to end on the embedded default: demo -> Prefect flow -> DuckDB -> dbt -> figures.

These are real runs: the demo generator writes files, the nightly-load flow runs under a
Prefect test harness, Great Expectations validates, DuckDB stores, dbt builds.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.demo.synth import Manifest
from flows.errors import ConfigError
from flows.nightly import RunSummary, nightly_load
from flows.settings import load_settings
from flows.warehouse import dbt
from flows.warehouse.dbt import node_results
from flows.warehouse.engine import warehouse_engine
from tests.support import (
    ARTIFACTS,
    ROOT,
    Demo2021,
    Env,
    chromium_or_skip,
    copy_demo,
    create_database,
    drop_database,
    postgres_or_skip,
)
from tests.warehouse.pipeline_support import CASES_HEADER, row_differences, warehouse_rows, write_delivery_csv

pytestmark = pytest.mark.e2e

COUNTED = ("raw", "ops")


@dataclass
class DemoRun:
    home: Path
    env: dict[str, str]
    first: RunSummary
    manifest: Manifest

    def engine(self) -> sa.Engine:
        with Env(**self.env):
            return warehouse_engine(load_settings())

    def run(self) -> RunSummary:
        with Env(**self.env):
            return nightly_load()

    def query(self, sql: str) -> list[sa.Row]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                return list(conn.execute(sa.text(sql)).all())
        finally:
            eng.dispose()

    def figures(self) -> dict[str, Decimal]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                rows = conn.execute(
                    sa.text("select figure_id, value from marts.fig_annual_figures where report_year = 2021")
                ).all()
        finally:
            eng.dispose()
        return {r[0]: Decimal(str(r[1])) for r in rows}

    def row_counts(self) -> dict[str, int]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                names = (
                    conn.execute(
                        sa.text(
                            "select table_schema || '.' || table_name from information_schema.tables "
                            "where table_schema in ('raw', 'ops') and table_name not in "
                            "('runs', 'run_sources', 'figure_values', 'figure_changes', 'dbt_builds', 'dbt_node_results')"
                        )
                    )
                    .scalars()
                    .all()
                )
                return {
                    n: int(conn.execute(sa.text(f"select count(*) from {n}")).scalar_one()) for n in names
                }
        finally:
            eng.dispose()

    def contents(self, between_runs: bool = True) -> dict[str, Counter[str]]:
        """Every raw table's rows, the quarantine's rows and the ledger's counts per file of every
        source (tests/warehouse/pipeline_support.py ``warehouse_rows``: ``between_runs`` leaves out
        run and load ids, load times and how a members pull was paged)."""
        eng = self.engine()
        try:
            return warehouse_rows(eng, between_runs=between_runs)
        finally:
            eng.dispose()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_2021: Demo2021) -> Iterator[DemoRun]:
    """The session's demo run, copied once for the tests here that leave its warehouse, landing zone,
    key and run folders as they are (they write reports, other warehouses and their runs beside
    them); a test that changes them works on its own copy (``own_demo``, ``corrected``), so that no
    test depends on what another did before it."""
    mine = copy_demo(demo_2021, tmp_path_factory.mktemp("demo"))
    yield DemoRun(mine.home, mine.env, mine.first, mine.manifest)


@pytest.fixture
def own_demo(tmp_path: Path, demo_2021: Demo2021) -> DemoRun:
    """A copy of the session's demo run for one test that changes it (a run, a delivery, a key)."""
    mine = copy_demo(demo_2021, tmp_path / "demo")
    return DemoRun(mine.home, mine.env, mine.first, mine.manifest)


def test_every_figure_lands_in_its_seed_range(demo: DemoRun, figure_catalogue: list[dict]) -> None:
    got = {f.id: Decimal(str(f.value)) for f in demo.first.figures}
    assert set(got) == {f["id"] for f in figure_catalogue}
    assert len(got) == 42
    outside = {
        f["id"]: (str(got[f["id"]]), f["seed_range"])
        for f in figure_catalogue
        if not Decimal(str(f["seed_range"][0])) <= got[f["id"]] <= Decimal(str(f["seed_range"][1]))
    }
    assert outside == {}
    assert demo.first.status == "succeeded"


SEED = ROOT / "tests" / "report" / "seed-2021-annual-summary.zh.txt"
NUMBERING = re.compile(r"^\s*(?:\d+、|（\d+）|[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）)\s*")


def seed_sentences_with_figures(figure_catalogue: list[dict]) -> list[str]:
    """The seed's sentences (split at 。 and ；) that carry a figure: a digit, or a phrase of the
    catalogue written without one (十余场, 两期, 近百万元). Headings' own numbering is not a figure."""
    wordy = [f["seed"] for f in figure_catalogue if not re.search(r"\d", f["seed"])]
    out = []
    for line in SEED.read_text(encoding="utf-8").splitlines():
        for sentence in re.split(r"[。；]", NUMBERING.sub("", line)):
            if re.search(r"\d", sentence) or any(w in sentence for w in wordy):
                # figures.yaml reads the seed's self-contradictory 近70余万元 as 余 (docs/contract-readings.md)
                out.append(sentence.strip().replace("近70余万元", "70余万元"))
    return out


@pytest.fixture(scope="module")
def summary(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`unionwh report` on the 2021 demo, before any correction."""
    out = tmp_path_factory.mktemp("summary")
    with Env(**demo.env):
        assert main(["report", "--year", "2021", "--out", str(out)]) == 0
    return out


def test_summary_markdown_carries_every_seed_sentence_with_its_figure_text(
    summary: Path, figure_catalogue: list[dict]
) -> None:
    text = (summary / "summary-2021.md").read_text(encoding="utf-8")
    sentences = seed_sentences_with_figures(figure_catalogue)
    assert len(sentences) >= 25
    assert [s for s in sentences if s not in text] == []
    assert "349.88万余元" in text and "近百万元" in text and "十余场" in text  # the phrasing, not digits
    assert "维权金额{" not in text and "{year}" not in text


def test_summary_docx_and_json_trace_every_figure(summary: Path, demo: DemoRun) -> None:
    from docx import Document

    doc = Document(str(summary / "summary-2021.docx"))
    body = "\n".join(p.text for p in doc.paragraphs)
    assert "总工会全年累计接待咨询1131件" in body
    assert doc.paragraphs[0].text == "天津港保税区总工会2021年工作总结"
    bold = {r.text for p in doc.paragraphs for r in p.runs if r.bold}
    assert {"1131", "349.88万余", "近百万", "两"} <= bold
    assert len(doc.tables[0].rows) == 43  # header + 42 figures
    data = json.loads((summary / "figures-2021.json").read_text(encoding="utf-8"))
    by_id = {f["id"]: f for f in data["figures"]}
    assert by_id["rights.consultations"]["source_rows"] == by_id["rights.consultations"]["value"]
    assert by_id["rights.consultations"]["expectation_suites"] == ["rights.cases"]
    assert (
        by_id["rights.consultations"]["dbt_tests"]["passed"]
        == by_id["rights.consultations"]["dbt_tests"]["total"]
        > 5
    )
    assert by_id["funds.project_subsidy_yuan"]["audit"].startswith("XMBZ")
    assert data["run_id"] == demo.first.run_id


def test_summary_html_in_headless_chromium(summary: Path, figure_catalogue: list[dict]) -> None:
    """The HTML file opened offline in Debian's chromium: every figure is a link to an appendix
    entry that exists, the charts are drawn, and a screenshot is kept in test-artifacts/."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    browser, driver_path = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get((summary / "summary-2021.html").as_uri())
        assert driver.title == "天津港保税区总工会2021年工作总结"
        links = driver.find_elements(By.CSS_SELECTOR, "article a.figure")
        assert sorted({a.get_attribute("data-figure") for a in links}) == sorted(
            f["id"] for f in figure_catalogue
        )
        for a in links:
            target = driver.find_element(By.ID, a.get_attribute("href").split("#", 1)[1])
            assert a.get_attribute("data-figure") in target.text
        text = driver.find_element(By.ID, "summary").text
        assert "维权金额349.88万余元" in text and "接待咨询1131件" in text
        for chart in ("chart-zones", "chart-welfare", "chart-budget"):
            bars = driver.find_elements(By.CSS_SELECTOR, f"#{chart} rect.bar")
            assert bars and all(b.size["width"] > 0 for b in bars), chart
        months = driver.find_elements(By.CSS_SELECTOR, "#chart-months svg.chart")
        assert len(months) >= 15
        assert (
            driver.execute_script(
                "return [...document.querySelectorAll('#chart-months rect.bar')]"
                ".filter(r => r.getBoundingClientRect().height > 0).length"
            )
            > 100
        )
        consult = next(a for a in links if a.get_attribute("data-figure") == "rights.consultations")
        driver.execute_script("arguments[0].scrollIntoView()", consult)
        consult.click()
        assert driver.execute_script("return location.hash") == "#fig-rights-consultations"
        entry = driver.find_element(By.ID, "fig-rights-consultations")
        assert entry.find_element(By.CSS_SELECTOR, ".source-rows").text == "1,131"
        assert "rights.cases" in entry.text and "stg_rights__cases" in entry.text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0)")
        shot = ARTIFACTS / "summary-2021.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    finally:
        driver.quit()


def test_bare_benchmark_baseline_builds_the_same_models(demo: DemoRun, tmp_path: Path) -> None:
    """The performance baseline (flows.bench.baseline) runs the build's compiled SQL on the same
    files: all 42 figures, equal to the pipeline's except where a quarantined row would count."""
    from flows.bench.baseline import run

    got = run(
        demo.home / "landing", tmp_path / "warehouse.duckdb", demo.first.run_dir / "dbt" / "manifest.json"
    )
    pipeline = {f.id: Decimal(str(f.value)) for f in demo.first.figures}
    baseline = {k: Decimal(v) for k, v in got["figures"].items()}
    assert set(baseline) == set(pipeline)
    assert [s["stage"] for s in got["stages"]] == ["read", "load", "transform"]
    same = {k for k in pipeline if pipeline[k] == baseline[k]}
    assert {
        "rights.disputes_mediated",
        "rights.amount_recovered_yuan",
        "funds.project_subsidy_yuan",
        "welfare.festival_condolence",
        "training.online_views",
    } <= same and len(same) >= 25


def test_native_benchmark_script_gives_the_pipelines_42_figures(demo: DemoRun, tmp_path: Path) -> None:
    """The native baseline (flows.bench.native), one source at a time: every figure equals the
    pipeline's (it drops the rows the pipeline quarantines), its stages summed over the sources."""
    from flows.bench.native import run

    warehouse = tmp_path / Path(demo.env["UNIONWH_WAREHOUSE"].rpartition("/")[2]).name  # same catalog name
    got = run(demo.home / "landing", warehouse, demo.first.run_dir / "dbt" / "manifest.json")
    assert got["figures"] == {f.id: str(Decimal(str(f.value))) for f in demo.first.figures}
    stages = {s["stage"]: s for s in got["stages"]}
    assert list(stages) == ["read", "flags", "load", "sql"]
    assert stages["read"]["rows"] == stages["flags"]["dropped"] + stages["load"]["rows"]
    assert stages["flags"]["dropped"] == sum(got["dropped"].values()) >= 20


@pytest.mark.postgres
def test_postgres_warehouse_gives_the_same_42_figures(demo: DemoRun) -> None:
    """The same landing zone into a fresh PostgreSQL database: every figure equals DuckDB's."""
    server = postgres_or_skip()
    name = f"unionwh_e2e_{secrets.token_hex(4)}"
    create_database(server, name)
    try:
        env = {
            **demo.env,
            "UNIONWH_WAREHOUSE": f"{server}/{name}",
            "UNIONWH_OUTPUT": str(demo.home / "pg-runs"),
        }
        with Env(**env, UNIONWH_PII_KEY=""), pytest.raises(ConfigError, match="needs a pseudonymisation key"):
            nightly_load(year=2021)  # a shared warehouse never gets an improvised key
        # the embedded run's key, so that pseudonyms match across the two warehouses
        key = (demo.home / "pii.key").read_text(encoding="ascii").strip()
        with Env(**env, UNIONWH_PII_KEY=key):
            pg = nightly_load(year=2021)
        assert pg.status == "succeeded"
        duck = {f.id: Decimal(str(f.value)) for f in demo.first.figures}
        assert {f.id: Decimal(str(f.value)) for f in pg.figures} == duck
        assert pg.rows == demo.first.rows
    finally:
        drop_database(server, name)


def test_small_slices_give_the_same_warehouse_and_figures(demo: DemoRun) -> None:
    """stream_rows bounds what a run holds in memory: with slices of 4,000 rows (the demo's
    welfare source in ~15 slices, members in pages) every raw table's rows, the quarantine's rows,
    the ledger's counts per file and all 42 figures equal the one-slice run's."""
    env = {
        **demo.env,
        "UNIONWH_WAREHOUSE": f"duckdb:///{demo.home / 'sliced.duckdb'}",
        "UNIONWH_OUTPUT": str(demo.home / "sliced-runs"),
        "UNIONWH_STREAM_ROWS": "4000",
    }
    with Env(**env):
        sliced = nightly_load(year=2021)
    assert sliced.status == demo.first.status
    assert {f.id: Decimal(str(f.value)) for f in sliced.figures} == {
        f.id: Decimal(str(f.value)) for f in demo.first.figures
    }
    assert sliced.rows == demo.first.rows
    got = DemoRun(demo.home, env, sliced, demo.manifest).contents()
    assert row_differences(demo.contents(), got) == {}
    pages = [e for e in sliced.ledger if e.source == "members"]
    assert len(pages) > 2 * len([e for e in demo.first.ledger if e.source == "members"])
    assert all(e.rows_read <= 4000 for e in pages)
    welfare_validations = {d.path for d in sliced.doc_pages if d.source == "welfare"}
    assert len(welfare_validations) > 10


def test_extract_and_validation_on_a_dask_cluster_give_the_same_warehouse(demo: DemoRun) -> None:
    """task_runner dask (prefect-dask, a temporary local cluster of two worker processes): the
    file sources' slices are extracted and validated in the workers, and the warehouse (every raw
    table's rows, the quarantine's, the ledger's counts per file) and all 42 figures equal the
    default run's."""
    env = {
        **demo.env,
        "UNIONWH_WAREHOUSE": f"duckdb:///{demo.home / 'dask.duckdb'}",
        "UNIONWH_OUTPUT": str(demo.home / "dask-runs"),
        "UNIONWH_TASK_RUNNER": "dask",
        "UNIONWH_PARALLEL_SLICES": "2",
        "UNIONWH_STREAM_ROWS": "20000",
    }
    with Env(**env):
        on_dask = nightly_load(year=2021)
    assert on_dask.status == demo.first.status
    assert {f.id: Decimal(str(f.value)) for f in on_dask.figures} == {
        f.id: Decimal(str(f.value)) for f in demo.first.figures
    }
    got = DemoRun(demo.home, env, on_dask, demo.manifest).contents()
    assert row_differences(demo.contents(), got) == {}
    assert on_dask.rows == demo.first.rows
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert demo.first.workers == {here}  # the default: threads of the run's own process
    assert on_dask.workers and here not in on_dask.workers


def test_a_byte_identical_redelivery_is_skipped(demo: DemoRun) -> None:
    loaded = {e.file_name for e in demo.first.ledger}
    assert "finance/2021-04-01/budget.csv" in loaded
    assert "finance/2021-10-01/budget.csv" not in loaded  # same SHA-256 as the April file
    assert demo.first.skipped_files >= 1


def test_run_writes_report_files_and_dbt_artifacts(demo: DemoRun) -> None:
    run_dir = demo.first.run_dir
    assert run_dir is not None
    data = json.loads((run_dir / "figures-2021.json").read_text(encoding="utf-8"))
    assert data["year"] == 2021 and len(data["figures"]) == 42
    assert "接待咨询" in (run_dir / "report-2021.md").read_text(encoding="utf-8")
    assert (run_dir / "dbt" / "manifest.json").exists() and (run_dir / "dbt" / "run_results.json").exists()
    docs_site = run_dir / "dbt" / "static_index.html"
    assert docs_site in demo.first.report_files
    html = docs_site.read_text(encoding="utf-8")
    assert "fct_vouchers" in html and "audit_exceptions" in html  # the models and their docs are in it


def test_data_docs_cover_every_batch_without_personal_data(demo: DemoRun) -> None:
    docs = demo.first.run_dir / "data_docs"
    pages = sorted(docs.glob("*.html"))
    assert (docs / "index.html") in pages
    loaded = [
        e for e in demo.first.ledger if e.status == "loaded" and e.rows_read > 0
    ]  # empty sheets: no page
    index = (docs / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)  # (page, file) per file validated
    assert {e.file_name for e in loaded} <= {file for _, file in links} and len(loaded) > 100
    assert all((docs / page).exists() for page, _ in links)
    assert len(pages) - 1 < len(loaded) / 3  # one validation per table and run, not per file
    id_shaped = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
    for page in pages:
        assert not id_shaped.search(page.read_text(encoding="utf-8")), page.name


def test_ledger_conserves_rows_and_quarantine_has_reasons(demo: DemoRun) -> None:
    read, loaded, quarantined = demo.first.rows
    assert read == loaded + quarantined and quarantined > 0
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            bad = conn.execute(
                sa.text(
                    "select count(*) from ops.load_ledger where rows_read <> rows_loaded + rows_quarantined"
                )
            ).scalar_one()
            q = conn.execute(
                sa.text(
                    "select count(*), count(distinct rules) from ops.quarantine "
                    "where rules <> '' and reasons like '%zh%'"
                )
            ).one()
            in_ledger = conn.execute(
                sa.text("select sum(rows_quarantined) from ops.load_ledger")
            ).scalar_one()
    finally:
        eng.dispose()
    assert bad == 0
    assert q[0] == quarantined == in_ledger and q[1] >= 3


def test_quality_summary_of_the_latest_run(demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    with Env(**demo.env):
        assert main(["quality", "--run", "latest"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {demo.first.run_id}")
    quarantined = {line.split()[0]: int(line.split()[5]) for line in out.splitlines()[2:]}
    assert sum(quarantined.values()) == demo.first.rows[2]
    assert set(quarantined) >= {"registry", "welfare", "rights", "finance", "events", "training", "members"}


def appendix(summary_md: Path) -> str:
    """The summary's appendix (each figure's trace), checked to state every test passed."""
    text = summary_md.read_text(encoding="utf-8")
    part = text[text.index("## 附录") :]
    rows = [line for line in part.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 42
    for row in rows:
        passed, total = re.search(r"\| (\d+)/(\d+) \|", row).groups()  # type: ignore[union-attr]
        assert passed == total != "0", row
    return part


def test_second_run_changes_nothing(own_demo: DemoRun) -> None:
    demo = own_demo
    before_rows, before_figures = demo.row_counts(), demo.figures()
    before_contents = demo.contents(between_runs=False)  # every column: the same rows, not only as many
    again = demo.run()
    assert again.status == "succeeded"
    assert again.ledger == [] and again.skipped_files > 0
    assert demo.row_counts() == before_rows
    assert row_differences(before_contents, demo.contents(between_runs=False)) == {}
    assert demo.figures() == before_figures
    # Its dbt build selected only what ops feeds; its summary still states every test's latest
    # result (issue 19: it said 0/29 for tests the build had not selected), as the full build did.
    [selection] = demo.query(f"select selection from ops.dbt_builds where run_id = '{again.run_id}'")[0]
    assert selection == "source:ops+"
    assert again.run_dir is not None and demo.first.run_dir is not None
    assert appendix(again.run_dir / "summary-2021.md") == appendix(demo.first.run_dir / "summary-2021.md")


def test_cli_figures_json_lists_all_42(demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    with Env(**demo.env):
        assert main(["figures", "--year", "2021", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["year"] == 2021
    assert len({f["id"] for f in data["figures"]}) == 42
    assert all(set(f) == {"id", "value", "unit", "zh", "en"} for f in data["figures"])


def test_audit_workbook_lists_exactly_the_planted_fund_problems(
    demo: DemoRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo plants one problem of five kinds; the workbook lists those and nothing else."""
    import openpyxl

    from flows.report.audit import COVER_SHEET, EXCEPTION_RULES, rule_sheet

    out = demo.home / "audit" / "audit-2021.xlsx"
    with Env(**demo.env):
        assert main(["audit", "--year", "2021", "--out", str(out)]) == 0
    assert "5 exceptions" in capsys.readouterr().out
    wb = openpyxl.load_workbook(out, read_only=True)
    listed = []
    for (
        rule,
        _,
        _,
    ) in EXCEPTION_RULES:  # each sheet: English column names in row 3, the table's rows from row 5
        rows = list(wb[rule_sheet(rule)].iter_rows(min_row=3, values_only=True))
        listed += [
            (rule, row["project_code"], Decimal(str(row["amount_yuan"])).quantize(Decimal("0.01")))
            for row in (dict(zip(rows[0], r, strict=False)) for r in rows[2:] if any(r))
        ]
    assert sorted(listed) == sorted(demo.manifest.planted)
    assert {rule for rule, _, _ in listed} == {
        "budget_overrun",
        "unapproved_payment",
        "unknown_or_revoked_payee",
        "duplicate_relief",
        "reconciliation_gap",
    }
    summary = {r[2]: r[4] for r in wb[COVER_SHEET].iter_rows(values_only=True) if len(r) > 4 and r[2]}
    assert summary["reconciliation"] == 1 and summary["budget_vs_actual"] == 1
    assert summary["relief_without_voucher"] == 0
    wb.close()


ID_SHAPED = r"(^|[^0-9a-fA-F])[0-9]{17}[0-9Xx]($|[^0-9a-fA-F])"
PHONE_SHAPED = r"(^|[^0-9a-fA-F])1[3-9][0-9]{9}($|[^0-9a-fA-F])"
"""Not inside a longer hex run: a 64-hex pseudonym may well contain 17 decimal digits in a row."""


def test_no_model_downstream_of_raw_holds_an_id_name_or_phone(demo: DemoRun) -> None:
    """Every text column of every staging, intermediate and mart relation: no ID- or phone-shaped
    value and no value equal to a delivered name. The raw layer does hold them (the scan works)."""
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            names = " union ".join(
                f"select {c} as v from raw.{t} where {c} is not null"
                for t, c in (
                    ("welfare__condolence", "name"),
                    ("welfare__health_checks", "name"),
                    ("welfare__relief", "name"),
                    ("training__attendance", "name"),
                    ("members__member", "name"),
                )
            )
            assert conn.execute(sa.text(f"select count(*) from ({names}) n")).scalar_one() > 1000
            assert (
                conn.execute(
                    sa.text("select count(*) from raw.members__member where regexp_matches(id_card, :p)"),
                    {"p": ID_SHAPED},
                ).scalar_one()
                > 1000
            )
            assert (
                conn.execute(
                    sa.text("select count(*) from raw.members__member where regexp_matches(phone, :p)"),
                    {"p": PHONE_SHAPED},
                ).scalar_one()
                > 1000
            )
            columns = conn.execute(
                sa.text(
                    "select table_schema, table_name, column_name from information_schema.columns "
                    "where table_schema in ('staging', 'intermediate', 'marts') and data_type = 'VARCHAR' "
                    "order by 1, 2, 3"
                )
            ).all()
            assert len(columns) > 100
            found = []
            for schema, rel, col in columns:
                hits = conn.execute(
                    sa.text(
                        f"select count(*) from {schema}.{rel} where regexp_matches({col}, :id) "
                        f"or regexp_matches({col}, :phone) or {col} in ({names})"
                    ),
                    {"id": ID_SHAPED, "phone": PHONE_SHAPED},
                ).scalar_one()
                if hits:
                    found.append(f"{schema}.{rel}.{col}: {hits}")
    finally:
        eng.dispose()
    assert found == []


@dataclass
class Corrected:
    """A copy of the demo run after a correction delivered on 2022-02-20 and a run that loaded it."""

    demo: DemoRun
    before: dict[str, Decimal]
    """The figures before the correction."""
    run: RunSummary
    bad: sa.Row
    """(row_key, file_name, row_number) of the consultation quarantined for its date, now delivered again."""


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory, demo_2021: Demo2021) -> Corrected:
    """A copy of the session's demo run, then a case re-delivered with outcome 调解中 -> 成功 (1,000.50
    recovered) and the consultation quarantined for its date re-delivered with the date fixed, on
    2022-02-20, and a run."""
    mine = copy_demo(demo_2021, tmp_path_factory.mktemp("corrected"))
    demo = DemoRun(mine.home, mine.env, mine.first, mine.manifest)
    before = demo.figures()
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            bad = conn.execute(
                sa.text(
                    "select row_key, file_name, row_number from ops.quarantine "
                    "where rules = 'received_on.date_format' and table_name = 'cases'"
                )
            ).one()
    finally:
        eng.dispose()
    redeliver_dispute_as_resolved(
        demo,
        "2022-02-20",
        "1,000.50",
        closed="2022年2月1日",
        extra=[[bad[0], "咨询", "2021-02-28", "", "", "", "", ""]],
    )
    return Corrected(demo, before, demo.run(), bad)


def test_a_later_correction_changes_exactly_its_figures(corrected: Corrected) -> None:
    """A case re-delivered with outcome 调解中 -> 成功 moves the two figures it should; a quarantined
    consultation re-delivered with its date fixed loads, leaves the quarantine resolved, and adds one."""
    demo, before, run, bad = corrected.demo, corrected.before, corrected.run, corrected.bad
    assert run.status == "succeeded"
    after = demo.figures()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {
        "rights.disputes_resolved": (
            before["rights.disputes_resolved"],
            before["rights.disputes_resolved"] + 1,
        ),
        "rights.amount_recovered_yuan": (
            before["rights.amount_recovered_yuan"],
            before["rights.amount_recovered_yuan"] + Decimal("1000.50"),
        ),
        "rights.consultations": (before["rights.consultations"], before["rights.consultations"] + 1),
    }
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            resolved = conn.execute(
                sa.text(
                    "select file_name, row_number, resolved_by_file from marts.audit_quarantine where is_resolved"
                )
            ).all()
            open_rows = conn.execute(
                sa.text("select count(*) from marts.audit_quarantine where not is_resolved")
            ).scalar_one()
    finally:
        eng.dispose()
    assert [tuple(r) for r in resolved] == [(bad[1], bad[2], "rights/2022-02-20/cases.csv")]
    assert open_rows == demo.first.rows[2] - 1
    assert_built_only_downstream_of_new_rows(demo, run)


def assert_built_only_downstream_of_new_rows(demo: DemoRun, run: RunSummary) -> None:
    """The run's dbt build selected the models downstream of rights.cases (and ops), not the
    others; and every mart table equals what a build of every model makes of the same
    warehouse (a copy of it, built in full by dbt)."""
    assert run.run_dir is not None
    built = {n.unique_id for n in node_results(run.run_dir / "dbt") if n.unique_id.startswith("model.")}
    assert {
        "model.unionwh.fct_rights_cases",
        "model.unionwh.fig_annual_figures",
        "model.unionwh.audit_quarantine",
    } <= built
    assert not built & {
        "model.unionwh.dim_member",
        "model.unionwh.fct_welfare_visits",
        "model.unionwh.fct_member_cards",
        "model.unionwh.dim_enterprise",
    }
    [last] = demo.query("select selection, status from ops.dbt_builds order by built_at desc limit 1")
    assert last[1] == "succeeded" and last[0].split() == ["source:ops+", "source:rights.rights__cases+"]
    copy = demo.home / "full-build.duckdb"
    copy.write_bytes((demo.home / "warehouse.duckdb").read_bytes())
    with Env(**{**demo.env, "UNIONWH_WAREHOUSE": f"duckdb:///{copy}"}):
        full = dbt.build(load_settings(), demo.home / "full-build-dbt")
    assert full.success and full.counts.get("success", 0) > len(built)

    def marts(path: Path) -> dict[str, list[tuple]]:
        eng = sa.create_engine(f"duckdb:///{path}")
        try:
            with eng.connect() as conn:
                names = (
                    conn.execute(
                        sa.text(
                            "select table_name from information_schema.tables "
                            "where table_schema = 'marts' and table_type = 'BASE TABLE'"
                        )
                    )
                    .scalars()
                    .all()
                )
                return {
                    n: sorted(map(tuple, conn.execute(sa.text(f"select * from marts.{n}")).all()), key=repr)
                    for n in names
                }
        finally:
            eng.dispose()

    selective, complete = marts(demo.home / "warehouse.duckdb"), marts(copy)
    assert selective.keys() == complete.keys() and len(selective) > 20
    assert [n for n in complete if selective[n] != complete[n]] == []
    # The selective run's summary states the same test results as the full build's would.
    from flows.report.summary import write_report
    from flows.report.trace import collect

    eng = sa.create_engine(f"duckdb:///{copy}")
    try:
        data = collect(eng, 2021, demo.home / "runs", ("full-build", demo.home / "full-build-dbt"))
    finally:
        eng.dispose()
    template = (ROOT / "config" / "report" / "summary.zh.md").read_text(encoding="utf-8")
    [full_md] = [
        p for p in write_report(data, template, demo.home / "full-build-summary") if p.suffix == ".md"
    ]
    assert run.run_dir is not None
    assert appendix(run.run_dir / "summary-2021.md") == appendix(full_md)


def test_figures_as_known_on_an_earlier_date_lack_exactly_the_later_corrections(
    corrected: Corrected, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the correction delivered on 2022-02-20 (``corrected``), the figures recomputed over the
    deliveries up to 2022-02-19 differ from today's by exactly the later deliveries: that
    correction, and the member database, whose rows are dated by the day they were pulled
    (today), so nothing of it was known then."""
    demo = corrected.demo
    today = demo.figures()
    with Env(**demo.env):
        assert main(["figures", "--year", "2021", "--format", "json", "--as-known-on", "2022-02-19"]) == 0
    known = {f["id"]: Decimal(str(f["value"])) for f in json.loads(capsys.readouterr().out)["figures"]}
    assert {k for k in today if today[k] != known[k]} == {
        "rights.disputes_resolved",
        "rights.amount_recovered_yuan",
        "rights.consultations",
        "members.cards_issued_or_renewed",
    }
    assert known["members.cards_issued_or_renewed"] == 0 < today["members.cards_issued_or_renewed"]
    assert today["rights.disputes_resolved"] - known["rights.disputes_resolved"] == 1
    assert today["rights.amount_recovered_yuan"] - known["rights.amount_recovered_yuan"] == Decimal("1000.50")
    assert today["rights.consultations"] - known["rights.consultations"] == 1
    assert demo.figures() == today  # the current marts were not touched


def test_any_contract_landing_zone_runs_with_explicit_urls(
    tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the demo: a hand-made landing zone with two sources and a separate members database."""
    landing = tmp_path / "zone"
    events = landing / "events" / "2022-01-05"
    events.mkdir(parents=True)
    (events / "honours.csv").write_text(
        "荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\nH2,2021,五一劳动奖状,区级,乙公司\n"
        "H3,2021,五一劳动奖状,新区级,丙公司\nH4,２０２１,优秀志愿者,区级,张三\nH5,2021,不存在的荣誉,区级,李四\n",
        encoding="utf-8",
    )
    members_db = tmp_path / "platform.sqlite"
    con = sqlite3.connect(members_db)
    con.executescript(
        "create table member (member_id integer primary key, id_card text, name text, phone text, union_code text,"
        " employment_form text, is_migrant integer, is_veteran integer, joined_on text, updated_at text,"
        " deleted_at text);"
        "create table member_card (card_event_id integer primary key, member_id integer, card_no text, action text,"
        " action_on text, updated_at text);"
        "insert into member_card values (1, 1, 'K1', 'new', '2021-03-01', '2021-03-01 09:00:00'),"
        " (2, 1, 'K1', 'renew', '2021/9/1', '2021-09-01 09:00:00'), (3, 2, 'K2', 'lost', '2021-05-01',"
        " '2021-05-01 09:00:00');"
    )
    con.commit()
    con.close()
    warehouse = tmp_path / "elsewhere" / "wh.duckdb"
    with Env(UNIONWH_HOME=str(tmp_path), UNIONWH_OUTPUT=str(tmp_path / "runs")):
        code = main(
            [
                "run",
                "--landing",
                str(landing),
                "--members-url",
                f"sqlite:///{members_db}",
                "--warehouse",
                f"duckdb:///{warehouse}",
                "--year",
                "2021",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert (
            main(["figures", "--year", "2021", "--format", "json", "--warehouse", f"duckdb:///{warehouse}"])
            == 0
        )
    figures = {f["id"]: f["value"] for f in json.loads(capsys.readouterr().out)["figures"]}
    assert figures["honours.mayday_certificates"] == 2
    assert figures["honours.excellent_volunteers"] == 1
    assert figures["members.cards_issued_or_renewed"] == 2
    assert figures["rights.consultations"] == 0
    assert "quarantined 2" in out


def redeliver_dispute_as_resolved(
    demo: DemoRun,
    delivered: str,
    amount: str,
    closed: str = "2022年3月1日",
    extra: list[list[str]] | None = None,
) -> str:
    """Deliver (on ``delivered``) the first 2021 dispute still 调解中 again, now 成功 with ``amount``
    (and the ``extra`` rows); returns its case number."""
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            case = conn.execute(
                sa.text(
                    "select case_no, received_on, uscc from staging.stg_rights__cases "
                    "where case_type = '劳动争议' and mediation_result = '调解中' "
                    "and extract(year from received_on) = 2021 order by case_no limit 1"
                )
            ).one()
            worker = conn.execute(
                sa.text(  # only the restricted raw layer has the ID itself
                    "select worker_id_card from raw.rights__cases where case_no = :c limit 1"
                ),
                {"c": case[0]},
            ).scalar()
    finally:
        eng.dispose()
    folder = demo.home / "landing" / "rights" / delivered
    folder.mkdir(parents=True)  # a delivery folder is new: never written into twice
    row = [
        case[0],
        "劳动争议",
        case[1].strftime("%Y/%-m/%-d"),
        case[2] or "",
        worker or "",
        "成功",
        closed,
        amount,
    ]
    write_delivery_csv(folder / "cases.csv", CASES_HEADER, [row, *(extra or [])])
    return str(case[0])


def test_publish_then_correct_then_diff(own_demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    """Published: frozen with a manifest, never rewritten. A later correction: the published
    files keep their hashes, and the diff names exactly the corrected figures and the row."""
    from flows.report import publish

    demo = own_demo
    env = {**demo.env, "UNIONWH_PUBLISHED": str(demo.home / "published")}
    with Env(**env):
        assert main(["report", "publish", "--year", "2021"]) == 0
    folder = demo.home / "published" / "2021"
    hashes = {p.name: publish.sha256(p) for p in folder.iterdir()}
    assert {
        "summary-2021.md",
        "summary-2021.html",
        "summary-2021.docx",
        "figures-2021.json",
        "figure-rows-2021.csv",
        "sources-2021.json",
        "publication.json",
        "MANIFEST.sha256",
    } == set(hashes)
    manifest = (folder / "MANIFEST.sha256").read_text(encoding="utf-8")
    assert all(f"{hashes[n]}  {n}" in manifest for n in hashes if n != "MANIFEST.sha256")
    sources = json.loads((folder / "sources-2021.json").read_text(encoding="utf-8"))
    assert len(sources) > 20 and {s["source"] for s in sources} >= {
        "registry",
        "rights",
        "welfare",
        "finance",
    }
    for s in (
        s for s in sources if s["source"] != "members"
    ):  # each file's hash, as it lies in the landing zone
        assert publish.sha256(demo.home / "landing" / s["file"]) == s["sha256"], s["file"]
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.text("select count(*) from marts.fig_figure_rows where report_year = 2021")
            ).scalar()
    finally:
        eng.dispose()
    assert (folder / "figure-rows-2021.csv").read_text(encoding="utf-8").count("\n") - 1 == rows
    for name in hashes:  # a published copy carries pseudonyms, never an ID number or a phone
        if not name.endswith(".docx"):
            text = (folder / name).read_text(encoding="utf-8")
            assert not re.search(ID_SHAPED, text) and not re.search(PHONE_SHAPED, text), name
    capsys.readouterr()
    with Env(**env):
        assert main(["report", "publish", "--year", "2021"]) == 2  # never written twice
        assert main(["report", "diff", "--year", "2021"]) == 0
    assert "no figure would change" in capsys.readouterr().out
    appendix(folder / "summary-2021.md")  # the published copy states a verified trace

    case_no = redeliver_dispute_as_resolved(demo, "2022-03-10", "2,345.67")
    assert demo.run().status == "succeeded"
    with Env(**env):
        assert main(["report", "diff", "--year", "2021"]) == 1
    out = capsys.readouterr().out
    assert "intact" in out and f"+ stg_rights__cases {case_no}" in out
    eng = demo.engine()
    try:
        d = publish.diff(eng, 2021, demo.home / "published")
    finally:
        eng.dispose()
    assert {c.figure_id for c in d.changes} == {"rights.disputes_resolved", "rights.amount_recovered_yuan"}
    for c in d.changes:
        assert [r[2] for r in c.added] == [case_no] and c.removed == [] and c.changed == []
        assert c.now - c.published == (1 if c.figure_id == "rights.disputes_resolved" else Decimal("2345.67"))
    assert {p.name: publish.sha256(p) for p in folder.iterdir()} == hashes  # the published copy is unchanged
    assert publish.verify(folder) == []

    md = folder / "summary-2021.md"
    md.chmod(0o644)
    md.write_text(
        md.read_text(encoding="utf-8") + "\n（改）\n", encoding="utf-8"
    )  # an edit after publication
    with Env(**env):
        assert main(["report", "diff", "--year", "2021"]) == 3  # the published copy was altered (exit 3)
    assert "summary-2021.md: altered" in capsys.readouterr().out


def test_rotating_the_key_rekeys_every_pseudonym_and_the_next_run_rebuilds_the_marts(
    own_demo: DemoRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """``unionwh warehouse rotate-key``: raw pseudonyms recomputed under the new key, the key
    file replaced, the old key refused from then on; the next run rebuilds every model (the
    key is part of the build's hash), so the marts carry the new pseudonyms; figures unchanged."""
    from flows.warehouse import pii

    demo = own_demo
    before = demo.figures()
    old = (demo.home / "pii.key").read_text(encoding="ascii").strip()
    new = secrets.token_hex(24)
    with Env(**demo.env, UNIONWH_NEW_PII_KEY=new):
        assert main(["warehouse", "rotate-key"]) == 0
    out = capsys.readouterr().out
    assert "re-keyed" in out and new not in out and old not in out
    assert (demo.home / "pii.key").read_text(encoding="ascii").strip() == new
    raw = demo.query(
        "select member_id, id_card, id_card_pseudonym from raw.members__member "
        "where id_card is not null limit 50"
    )
    [(fingerprint,)] = demo.query("select value from ops.settings where name = 'pii_key_fingerprint'")
    assert raw and all(p == pii.pseudonym(new.encode(), i) for _, i, p in raw)
    assert fingerprint == pii.fingerprint(new.encode())
    run = demo.run()
    assert run.status == "succeeded" and run.run_dir is not None
    built = {n.unique_id for n in node_results(run.run_dir / "dbt")}
    assert {"model.unionwh.dim_member", "model.unionwh.fct_welfare_visits"} <= built
    marts = {r[0]: r[1] for r in demo.query("select member_id, id_card_pseudonym from marts.dim_member")}
    assert all(marts[m] == p for m, _, p in raw if m in marts)
    assert demo.figures() == before
    with Env(**demo.env, UNIONWH_PII_KEY=old), pytest.raises(ConfigError, match="differs"):
        nightly_load(year=2021)


def test_the_demo_is_clean_under_its_own_dbt_tests(demo: DemoRun) -> None:
    """Issue 19: the demo's first (full) build warned `relationships_fct_member_cards_member_id`
    (195 rows): cards of members soft-deleted later, which the contract keeps (figures.yaml
    counts every card) but dim_member left out. Every node of the build passes now, and every
    card event joins to its member, departed ones flagged."""
    assert demo.first.run_dir is not None
    nodes = node_results(demo.first.run_dir / "dbt")
    tests = {n.unique_id: n.status for n in nodes if n.unique_id.startswith("test.")}
    assert len(tests) > 250  # the full build ran every test
    assert {n.unique_id: n.status for n in nodes if n.status not in ("pass", "success")} == {}
    [cards] = [t for t in tests if t.startswith("test.unionwh.relationships_fct_member_cards_member_id")]
    assert tests[cards] == "pass"
    assert demo.first.dbt_counts.keys() <= {"pass", "success"}
    assert demo.query(
        "select count(*) from marts.fct_member_cards c left join marts.dim_member m "
        "on c.member_id = m.member_id where m.member_id is null"
    ) == [(0,)]
    departed = demo.query("select count(*), count(deleted_at) from marts.dim_member where is_deleted")
    assert departed == [(200, 200)]  # the demo soft-deletes every 200th of its 40,000 members


def test_figures_csv_as_known_on_names_its_date_and_starts_with_a_bom(
    demo: DemoRun, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Issue 19: Excel shows the CSV's Chinese labels only with a UTF-8 BOM, and figures as known
    on a past date say that date (a last column: a comment line would be a data row to Excel).
    The same render path writes the table title and the json field (tests/test_read_commands.py)."""
    with Env(**demo.env):
        assert main(["figures", "--year", "2021", "--format", "csv", "--as-known-on", "2022-02-19"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"\xef\xbb\xbfyear,id,value,unit,zh,en,as_known_on\n")
    rows = list(csv.reader(out.decode("utf-8-sig").splitlines()))
    assert len(rows) == 43 and {r[6] for r in rows[1:]} == {"2022-02-19"}
    assert {r[0] for r in rows[1:]} == {"2021"} and any("工会" in r[4] for r in rows[1:])
