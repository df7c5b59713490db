"""End to end on the embedded default: demo -> Prefect flow -> DuckDB -> dbt -> figures.

These are real runs: the demo generator writes files, the nightly-load flow runs under a
Prefect test harness, Great Expectations validates, DuckDB stores, dbt builds.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.errors import ConfigError
from flows.demo.synth import Manifest, generate
from flows.nightly import RunSummary, nightly_load
from flows.settings import load_settings
from flows.warehouse.engine import warehouse_engine

from tests.support import Env, create_database, drop_database, postgres_or_skip

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

    def figures(self) -> dict[str, Decimal]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                rows = conn.execute(sa.text(
                    "select figure_id, value from marts.fig_annual_figures where report_year = 2021")).all()
        finally:
            eng.dispose()
        return {r[0]: Decimal(str(r[1])) for r in rows}

    def row_counts(self) -> dict[str, int]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                names = conn.execute(sa.text(
                    "select table_schema || '.' || table_name from information_schema.tables "
                    "where table_schema in ('raw', 'ops') and table_name not in "
                    "('runs', 'run_sources', 'figure_values', 'figure_changes')")).scalars().all()
                return {n: int(conn.execute(sa.text(f"select count(*) from {n}")).scalar_one()) for n in names}
        finally:
            eng.dispose()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[DemoRun]:
    home = tmp_path_factory.mktemp("demo")
    manifest = generate(home / "landing", year=2021, seed=2021)
    env = {"UNIONWH_HOME": str(home), "UNIONWH_LANDING": str(home / "landing"),
           "UNIONWH_WAREHOUSE": f"duckdb:///{home / 'warehouse.duckdb'}", "UNIONWH_OUTPUT": str(home / "runs")}
    with Env(**env):
        first = nightly_load(year=2021)
    yield DemoRun(home, env, first, manifest)


def test_every_figure_lands_in_its_seed_range(demo: DemoRun, figure_catalogue: list[dict]) -> None:
    got = {f.id: Decimal(str(f.value)) for f in demo.first.figures}
    assert set(got) == {f["id"] for f in figure_catalogue}
    assert len(got) == 42
    outside = {f["id"]: (str(got[f["id"]]), f["seed_range"]) for f in figure_catalogue
               if not Decimal(str(f["seed_range"][0])) <= got[f["id"]] <= Decimal(str(f["seed_range"][1]))}
    assert outside == {}
    assert demo.first.status == "succeeded"


@pytest.mark.postgres
def test_postgres_warehouse_gives_the_same_42_figures(demo: DemoRun) -> None:
    """The same landing zone into a fresh PostgreSQL database: every figure equals DuckDB's."""
    server = postgres_or_skip()
    name = f"unionwh_e2e_{secrets.token_hex(4)}"
    create_database(server, name)
    try:
        env = {**demo.env, "UNIONWH_WAREHOUSE": f"{server}/{name}", "UNIONWH_OUTPUT": str(demo.home / "pg-runs")}
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
    loaded = [e for e in demo.first.ledger if e.status == "loaded" and e.rows_read > 0]  # empty sheets: no page
    assert len(pages) - 1 >= len(loaded) > 0
    id_shaped = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
    for page in pages:
        assert not id_shaped.search(page.read_text(encoding="utf-8")), page.name


def test_ledger_conserves_rows_and_quarantine_has_reasons(demo: DemoRun) -> None:
    read, loaded, quarantined = demo.first.rows
    assert read == loaded + quarantined and quarantined > 0
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            bad = conn.execute(sa.text("select count(*) from ops.load_ledger "
                                       "where rows_read <> rows_loaded + rows_quarantined")).scalar_one()
            q = conn.execute(sa.text("select count(*), count(distinct rules) from ops.quarantine "
                                     "where rules <> '' and reasons like '%zh%'")).one()
            in_ledger = conn.execute(sa.text("select sum(rows_quarantined) from ops.load_ledger")).scalar_one()
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


