"""dbt models on a real DuckDB file with hand-made raw rows: the contract's rules, figure by figure."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.settings import load_settings
from flows.warehouse.dbt import DBT_PROJECT_DIR, run_dbt
from flows.warehouse.ddl import all_ddl

from tests.support import ROOT

M = "'l', 'x', 'f', 'h'"  # _load_id, _source, _file_name, _file_sha256 placeholders


def meta(delivery: str, row: int, file: str = "f") -> str:
    return f"'l', 'x', '{file}', 'h', DATE '{delivery}', {row}"


RAW = f"""
-- unions: U1 independent founded 2021, re-sent later as revoked in 2021 -> not new, not active
insert into raw.registry__unions values
 ('GH0000000001', 'U1', '独立建会', 'E1', DATE '2021-02-01', true, '正常', null, TIMESTAMP '2021-02-01 08:00:00', {meta('2021-04-01', 2)}),
 ('GH0000000001', 'U1', '独立建会', 'E1', DATE '2021-02-01', true, '撤销', DATE '2021-09-01', TIMESTAMP '2021-09-01 08:00:00', {meta('2021-10-01', 2)}),
 ('GH0000000002', 'U2', '独立建会', 'E2', DATE '2021-03-01', false, '正常', null, TIMESTAMP '2021-03-01 08:00:00', {meta('2021-04-01', 3)}),
 ('GH0000000003', 'U3', '独立建会', 'E3', DATE '2019-03-01', true, '正常', null, TIMESTAMP '2019-03-01 08:00:00', {meta('2021-04-01', 4)}),
 ('GH0000000004', 'U4', '联合建会', null, DATE '2020-03-01', true, '撤销', DATE '2022-03-01', TIMESTAMP '2022-03-01 08:00:00', {meta('2022-04-01', 5)}),
 -- an older version delivered later must not win over a newer 更新时间
 ('GH0000000002', 'U2 old', '独立建会', 'E2', DATE '2021-03-01', true, '正常', null, TIMESTAMP '2021-01-01 08:00:00', {meta('2021-07-01', 2)});
insert into raw.registry__coverage values
 ('GH0000000001', 'E1', DATE '2021-02-01', null, {meta('2021-04-01', 2)}),
 ('GH0000000002', 'E2', DATE '2021-03-01', null, {meta('2021-04-01', 3)}),
 ('GH0000000004', 'E5', DATE '2020-03-01', null, {meta('2021-04-01', 4)}),
 ('GH0000000004', 'E6', DATE '2020-03-01', null, {meta('2021-04-01', 5)}),
 ('GH0000000003', 'E3', DATE '2019-03-01', null, {meta('2021-04-01', 6)}),
 ('GH0000000003', 'E3', DATE '2019-03-01', DATE '2021-12-31', {meta('2022-01-10', 2)}),
 ('GH0000000003', 'E7', DATE '2019-03-01', DATE '2022-01-05', {meta('2022-01-10', 3)});
-- cases: C2 corrected from 调解中 to 成功 in a later delivery
insert into raw.rights__cases values
 ('C1', '咨询', DATE '2021-05-01', null, null, null, null, null, {meta('2021-07-01', 2)}),
 ('C2', '劳动争议', DATE '2021-05-02', null, null, '调解中', null, null, {meta('2021-07-01', 3)}),
 ('C3', '劳动争议', DATE '2021-05-03', null, null, '成功', DATE '2021-06-01', 100.50, {meta('2021-07-01', 4)}),
 ('C4', '咨询', DATE '2020-12-31', null, null, null, null, null, {meta('2021-07-01', 5)}),
 ('C2', '劳动争议', DATE '2021-05-02', null, null, '成功', DATE '2021-12-01', 200.25, {meta('2022-01-15', 2)});
-- welfare: ST1 202103 delivered twice; the second workbook has one condolence row and no relief rows
insert into raw.welfare__condolence values
 ('ST1', '202103', DATE '2021-03-05', '两节慰问', '不返乡职工', 'a', null, null, '现金', 500, {meta('2021-04-01', 2, 'welfare/2021-04-01/ST1_202103.xlsx')}),
 ('ST1', '202103', DATE '2021-03-06', '两节慰问', '农民工', 'b', null, null, '现金', 500, {meta('2021-04-01', 3, 'welfare/2021-04-01/ST1_202103.xlsx')}),
 ('ST1', '202103', DATE '2021-03-07', '疫情防控慰问', '医护人员', 'c', null, null, '物资', 300, {meta('2021-04-01', 4, 'welfare/2021-04-01/ST1_202103.xlsx')}),
 ('ST1', '202103', DATE '2021-03-05', '两节慰问', '不返乡职工', 'a', null, null, '现金', 500, {meta('2021-07-01', 2, 'welfare/2021-07-01/ST1_202103.xlsx')}),
 ('ST2', '202104', DATE '2021-04-05', '疫情防控慰问', '医护人员', 'd', null, null, '物资', 1234.56, {meta('2021-07-01', 2, 'welfare/2021-07-01/ST2_202104.xlsx')});
