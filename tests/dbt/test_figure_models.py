"""dbt models on a real DuckDB file with hand-made raw rows: the contract's rules, figure by figure."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.schema import TABLES
from flows.settings import load_settings
from flows.warehouse import pii
from flows.warehouse.dbt import DBT_PROJECT_DIR, run_dbt
from flows.warehouse.ddl import personal_columns, pseudonym_columns, upgrade_ddl
from flows.warehouse.migrations import all_ddl
from tests.support import ROOT

PII_KEY = b"test key for the hand-made rows"
M = "'l', 'x', 'f', 'h'"  # _load_id, _source, _file_name, _file_sha256 placeholders


def meta(delivery: str, row: int, file: str = "f") -> str:
    return f"'l', 'x', '{file}', 'h', DATE '{delivery}', {row}"


RAW = f"""
-- unions: U1 independent founded 2021, re-sent later as revoked in 2021 -> not new, not active
insert into raw.registry__unions values
 ('GH0000000001', 'U1', '独立建会', 'E1', DATE '2021-02-01', true, '正常', null, TIMESTAMP '2021-02-01 08:00:00', {meta("2021-04-01", 2)}),
 ('GH0000000001', 'U1', '独立建会', 'E1', DATE '2021-02-01', true, '撤销', DATE '2021-09-01', TIMESTAMP '2021-09-01 08:00:00', {meta("2021-10-01", 2)}),
 ('GH0000000002', 'U2', '独立建会', 'E2', DATE '2021-03-01', false, '正常', null, TIMESTAMP '2021-03-01 08:00:00', {meta("2021-04-01", 3)}),
 ('GH0000000003', 'U3', '独立建会', 'E3', DATE '2019-03-01', true, '正常', null, TIMESTAMP '2019-03-01 08:00:00', {meta("2021-04-01", 4)}),
 ('GH0000000004', 'U4', '联合建会', null, DATE '2020-03-01', true, '撤销', DATE '2022-03-01', TIMESTAMP '2022-03-01 08:00:00', {meta("2022-04-01", 5)}),
 -- an older version delivered later must not win over a newer 更新时间
 ('GH0000000002', 'U2 old', '独立建会', 'E2', DATE '2021-03-01', true, '正常', null, TIMESTAMP '2021-01-01 08:00:00', {meta("2021-07-01", 2)});
insert into raw.registry__coverage values
 ('GH0000000001', 'E1', DATE '2021-02-01', null, {meta("2021-04-01", 2)}),
 ('GH0000000002', 'E2', DATE '2021-03-01', null, {meta("2021-04-01", 3)}),
 ('GH0000000004', 'E5', DATE '2020-03-01', null, {meta("2021-04-01", 4)}),
 ('GH0000000004', 'E6', DATE '2020-03-01', null, {meta("2021-04-01", 5)}),
 ('GH0000000003', 'E3', DATE '2019-03-01', null, {meta("2021-04-01", 6)}),
 ('GH0000000003', 'E3', DATE '2019-03-01', DATE '2021-12-31', {meta("2022-01-10", 2)}),
 ('GH0000000003', 'E7', DATE '2019-03-01', DATE '2022-01-05', {meta("2022-01-10", 3)});
-- cases: C2 corrected from 调解中 to 成功 in a later delivery
insert into raw.rights__cases values
 ('C1', '咨询', DATE '2021-05-01', null, null, null, null, null, {meta("2021-07-01", 2)}),
 ('C2', '劳动争议', DATE '2021-05-02', null, null, '调解中', null, null, {meta("2021-07-01", 3)}),
 ('C3', '劳动争议', DATE '2021-05-03', null, null, '成功', DATE '2021-06-01', 100.50, {meta("2021-07-01", 4)}),
 ('C4', '咨询', DATE '2020-12-31', null, null, null, null, null, {meta("2021-07-01", 5)}),
 ('C2', '劳动争议', DATE '2021-05-02', null, null, '成功', DATE '2021-12-01', 200.25, {meta("2022-01-15", 2)});
