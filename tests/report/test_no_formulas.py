"""No live formulas in any spreadsheet or CSV we write (issue 18, class 4; flows/report/cells.py).

Text from a delivery that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return (a budget
item's 项目名称, a 凭证号, a 摘要) is data wherever we write it: in the audit workbook a string cell
holding exactly that text (no ``<f>`` element in the sheet's XML), in a CSV the text with a
leading ``'`` (OWASP), while numbers stay numbers. Writers covered: ``write_workbook`` (``unionwh
audit``, the annual pack), ``figures_csv`` (``unionwh figures --format csv``) and the
``figure-rows-<year>.csv`` of ``unionwh report publish`` (and ``report diff``, which reads it).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest
import sqlalchemy as sa

from flows import schema
from flows.report.audit import (
    BUDGET_SHEET,
    BUDGET_TABLE,
    EXCEPTION_RULES,
    EXCEPTION_TABLES,
    RECONCILIATION_SHEET,
    RECONCILIATION_TABLE,
    TRACE_COLUMNS,
    Audit,
    rule_sheet,
    write_workbook,
)
from flows.report.cells import csv_field, csv_row, csv_text
from flows.report.format import figures_csv
from flows.report.publish import _rows_csv, diff, figure_rows
from flows.warehouse.figures import Figure
from tests.support import Env
from tests.warehouse.pipeline_support import write_delivery_csv

HOSTILE = (
    "=1+1",
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil","click")',
    "=cmd|' /C calc'!A0",
    "-",
    "=",
)
"""Each prefix OWASP lists, the classic payloads, and the one-character edge cases."""
HARMLESS = ("V1/1", "项目化补助", " =1", "'=1", "1+1", "")


def sheet_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


def ooxml_text(text: str) -> str:
    """A string as Excel reads it: XlsxWriter stores a control character such as CR as the
    OOXML escape ``_x000D_``, which openpyxl leaves as it is."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def assert_no_formula_elements(path: Path) -> None:
    for name, xml in sheet_xml(path).items():
        assert not re.search(r"<(\w+:)?f[ >/]", xml), f"{name} holds a formula"


# ----------------------------------------------------------------------------- the helper
@pytest.mark.unit
@pytest.mark.parametrize("text", HOSTILE)
def test_formula_like_text_gets_a_quote_in_csv(text: str) -> None:
    assert csv_field(text) == "'" + text


@pytest.mark.unit
@pytest.mark.parametrize("text", HARMLESS)
def test_other_text_is_written_as_it_is(text: str) -> None:
    assert csv_field(text) == text


@pytest.mark.unit
def test_numbers_stay_numbers_in_csv() -> None:
    values = [-12.5, Decimal("-0.01"), -7, 0, True, None, date(2021, 3, 1)]
    assert csv_row(values) == values
    out = io.StringIO()
    csv.writer(out).writerow(csv_row([-12.5, Decimal("-0.01"), "-0.01"]))
    assert out.getvalue().strip() == "-12.5,-0.01,'-0.01"  # text that looks like a number is still text


@pytest.mark.unit
def test_a_carriage_return_inside_a_field_never_starts_a_new_row() -> None:
    """With ``\n`` line ends the csv module leaves a lone CR unquoted; readers end the row there and
    the rest (here a DDE payload) would open a new row as a formula."""
    text = "V1\r=cmd|' /C calc'!A0"
    written = csv_text([["ref", "amount"], csv_row([text, -3.5]), csv_row(["V2", -1])])
    rows = list(csv.reader(io.StringIO(written, newline="")))
    assert rows == [["ref", "amount"], [text, "-3.5"], ["V2", "-1"]]
    assert written.splitlines()[1:] == ['"V1', "=cmd|' /C calc'!A0\",-3.5", "V2,-1"]  # CR inside quotes