insert into raw.welfare__relief values
 ('ST1', '202103', DATE '2021-03-05', 'a', '110105199001011234', '大病', 1000, 'A1', {meta('2021-04-01', 2, 'welfare/2021-04-01/ST1_202103.xlsx')});
insert into raw.welfare__health_checks values
 ('ST2', '202104', DATE '2021-04-05', 'd', '110105199001011234', '农民工', '医院', 100, {meta('2021-07-01', 2, 'welfare/2021-07-01/ST2_202104.xlsx')}),
 ('ST2', '202104', DATE '2021-04-06', 'd', '110105199001011234', '农民工', '医院', 100, {meta('2021-07-01', 3, 'welfare/2021-07-01/ST2_202104.xlsx')});
insert into raw.welfare__workbooks values
 ('ST1', '202103', 'l1', 'welfare/2021-04-01/ST1_202103.xlsx', 'h1', DATE '2021-04-01'),
 ('ST1', '202103', 'l2', 'welfare/2021-07-01/ST1_202103.xlsx', 'h2', DATE '2021-07-01'),
 ('ST2', '202104', 'l3', 'welfare/2021-07-01/ST2_202104.xlsx', 'h3', DATE '2021-07-01');
-- vouchers: P1 paid 100 (a wrong 60 line reversed, then 100); P2 paid and fully reversed; P3 LZJT
insert into raw.finance__vouchers values
 ('V1', 1, DATE '2021-05-01', '5001', 'x', 'x', 60, 0, 'XMBZ', 'P1', 'A', {meta('2021-07-01', 2)}),
 ('V2', 1, DATE '2021-05-02', '5001', 'x', 'x', 0, 60, 'XMBZ', 'P1', 'A', {meta('2021-07-01', 3)}),
 ('V3', 1, DATE '2021-05-03', '5001', 'x', 'x', 100, 0, 'XMBZ', 'P1', 'A', {meta('2021-07-01', 4)}),
 ('V4', 1, DATE '2021-05-04', '5001', 'x', 'x', 70, 0, 'XMBZ', 'P2', 'A', {meta('2021-07-01', 5)}),
 ('V5', 1, DATE '2021-05-05', '5001', 'x', 'x', 0, 70, 'XMBZ', 'P2', 'A', {meta('2021-07-01', 6)}),
 ('V6', 1, DATE '2021-05-06', '5001', 'x', 'x', 800.10, 0, 'LZJT', 'P3', 'A', {meta('2021-07-01', 7)}),
 -- a line re-delivered later with a corrected amount: latest delivery wins
 ('V6', 1, DATE '2021-05-06', '5001', 'x', 'x', 900.10, 0, 'LZJT', 'P3', 'A', {meta('2021-10-01', 2)});