-- welfare: ST1 202103 delivered twice; the second workbook has one condolence row and no relief rows
insert into raw.welfare__condolence values
 ('ST1', '202103', DATE '2021-03-05', '两节慰问', '不返乡职工', 'a', null, null, '现金', 500, {meta("2021-04-01", 2, "welfare/2021-04-01/ST1_202103.xlsx")}),
 ('ST1', '202103', DATE '2021-03-06', '两节慰问', '农民工', 'b', null, null, '现金', 500, {meta("2021-04-01", 3, "welfare/2021-04-01/ST1_202103.xlsx")}),
 ('ST1', '202103', DATE '2021-03-07', '疫情防控慰问', '医护人员', 'c', null, null, '物资', 300, {meta("2021-04-01", 4, "welfare/2021-04-01/ST1_202103.xlsx")}),
 ('ST1', '202103', DATE '2021-03-05', '两节慰问', '不返乡职工', 'a', null, null, '现金', 500, {meta("2021-07-01", 2, "welfare/2021-07-01/ST1_202103.xlsx")}),
 ('ST2', '202104', DATE '2021-04-05', '疫情防控慰问', '医护人员', 'd', null, null, '物资', 1234.56, {meta("2021-07-01", 2, "welfare/2021-07-01/ST2_202104.xlsx")});
insert into raw.welfare__relief values
 ('ST1', '202103', DATE '2021-03-05', 'a', '110105199001011234', '大病', 1000, 'A1', {meta("2021-04-01", 2, "welfare/2021-04-01/ST1_202103.xlsx")});
insert into raw.welfare__health_checks values
 ('ST2', '202104', DATE '2021-04-05', 'd', '110105199001011234', '农民工', '医院', 100, {meta("2021-07-01", 2, "welfare/2021-07-01/ST2_202104.xlsx")}),
 ('ST2', '202104', DATE '2021-04-06', 'd', '110105199001011234', '农民工', '医院', 100, {meta("2021-07-01", 3, "welfare/2021-07-01/ST2_202104.xlsx")});
insert into raw.welfare__workbooks values
 ('ST1', '202103', 'l1', 'welfare/2021-04-01/ST1_202103.xlsx', 'h1', DATE '2021-04-01'),
 ('ST1', '202103', 'l2', 'welfare/2021-07-01/ST1_202103.xlsx', 'h2', DATE '2021-07-01'),
 ('ST2', '202104', 'l3', 'welfare/2021-07-01/ST2_202104.xlsx', 'h3', DATE '2021-07-01');
-- vouchers: P1 paid 100 (a wrong 60 line reversed, then 100); P2 paid and fully reversed; P3 LZJT
insert into raw.finance__vouchers values
 ('V1', 1, DATE '2021-05-01', '5001', 'x', 'x', 60, 0, 'XMBZ', 'P1', 'A', {meta("2021-07-01", 2)}),
 ('V2', 1, DATE '2021-05-02', '5001', 'x', 'x', 0, 60, 'XMBZ', 'P1', 'A', {meta("2021-07-01", 3)}),
 ('V3', 1, DATE '2021-05-03', '5001', 'x', 'x', 100, 0, 'XMBZ', 'P1', 'A', {meta("2021-07-01", 4)}),
 ('V4', 1, DATE '2021-05-04', '5001', 'x', 'x', 70, 0, 'XMBZ', 'P2', 'A', {meta("2021-07-01", 5)}),
 ('V5', 1, DATE '2021-05-05', '5001', 'x', 'x', 0, 70, 'XMBZ', 'P2', 'A', {meta("2021-07-01", 6)}),
 ('V6', 1, DATE '2021-05-06', '5001', 'x', 'x', 800.10, 0, 'LZJT', 'P3', 'A', {meta("2021-07-01", 7)}),
 -- a line re-delivered later with a corrected amount: latest delivery wins
 ('V6', 1, DATE '2021-05-06', '5001', 'x', 'x', 900.10, 0, 'LZJT', 'P3', 'A', {meta("2021-10-01", 2)});