def test_second_run_changes_nothing(demo: DemoRun) -> None:
    before_rows, before_figures = demo.row_counts(), demo.figures()
    again = demo.run()
    assert again.status == "succeeded"
    assert again.ledger == [] and again.skipped_files > 0
    assert demo.row_counts() == before_rows
    assert demo.figures() == before_figures


def test_cli_figures_json_lists_all_42(demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    with Env(**demo.env):
        assert main(["figures", "--year", "2021", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["year"] == 2021
    assert len({f["id"] for f in data["figures"]}) == 42
    assert all(set(f) == {"id", "value", "unit", "zh", "en"} for f in data["figures"])


def test_audit_workbook_lists_exactly_the_planted_fund_problems(
        demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo plants one problem of five kinds; the workbook lists those and nothing else."""
    import openpyxl

    from flows.report.audit import EXCEPTION_COLUMNS, EXCEPTION_RULES

    out = demo.home / "audit" / "audit-2021.xlsx"
    with Env(**demo.env):
        assert main(["audit", "--year", "2021", "--out", str(out)]) == 0
    assert "5 exceptions" in capsys.readouterr().out
    wb = openpyxl.load_workbook(out, read_only=True)
    listed = []
    for rule, zh, _ in EXCEPTION_RULES:
        rows = list(wb[f"{zh} {rule}"[:31]].iter_rows(values_only=True))
        assert rows[0] == EXCEPTION_COLUMNS
        listed += [(r[1], r[2], Decimal(str(r[5])).quantize(Decimal("0.01"))) for r in rows[1:]]
    assert sorted(listed) == sorted(demo.manifest.planted)
    assert {rule for rule, _, _ in listed} == {"budget_overrun", "unapproved_payment", "unknown_or_revoked_payee",
                                               "duplicate_relief", "reconciliation_gap"}
    summary = {r[0]: r[3] for r in wb["汇总"].iter_rows(min_row=2, values_only=True) if r and r[0]}
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
            names = " union ".join(f"select {c} as v from raw.{t} where {c} is not null" for t, c in (
                ("welfare__condolence", "name"), ("welfare__health_checks", "name"), ("welfare__relief", "name"),
                ("training__attendance", "name"), ("members__member", "name")))
            assert conn.execute(sa.text(f"select count(*) from ({names}) n")).scalar_one() > 1000
            assert conn.execute(sa.text("select count(*) from raw.members__member where regexp_matches(id_card, :p)"),
                                {"p": ID_SHAPED}).scalar_one() > 1000
            assert conn.execute(sa.text("select count(*) from raw.members__member where regexp_matches(phone, :p)"),
                                {"p": PHONE_SHAPED}).scalar_one() > 1000
            columns = conn.execute(sa.text(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where table_schema in ('staging', 'intermediate', 'marts') and data_type = 'VARCHAR' "
                "order by 1, 2, 3")).all()
            assert len(columns) > 100
            found = []
            for schema, rel, col in columns:
                hits = conn.execute(sa.text(
                    f"select count(*) from {schema}.{rel} where regexp_matches({col}, :id) "
                    f"or regexp_matches({col}, :phone) or {col} in ({names})"),
                    {"id": ID_SHAPED, "phone": PHONE_SHAPED}).scalar_one()
                if hits:
                    found.append(f"{schema}.{rel}.{col}: {hits}")
    finally:
        eng.dispose()
    assert found == []


def test_a_later_correction_changes_exactly_its_figures(demo: DemoRun) -> None:
    """A case re-delivered with outcome 调解中 -> 成功 moves the two figures it should; a quarantined
    consultation re-delivered with its date fixed loads, leaves the quarantine resolved, and adds one."""
    before = demo.figures()
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            case = conn.execute(sa.text(
                "select case_no, received_on, uscc from staging.stg_rights__cases "
                "where case_type = '劳动争议' and mediation_result = '调解中' "
                "and extract(year from received_on) = 2021 order by case_no limit 1")).one()
            worker = conn.execute(sa.text(  # only the restricted raw layer has the ID itself
                "select worker_id_card from raw.rights__cases where case_no = :c limit 1"), {"c": case[0]}).scalar()
            bad = conn.execute(sa.text(
                "select row_key, file_name, row_number from ops.quarantine "
                "where rules = 'received_on.date_format' and table_name = 'cases'")).one()
    finally:
        eng.dispose()
    folder = demo.home / "landing" / "rights" / "2022-02-20"
    folder.mkdir(parents=True)
    with (folder / "cases.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["案件编号", "类型", "受理日期", "统一社会信用代码", "职工身份证号", "调解结果", "结案日期", "维权金额(元)"])
        w.writerow([case[0], "劳动争议", case[1].strftime("%Y/%-m/%-d"), case[2] or "", worker or "", "成功",
                    "2022年2月1日", "1,000.50"])
        w.writerow([bad[0], "咨询", "2021-02-28", "", "", "", "", ""])
    run = demo.run()
    assert run.status == "succeeded"
    after = demo.figures()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {
        "rights.disputes_resolved": (before["rights.disputes_resolved"], before["rights.disputes_resolved"] + 1),
        "rights.amount_recovered_yuan": (before["rights.amount_recovered_yuan"],
                                         before["rights.amount_recovered_yuan"] + Decimal("1000.50")),
        "rights.consultations": (before["rights.consultations"], before["rights.consultations"] + 1),
    }
    eng = demo.engine()
    try:
        with eng.connect() as conn:
            resolved = conn.execute(sa.text(
                "select file_name, row_number, resolved_by_file from marts.audit_quarantine where is_resolved")).all()
            open_rows = conn.execute(sa.text(
                "select count(*) from marts.audit_quarantine where not is_resolved")).scalar_one()
    finally:
        eng.dispose()
    assert [tuple(r) for r in resolved] == [(bad[1], bad[2], "rights/2022-02-20/cases.csv")]
    assert open_rows == demo.first.rows[2] - 1


def test_figures_as_known_on_an_earlier_date_lack_exactly_the_later_corrections(
        demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the correction above (delivered 2022-02-20). Recomputed over the deliveries up
    to 2022-02-19, the figures differ from today's by exactly the later deliveries: that
    correction, and the member database, whose rows are dated by the day they were pulled
    (today), so nothing of it was known then."""
    today = demo.figures()
    with Env(**demo.env):
        assert main(["figures", "--year", "2021", "--format", "json", "--as-known-on", "2022-02-19"]) == 0
    known = {f["id"]: Decimal(str(f["value"])) for f in json.loads(capsys.readouterr().out)["figures"]}
    assert {k for k in today if today[k] != known[k]} == {
        "rights.disputes_resolved", "rights.amount_recovered_yuan", "rights.consultations",
        "members.cards_issued_or_renewed"}
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
        encoding="utf-8")
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
        " '2021-05-01 09:00:00');")
    con.commit()
    con.close()
    warehouse = tmp_path / "elsewhere" / "wh.duckdb"
    with Env(UNIONWH_HOME=str(tmp_path), UNIONWH_OUTPUT=str(tmp_path / "runs")):
        code = main(["run", "--landing", str(landing), "--members-url", f"sqlite:///{members_db}",
                     "--warehouse", f"duckdb:///{warehouse}", "--year", "2021"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert main(["figures", "--year", "2021", "--format", "json", "--warehouse", f"duckdb:///{warehouse}"]) == 0
    figures = {f["id"]: f["value"] for f in json.loads(capsys.readouterr().out)["figures"]}
    assert figures["honours.mayday_certificates"] == 2
    assert figures["honours.excellent_volunteers"] == 1
    assert figures["members.cards_issued_or_renewed"] == 2
    assert figures["rights.consultations"] == 0
    assert "quarantined 2" in out