-- members: member 2 soft-deleted later; cards count regardless
insert into raw.members__member_card values
 (1, 1, 'K1', 'new', DATE '2021-03-01', TIMESTAMP '2021-03-01 08:00:00', {meta('2022-01-01', 1)}),
 (2, 2, 'K2', 'renew', DATE '2021-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta('2022-01-01', 2)}),
 (2, 2, 'K2', 'renew', DATE '2021-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta('2022-01-02', 1)}),
 (3, 2, 'K3', 'new', DATE '2020-03-02', TIMESTAMP '2021-03-02 08:00:00', {meta('2022-01-02', 2)});
insert into raw.members__member values
 (1, '110105199001011234', 'a', null, 'GH0000000001', 'standard', false, false, DATE '2020-01-01', TIMESTAMP '2021-01-01 00:00:00', null, {meta('2022-01-01', 1)}),
 (2, '110105199001011234', 'b', null, 'GH0000000001', 'courier', true, false, DATE '2020-01-01', TIMESTAMP '2021-01-01 00:00:00', null, {meta('2022-01-01', 2)}),
 (2, '110105199001011234', 'b', null, 'GH0000000001', 'courier', true, false, DATE '2020-01-01', TIMESTAMP '2021-06-01 00:00:00', TIMESTAMP '2021-06-01 00:00:00', {meta('2022-01-02', 3)});
-- training: online session with 2 attendees (1 attended) and 5 replays; offline with 3 registrations
insert into raw.training__sessions values
 ('S1', 'on', 'online', DATE '2021-06-01', DATE '2021-06-01', {meta('2021-07-01', 1)}),
 ('S2', 'off', 'offline', DATE '2021-06-02', DATE '2021-06-03', {meta('2021-07-01', 2)});
insert into raw.training__attendance values
 ('S1', null, 'a', 'GH0000000001', true, true, 2, {meta('2021-07-01', 1)}),
 ('S1', null, 'b', 'GH0000000001', true, false, 3, {meta('2021-07-01', 2)}),
 ('S2', null, 'a', 'GH0000000001', true, true, 0, {meta('2021-07-01', 3)}),
 ('S2', null, 'b', 'GH0000000001', true, false, 0, {meta('2021-07-01', 4)}),
 ('S2', null, 'c', 'GH0000000001', false, false, 0, {meta('2021-07-01', 5)}),
 ('S2', null, 'd', 'GH0000000001', true, false, 0, {meta('2021-07-01', 6)});
insert into raw.events__honours values
 ('H1', 2021, '五一劳动奖状', '区级', 'x', {meta('2021-07-01', 1)}),
 ('H2', 2021, '五一劳动奖状', '市级', 'x', {meta('2021-07-01', 2)}),
 ('H3', 2021, '市级先进个人', '市级', 'x', {meta('2021-07-01', 3)});
insert into raw.events__activities values
 ('A1', 'a', '文体', DATE '2021-05-01', '举办', 100, {meta('2021-07-01', 1)}),
 ('A2', 'b', '安全', DATE '2021-05-01', '参与', 150, {meta('2021-07-01', 2)}),
 ('A3', 'c', '安全', DATE '2020-05-01', '参与', 150, {meta('2021-07-01', 3)});
"""


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Decimal]:
    path = tmp_path_factory.mktemp("dbt") / "wh.duckdb"
    con = duckdb.connect(str(path))
    for stmt in all_ddl():
        con.execute(stmt)
    con.execute(RAW)
    con.close()
    settings = load_settings(warehouse=f"duckdb:///{path}")
    result = run_dbt(settings, ["build"], path.parent / "artifacts")
    assert result.success, result.failures
    assert result.counts.get("pass", 0) > 100
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("select figure_id, report_year, value from marts.fig_annual_figures").fetchall()
    con.close()
    return {(r[0], r[1]): Decimal(str(r[2])) for r in rows}


def test_every_figure_for_every_year(figures: dict[tuple[str, int], Decimal]) -> None:
    catalogue = yaml.safe_load((ROOT / "config" / "figures.yaml").read_text(encoding="utf-8"))["figures"]
    years = {y for _, y in figures}
    assert {2019, 2020, 2021} <= years
    assert set(figures) == {(f["id"], y) for f in catalogue for y in years}


@pytest.mark.parametrize("figure_id,expected", [
    ("org.new_independent_unions", 1),          # U2 (U1 revoked in 2021)
    ("org.independent_unions_total", 2),        # U2, U3
    ("org.union_units_total", 4),               # E2 (U2), E5, E6 (U4 revoked 2022), E7 (ends 2022); not E1, E3
    ("org.unions_with_party_org", 2),           # U3, U4 (U2's newer version says 否)
    ("rights.consultations", 1),
    ("rights.disputes_mediated", 2),
    ("rights.disputes_resolved", 2),            # C2 corrected later
    ("rights.amount_recovered_yuan", Decimal("300.75")),
    ("welfare.festival_condolence", 1),         # the resubmitted ST1 workbook replaces the first
    ("welfare.pandemic_supply_recipients", 1),
    ("welfare.pandemic_supply_value_yuan", Decimal("1234.56")),
    ("welfare.relief_cases", 0),                # the new workbook's relief sheet is empty
    ("welfare.migrant_health_checks", 1),       # distinct 身份证号
    ("members.cards_issued_or_renewed", 2),
    ("funds.project_subsidy_enterprises", 1),   # P2 nets to zero
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
])
def test_figure_values_2021(figures: dict[tuple[str, int], Decimal], figure_id: str, expected: object) -> None:
    assert figures[(figure_id, 2021)] == Decimal(str(expected))


def test_active_at_year_end_is_per_year(figures: dict[tuple[str, int], Decimal]) -> None:
    assert figures[("org.independent_unions_total", 2019)] == 1
    assert figures[("org.union_units_total", 2020)] == 4  # E3, E5, E6, E7 (E3 ends 2021-12-31)
    assert figures[("rights.consultations", 2020)] == 1


def test_project_dir_is_the_repo_one() -> None:
    assert DBT_PROJECT_DIR == Path(ROOT) / "dbt_project"


def test_figure_catalogue_seed_matches_figures_yaml() -> None:
    import csv
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_catalogue", DBT_PROJECT_DIR / "scripts" / "make_catalogue.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with (DBT_PROJECT_DIR / "seeds" / "figure_catalogue.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    assert rows == module.catalogue_rows(), "run dbt_project/scripts/make_catalogue.py"
    assert len(rows) == 42