-- members: member 2 soft-deleted later; cards count regardless
insert into raw.members__member_card values
 (1, 1, 'K1', 'new', DATE '2021-03-01', TIMESTAMP '2021-03-01 08:00:00', {meta("2022-01-01", 1)}),
 (2, 2, 'K2', 'renew', DATE '2021-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta("2022-01-01", 2)}),
 (2, 2, 'K2', 'renew', DATE '2021-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta("2022-01-02", 1)}),
 (3, 2, 'K3', 'new', DATE '2020-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta("2022-01-02", 2)});
insert into raw.members__member values
 (1, '110105199001011234', 'a', null, 'GH0000000001', 'standard', false, false, DATE '2020-01-01', TIMESTAMP '2021-01-01 00:00:00', null, {meta("2022-01-01", 1)}),
 (2, '110105199001011234', 'b', null, 'GH0000000001', 'courier', true, false, DATE '2020-01-01', TIMESTAMP '2021-01-01 00:00:00', null, {meta("2022-01-01", 2)}),
 (2, '110105199001011234', 'b', null, 'GH0000000001', 'courier', true, false, DATE '2020-01-01', TIMESTAMP '2021-06-01 00:00:00', TIMESTAMP '2021-06-01 00:00:00', {meta("2022-01-02", 3)});
-- training: online session with 2 attendees (1 attended) and 5 replays; offline with 3 registrations
insert into raw.training__sessions values
 ('S1', 'on', 'online', DATE '2021-06-01', DATE '2021-06-01', {meta("2021-07-01", 1)}),
 ('S2', 'off', 'offline', DATE '2021-06-02', DATE '2021-06-03', {meta("2021-07-01", 2)});
insert into raw.training__attendance values
 ('S1', null, 'a', 'GH0000000001', true, true, 2, {meta("2021-07-01", 1)}),
 ('S1', null, 'b', 'GH0000000001', true, false, 3, {meta("2021-07-01", 2)}),
 ('S2', null, 'a', 'GH0000000001', true, true, 0, {meta("2021-07-01", 3)}),
 ('S2', null, 'b', 'GH0000000001', true, false, 0, {meta("2021-07-01", 4)}),
 ('S2', null, 'c', 'GH0000000001', false, false, 0, {meta("2021-07-01", 5)}),
 ('S2', null, 'd', 'GH0000000001', true, false, 0, {meta("2021-07-01", 6)});
insert into raw.events__honours values
 ('H1', 2021, '五一劳动奖状', '区级', 'x', {meta("2021-07-01", 1)}),
 ('H2', 2021, '五一劳动奖状', '市级', 'x', {meta("2021-07-01", 2)}),
 ('H3', 2021, '市级先进个人', '市级', 'x', {meta("2021-07-01", 3)});
-- fund audit, 2023 (see test_audit_exceptions_2023)
insert into raw.registry__enterprises values
 ('E9', 'e9', '海港', 'C', 10, null, DATE '2015-01-01', TIMESTAMP '2023-01-01 08:00:00', {meta("2023-04-01", 2)});
insert into raw.finance__budget values
 (2023, 'XMBZ', 'x', 1000, {meta("2023-01-10", 2)}),
 (2023, 'JZ', 'x', 5000, {meta("2023-01-10", 3)}),
 (2023, 'TJ', 'x', 1000, {meta("2023-01-10", 4)});
insert into raw.finance__vouchers values
 ('F1', 1, DATE '2023-02-01', '5001', 'x', 'x', 600, 0, 'XMBZ', 'E9', 'A', {meta("2023-04-01", 2)}),
 ('F2', 1, DATE '2023-02-02', '5001', 'x', 'x', 500, 0, 'XMBZ', 'GH0000000001', 'A', {meta("2023-04-01", 3)}),
 ('F3', 1, DATE '2023-02-03', '5001', 'x', 'x', 300, 0, 'JZ', null, null, {meta("2023-04-01", 4)}),
 ('F4', 1, DATE '2023-02-04', '5001', 'x', 'x', 50, 0, 'LZJT', 'NOPE', 'A', {meta("2023-04-01", 5)}),
 ('F5', 1, DATE '2023-02-05', '5001', 'x', 'x', 100, 0, 'TJ', null, 'A', {meta("2023-04-01", 6)}),
 ('F6', 1, DATE '2023-03-02', '5001', 'x', 'x', 1000, 0, 'JZ', null, 'R1', {meta("2023-04-01", 7)}),
 ('F7', 1, DATE '2023-03-03', '5001', 'x', 'x', 0, 0, 'XMBZ', 'E9', 'A', {meta("2023-04-01", 8)});
insert into raw.welfare__relief values
 ('ST3', '202303', DATE '2023-03-01', 'z', '110105199001011234', '大病', 1000, 'R1', {meta("2023-04-01", 2, "welfare/2023-04-01/ST3_202303.xlsx")}),
 ('ST3', '202303', DATE '2023-03-20', 'z', '110105199001011234', '大病', 1000, 'R2', {meta("2023-04-01", 3, "welfare/2023-04-01/ST3_202303.xlsx")}),
 ('ST3', '202303', DATE '2023-01-01', 'y', '110105199001015678', '大病', 0, 'R1', {meta("2023-04-01", 4, "welfare/2023-04-01/ST3_202303.xlsx")});
insert into raw.welfare__health_checks values
 ('ST3', '202303', DATE '2023-03-05', 'z', '110105199001011234', '农民工', '医院', 100, {meta("2023-04-01", 2, "welfare/2023-04-01/ST3_202303.xlsx")});
insert into raw.welfare__workbooks values
 ('ST3', '202303', 'l4', 'welfare/2023-04-01/ST3_202303.xlsx', 'h4', DATE '2023-04-01');
insert into raw.events__activities values
 ('A1', 'a', '文体', DATE '2021-05-01', '举办', 100, {meta("2021-07-01", 1)}),
 ('A2', 'b', '安全', DATE '2021-05-01', '参与', 150, {meta("2021-07-01", 2)}),
 ('A3', 'c', '安全', DATE '2020-05-01', '参与', 150, {meta("2021-07-01", 3)});
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw rows above, built by a real ``dbt build`` (models and their tests)."""
    path = tmp_path_factory.mktemp("dbt") / "wh.duckdb"
    con = duckdb.connect(str(path))
    for stmt in all_ddl():
        con.execute(stmt)
    # RAW lists the contract and lineage columns only: the pseudonym columns are added and filled
    # afterwards, the way an older warehouse is upgraded and the way the loader fills them.
    for t in TABLES:
        for name, _ in pseudonym_columns(t):
            con.execute(f"ALTER TABLE raw.{t.raw_table} DROP COLUMN {name}")
    con.execute(RAW)
    con.create_function("unionwh_pseudonym", lambda v: pii.pseudonym(PII_KEY, v), ["VARCHAR"], "VARCHAR")
    for t in TABLES:
        for stmt in upgrade_ddl(t):
            con.execute(stmt)
        for c in personal_columns(t):
            con.execute(
                f"UPDATE raw.{t.raw_table} SET {c}_pseudonym = unionwh_pseudonym(CAST({c} AS VARCHAR))"
            )
    con.close()
    settings = load_settings(warehouse=f"duckdb:///{path}")
    result = run_dbt(settings, ["build"], path.parent / "artifacts")
    assert result.success, result.failures
    assert result.counts.get("pass", 0) > 100
    return path


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def figures(warehouse: Path) -> dict[tuple[str, int], Decimal]:
    rows = query(warehouse, "select figure_id, report_year, value from marts.fig_annual_figures")
    return {(r[0], r[1]): Decimal(str(r[2])) for r in rows}


def test_every_figure_for_every_year(figures: dict[tuple[str, int], Decimal]) -> None:
    catalogue = yaml.safe_load((ROOT / "config" / "figures.yaml").read_text(encoding="utf-8"))["figures"]
    years = {y for _, y in figures}
    assert {2019, 2020, 2021} <= years
    assert set(figures) == {(f["id"], y) for f in catalogue for y in years}


@pytest.mark.parametrize(
    "figure_id,expected",
    [
        ("org.new_independent_unions", 1),  # U2 (U1 revoked in 2021)
        ("org.independent_unions_total", 2),  # U2, U3
        ("org.union_units_total", 4),  # E2 (U2), E5, E6 (U4 revoked 2022), E7 (ends 2022); not E1, E3
        ("org.unions_with_party_org", 2),  # U3, U4 (U2's newer version says 否)
        ("rights.consultations", 1),
        ("rights.disputes_mediated", 2),
        ("rights.disputes_resolved", 2),  # C2 corrected later
        ("rights.amount_recovered_yuan", Decimal("300.75")),
        ("welfare.festival_condolence", 1),  # the resubmitted ST1 workbook replaces the first
        ("welfare.pandemic_supply_recipients", 1),
        ("welfare.pandemic_supply_value_yuan", Decimal("1234.56")),
        ("welfare.relief_cases", 0),  # the new workbook's relief sheet is empty
        ("welfare.migrant_health_checks", 1),  # distinct 身份证号
        ("members.cards_issued_or_renewed", 2),
        ("funds.project_subsidy_enterprises", 1),  # P2 nets to zero
        ("funds.project_subsidy_yuan", 100),
        ("funds.cadre_allowance_yuan", Decimal("900.10")),
        ("funds.cadre_allowance_enterprises", 1),
        ("training.online_views", 6),
        ("training.offline_sessions", 1),
        ("training.offline_registrations", 3),
        ("honours.mayday_certificates", 1),
        ("honours.city_individuals", 1),
        ("events.culture_activities", 1),
        ("events.safety_participants", 150),
        ("comp.competitions", 0),
    ],
)
def test_figure_values_2021(
    figures: dict[tuple[str, int], Decimal], figure_id: str, expected: object
) -> None:
    assert figures[(figure_id, 2021)] == Decimal(str(expected))


def test_active_at_year_end_is_per_year(figures: dict[tuple[str, int], Decimal]) -> None:
    assert figures[("org.independent_unions_total", 2019)] == 1
    assert figures[("org.union_units_total", 2020)] == 4  # E3, E5, E6, E7 (E3 ends 2021-12-31)
    assert figures[("rights.consultations", 2020)] == 1


@pytest.mark.unit
def test_project_dir_is_the_repo_one() -> None:
    assert DBT_PROJECT_DIR == Path(ROOT) / "dbt_project"


@pytest.mark.unit
def test_figure_catalogue_seed_matches_figures_yaml() -> None:
    import csv
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_catalogue", DBT_PROJECT_DIR / "scripts" / "make_catalogue.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with (DBT_PROJECT_DIR / "seeds" / "figure_catalogue.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    assert rows == module.catalogue_rows(), "run dbt_project/scripts/make_catalogue.py"
    assert len(rows) == 42


def test_audit_exceptions_2023(warehouse: Path) -> None:
    """Every audit rule fires on exactly the rows that break it, and on nothing else."""
    rows = query(
        warehouse,
        "select rule, reference, amount_yuan from marts.audit_exceptions "
        "where report_year = 2023 order by rule, reference",
    )
    assert rows == [
        ("budget_overrun", "LZJT:2023", Decimal("50.00")),  # posted with no budget at all
        ("budget_overrun", "XMBZ:2023", Decimal("100.00")),  # 600 + 500 against 1000
        (
            "duplicate_relief",
            "welfare/2023-04-01/ST3_202303.xlsx#3",
            Decimal("1000.00"),
        ),  # 19 days after row 2
        ("reconciliation_gap", "JZ:2023", Decimal("-700.00")),  # postings 1300, ledger 2000
        ("relief_without_voucher", "welfare/2023-04-01/ST3_202303.xlsx#3", Decimal("1000.00")),  # R2
        ("unapproved_payment", "F3/1", Decimal("300.00")),  # JZ line without 审批单号
        ("unknown_or_revoked_payee", "F2/1", Decimal("500.00")),  # GH0000000001 revoked 2021-09-01
        ("unknown_or_revoked_payee", "F4/1", Decimal("50.00")),  # NOPE is nobody
    ]


def test_audit_reconciliation_and_budget_2023(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select project_code, ledger_total_yuan, postings_yuan, difference_yuan, is_gap "
        "from marts.audit_reconciliation where report_year = 2023 order by 1",
    ) == [
        ("JZ", Decimal("2000.00"), Decimal("1300.00"), Decimal("-700.00"), True),
        ("TJ", Decimal("100.00"), Decimal("100.00"), Decimal("0.00"), False),
    ]
    budget = query(
        warehouse,
        "select project_code, report_month, budget_yuan, actual_yuan, actual_to_date_yuan, "
        "is_over_budget from marts.audit_budget_vs_actual "
        "where report_year = 2023 and project_code in ('XMBZ', 'LZJT') "
        "and report_month in (1, 2, 3, 12) order by 1, 2",
    )
    assert budget == [
        ("LZJT", 1, None, Decimal("0.00"), Decimal("0.00"), False),
        ("LZJT", 2, None, Decimal("50.00"), Decimal("50.00"), True),
        ("LZJT", 3, None, Decimal("0.00"), Decimal("50.00"), True),
        ("LZJT", 12, None, Decimal("0.00"), Decimal("50.00"), True),
        ("XMBZ", 1, Decimal("1000.00"), Decimal("0.00"), Decimal("0.00"), False),
        ("XMBZ", 2, Decimal("1000.00"), Decimal("1100.00"), Decimal("1100.00"), True),
        ("XMBZ", 3, Decimal("1000.00"), Decimal("0.00"), Decimal("1100.00"), True),
        ("XMBZ", 12, Decimal("1000.00"), Decimal("0.00"), Decimal("1100.00"), True),
    ]


def test_union_history_is_scd2_in_updated_at_order(warehouse: Path) -> None:
    """hist_unions: every version in 更新时间 order, even when an older one was delivered later."""
    rows = query(
        warehouse,
        "select union_code, union_name, status, has_party_org, valid_from, valid_to, delivered_on "
        "from marts.hist_unions where union_code in ('GH0000000001', 'GH0000000002') "
        "order by union_code, valid_from",
    )
    assert [(r[0], r[1], r[2], r[3], str(r[4]), str(r[5]) if r[5] else None, str(r[6])) for r in rows] == [
        ("GH0000000001", "U1", "正常", True, "2021-02-01 08:00:00", "2021-09-01 08:00:00", "2021-04-01"),
        ("GH0000000001", "U1", "撤销", True, "2021-09-01 08:00:00", None, "2021-10-01"),
        ("GH0000000002", "U2 old", "正常", True, "2021-01-01 08:00:00", "2021-03-01 08:00:00", "2021-07-01"),
        ("GH0000000002", "U2", "正常", False, "2021-03-01 08:00:00", None, "2021-04-01"),
    ]


def test_coverage_history_by_delivery(warehouse: Path) -> None:
    rows = query(
        warehouse,
        "select uscc, end_on, valid_from, valid_to from marts.hist_coverage "
        "where union_code = 'GH0000000003' order by uscc, valid_from",
    )
    assert [(r[0], str(r[1]) if r[1] else None, str(r[2]), str(r[3]) if r[3] else None) for r in rows] == [
        ("E3", None, "2021-04-01", "2022-01-10"),
        ("E3", "2021-12-31", "2022-01-10", None),
        ("E7", "2022-01-05", "2022-01-10", None),
    ]


@pytest.fixture(scope="module")
def docs(warehouse: Path) -> tuple[dict, dict]:
    """``dbt docs generate`` over the built warehouse: (manifest, catalog)."""
    import json

    artifacts = warehouse.parent / "docs"
    result = run_dbt(load_settings(warehouse=f"duckdb:///{warehouse}"), ["docs", "generate"], artifacts)
    assert result.success, result.failures
    return (
        json.loads((artifacts / "manifest.json").read_text(encoding="utf-8")),
        json.loads((artifacts / "catalog.json").read_text(encoding="utf-8")),
    )


def test_every_model_and_column_is_documented(docs: tuple[dict, dict]) -> None:
    """Every column the warehouse actually has (dbt's catalog) is described in the YAML docs."""
    manifest, catalog = docs
    models = {k: n for k, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert len(models) > 40
    missing = []
    for key, node in models.items():
        if not node["description"].strip():
            missing.append(key)
        documented = {c: v["description"].strip() for c, v in node["columns"].items()}
        for col in catalog["nodes"][key]["columns"]:
            if not documented.get(col.lower()):
                missing.append(f"{key}.{col}")
    assert missing == []


def test_every_mart_key_is_tested(docs: tuple[dict, dict]) -> None:
    """Each mart has a uniqueness and a not-null test on its key; every fact relates to its dimensions."""
    manifest, _ = docs
    tests: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test":
            for parent in node["depends_on"]["nodes"]:
                tests.setdefault(parent, set()).add(
                    node["test_metadata"]["name"] if node.get("test_metadata") else ""
                )
    marts = [k for k, n in manifest["nodes"].items() if n["resource_type"] == "model" and "marts" in n["fqn"]]
    assert len(marts) >= 20
    for key in marts:
        kinds = tests.get(key, set())
        assert {"unique", "not_null"} <= kinds or "unique_combination" in kinds, f"{key}: {kinds}"
        if ".fct_" in key:
            assert "relationships" in kinds, key


def test_marts_analysts_and_the_report_read_have_enforced_contracts(docs: tuple[dict, dict]) -> None:
    manifest, _ = docs
    contracted = {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"].get("contract", {}).get("enforced")
    }
    core = {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["name"].startswith(("dim_", "fct_"))
    }
    assert len(core) == 16
    assert core | {"fig_annual_figures"} <= contracted


def test_every_figure_drills_down_to_its_source_rows(warehouse: Path) -> None:
    """fig_figure_rows lists exactly the rows behind each figure: recomputing every value from
    them gives the mart's value, and source_rows counts them."""
    mismatches = query(
        warehouse,
        """
        with recomputed as (
            select figure_year_id,
                   case max(measure) when 'sum' then sum(amount)
                        when 'distinct' then count(distinct count_key) else count(*) end as value,
                   count(*) as n
            from marts.fig_figure_rows group by figure_year_id
        )
        select f.figure_year_id, f.value, r.value, f.source_rows, r.n
        from marts.fig_annual_figures as f
        left join recomputed as r on r.figure_year_id = f.figure_year_id
        where f.value <> coalesce(r.value, 0) or f.source_rows <> coalesce(r.n, 0)""",
    )
    assert mismatches == []
    rows = query(
        warehouse,
        "select source_model, source_ref from marts.fig_figure_rows "
        "where figure_year_id = 'rights.disputes_resolved:2021' order by source_ref",
    )
    assert rows == [("stg_rights__cases", "C2"), ("stg_rights__cases", "C3")]
    assert query(
        warehouse,
        "select source_rows, models_read from marts.fig_annual_figures "
        "where figure_year_id = 'funds.project_subsidy_yuan:2021'",
    ) == [(5, "int_finance_postings")]