# ----------------------------------------------------------------------------- audit workbook
def hostile_audit() -> Audit:
    """An Audit as ``fetch_audit`` returns it, with hostile text in every text column of every
    sheet (one exception row per rule and payload), and negative amounts."""
    exceptions = []
    for rule, _, _ in EXCEPTION_RULES:
        for i, text in enumerate(HOSTILE):
            exceptions.append(
                {
                    "exception_id": f"{rule}:{text}",
                    "rule": rule,
                    "project_code": text,
                    "reference": text,
                    "event_date": date(2021, 3, 1),
                    "amount_yuan": Decimal("-12.50"),
                    "reason_zh": text,
                    "reason_en": text,
                    "source_file": text,
                    "source_row": i + 2,
                    **{c: text for c in TRACE_COLUMNS},
                    "line_no": i + 1,
                    "posting_date": date(2021, 3, 1),
                }
            )
    reconciliation = [
        {
            "project_code": text,
            "ledger_total_yuan": Decimal("-1.00"),
            "ledger_rows": 1,
            "postings_yuan": Decimal("2.00"),
            "posting_lines": 1,
            "difference_yuan": Decimal("-3.00"),
            "is_gap": True,
        }
        for text in HOSTILE
    ]
    budget = [
        {
            "project_code": text,
            "report_month": 3,
            "project_name": text,
            "budget_yuan": Decimal("100.00"),
            "actual_yuan": Decimal("-5.00"),
            "actual_to_date_yuan": Decimal("-5.00"),
            "remaining_yuan": Decimal("105.00"),
            "is_over_budget": False,
        }
        for text in HOSTILE
    ]
    return Audit(2021, exceptions, reconciliation, budget)


@pytest.mark.unit
def test_audit_workbook_holds_hostile_text_as_text(tmp_path: Path) -> None:
    """The real ``write_workbook``: every payload in every text column of every check's table
    comes back as exactly that text in a string cell; no sheet holds a formula; amounts are
    still (negative) numbers. (Each sheet: the English column names in row 3, the table's
    header in row 4, its rows from row 5.)"""
    audit = hostile_audit()
    out = write_workbook(audit, tmp_path / "audit-2021.xlsx")
    assert_no_formula_elements(out)
    with zipfile.ZipFile(out) as z:
        strings = z.read("xl/sharedStrings.xml").decode("utf-8")
    assert "<t>=cmd|' /C calc'!A0</t>" in strings  # the text itself, in the shared strings

    wb = openpyxl.load_workbook(out)
    sheets = [
        (RECONCILIATION_SHEET, RECONCILIATION_TABLE, audit.reconciliation),
        (BUDGET_SHEET, BUDGET_TABLE, audit.budget),
    ]
    sheets += [
        (
            rule_sheet(rule),
            EXCEPTION_TABLES[rule],
            [{**r, "source": f"{r['source_file']}#{r['source_row']}"} for r in audit.by_rule()[rule]],
        )
        for rule, _, _ in EXCEPTION_RULES
    ]
    checked = 0
    for title, columns, rows in sheets:
        ws = wb[title]
        assert [c.value for c in ws[3]] == [c.key for c in columns]
        for expected, cells in zip(rows, ws.iter_rows(min_row=5), strict=True):
            for column, cell in zip(columns, cells, strict=True):
                value = expected[column.key]
                if isinstance(value, str):
                    assert (ooxml_text(cell.value), cell.data_type) == (value, "s"), (
                        title,
                        column.key,
                        cell.coordinate,
                    )
                    checked += 1
                elif isinstance(value, Decimal):
                    assert (cell.value, cell.data_type) == (float(value), "n")
    text_columns = sum(1 for cols in EXCEPTION_TABLES.values() for c in cols if c.kind == "text")
    assert (
        checked == text_columns * len(HOSTILE) + len(HOSTILE) * 3
    )  # + project_code, project_code, project_name
    assert text_columns >= 20
    wb.close()


# ----------------------------------------------------------------------------- figures CSV
@pytest.mark.unit
def test_figures_csv_quotes_formula_like_labels_and_keeps_values_numbers() -> None:
    figures = [Figure(f"id{i}", Decimal("-1234.5"), text, text, text) for i, text in enumerate(HOSTILE)]
    figures.append(Figure("funds.x", Decimal(-7), "元", "=SUM(A1)", "@x"))
    rows = list(csv.reader(io.StringIO(figures_csv(2021, figures))))
    assert rows[0] == ["year", "id", "value", "unit", "zh", "en"]
    for text, row in zip(HOSTILE, rows[1:], strict=False):
        assert row[2:] == ["-1234.5", "'" + text, "'" + text, "'" + text]
    assert rows[-1] == ["2021", "funds.x", "-7.0", "元", "'=SUM(A1)", "'@x"]


# ----------------------------------------------------------------------------- figure-rows CSV
def figure_rows_warehouse(path: Path, refs: list[str]) -> sa.Engine:
    """A real DuckDB file with the two marts ``report diff`` reads: one figure whose source rows
    are vouchers with the given references, each 10.00 (its value: their sum)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(
        "CREATE OR REPLACE TABLE marts.fig_figure_rows (figure_id VARCHAR, report_year INTEGER, "
        "source_model VARCHAR, source_ref VARCHAR, count_key VARCHAR, amount DECIMAL(18, 2))"
    )
    con.execute(
        "CREATE OR REPLACE TABLE marts.fig_annual_figures (figure_id VARCHAR, report_year INTEGER, "
        "value DECIMAL(18, 2), label_zh VARCHAR, unit VARCHAR)"
    )
    for ref in refs:
        con.execute(
            "INSERT INTO marts.fig_figure_rows VALUES ('funds.x', 2021, 'int_finance_postings', ?, ?, -10)",
            [ref, ref],
        )
    con.execute(
        "INSERT INTO marts.fig_annual_figures VALUES ('funds.x', 2021, ?, '项目化补助', '元')",
        [-10 * len(refs)],
    )
    con.close()
    return sa.create_engine(f"duckdb:///{path}")


@pytest.mark.unit
def test_published_figure_rows_quote_formula_like_references_and_diff_reads_them_back(tmp_path: Path) -> None:
    """figure-rows-<year>.csv (written as ``publish`` writes it) holds each reference with a
    leading quote and the negative amounts as numbers; ``report diff`` compares it with the
    warehouse in that form, so a republished-as-is year shows no change, and a new row shows
    as the one row added."""
    refs = [f"{text}/1" for text in HOSTILE]
    engine = figure_rows_warehouse(tmp_path / "wh.duckdb", refs)
    folder = tmp_path / "published" / "2021"
    folder.mkdir(parents=True)
    (folder / "figure-rows-2021.csv").write_text(_rows_csv(figure_rows(engine, 2021)), encoding="utf-8")
    published = {
        "year": 2021,
        "figures": [
            {"id": "funds.x", "value": -10.0 * len(refs), "unit": "元", "zh": "项目化补助", "en": ""}
        ],
    }
    (folder / "figures-2021.json").write_text(json.dumps(published), encoding="utf-8")
    (folder / "publication.json").write_text('{"published_at": "2026-11-27T00:00:00"}', encoding="utf-8")
    engine.dispose()

    written = list(
        csv.reader(io.StringIO((folder / "figure-rows-2021.csv").read_bytes().decode("utf-8"), newline=""))
    )
    assert sorted(r[2] for r in written[1:]) == sorted("'" + ref for ref in refs)
    assert sorted(r[3] for r in written[1:]) == sorted("'" + ref for ref in refs)
    assert {r[4] for r in written[1:]} == {"-10.00"}

    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        assert diff(engine, 2021, tmp_path / "published").changes == []
    finally:
        engine.dispose()
    engine = figure_rows_warehouse(tmp_path / "wh.duckdb", [*refs, "=NEW()/1"])
    try:
        (change,) = diff(engine, 2021, tmp_path / "published").changes
    finally:
        engine.dispose()
    assert change.added == [("funds.x", "int_finance_postings", "'=NEW()/1", "'=NEW()/1", "-10.00")]
    assert change.removed == [] and change.changed == []


# ----------------------------------------------------------------------------- end to end
PAYLOADS = ('=HYPERLINK("http://evil","click")', "=cmd|' /C calc'!A0", "@SUM(A1)", "+1+1", "-2+3")


@pytest.mark.e2e
def test_a_hostile_finance_delivery_never_becomes_a_formula(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One real nightly run on a landing zone holding only a finance delivery whose 项目名称,
    凭证号, 科目名称 and 摘要 are formula payloads (five XMBZ lines without 审批单号: five
    unapproved payments), then ``unionwh audit``, ``figures --format csv``, ``report publish``
    and ``report diff`` on that DuckDB warehouse."""
    from flows.cli import main
    from flows.nightly import nightly_load

    delivery = tmp_path / "landing" / "finance" / "2021-04-01"
    write_delivery_csv(  # in finance's encoding (GB18030), as the contract says
        delivery / "budget.csv",
        ["年度", "项目编码", "项目名称", "预算金额"],
        [[2021, code, text, "100.00"] for code, text in zip(("XMBZ", "LZJT", "TJ", "JZ", "LJWW"), PAYLOADS)],
    )
    write_delivery_csv(
        delivery / "vouchers.csv",
        [c.header for c in schema.table("finance", "vouchers").columns],
        [
            [text, 1, f"2021-03-0{i + 1}", "5011", text, text, "10.00", "0.00", "XMBZ", "", ""]
            for i, text in enumerate(PAYLOADS)
        ],
    )
    env = {
        "UNIONWH_HOME": str(tmp_path),
        "UNIONWH_LANDING": str(tmp_path / "landing"),
        "UNIONWH_WAREHOUSE": f"duckdb:///{tmp_path / 'wh.duckdb'}",
        "UNIONWH_OUTPUT": str(tmp_path / "runs"),
        "UNIONWH_PUBLISHED": str(tmp_path / "published"),
        "UNIONWH_PII_KEY": "no-formulas-test-key-0123456789",
        "UNIONWH_REPORT_YEAR": "2021",
    }
    out = tmp_path / "audit-2021.xlsx"
    with Env(**env):
        assert nightly_load(year=2021).status == "succeeded"
        assert main(["audit", "--year", "2021", "--out", str(out)]) == 0
        capsys.readouterr()
        assert main(["figures", "--year", "2021", "--format", "csv"]) == 0
        figures = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        assert main(["report", "publish", "--year", "2021"]) == 0
        capsys.readouterr()
        assert main(["report", "diff", "--year", "2021"]) == 0
        assert "no figure would change" in capsys.readouterr().out

    assert_no_formula_elements(out)
    wb = openpyxl.load_workbook(out)
    names = {
        cell.value: cell.data_type for cell in wb[BUDGET_SHEET]["C"][4:]
    }  # project_name, below the header
    assert set(PAYLOADS) <= set(names) and set(names.values()) == {"s"}
    refs = [r[:2] for r in wb[rule_sheet("unapproved_payment")].iter_rows(min_row=5, values_only=True)]
    assert sorted(refs) == sorted((text, 1) for text in PAYLOADS)  # 凭证号 and 行号
    wb.close()
    assert {r[2] for r in figures[1:] if r[1] == "funds.project_subsidy_yuan"} == {"50.0"}
    written = (tmp_path / "published" / "2021" / "figure-rows-2021.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(written, newline="")))
    refs_written = {r[2] for r in rows[1:] if r[0] == "funds.project_subsidy_yuan"}
    assert refs_written == {f"'{text}/1" for text in PAYLOADS}
