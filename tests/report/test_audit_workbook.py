"""The fund-audit workbook as finance expects it (issue 20, part 1): read back with openpyxl.

One real demo warehouse (the demo landing zone through a real nightly run) and one real
``unionwh audit`` of it; every count and sum the workbook states is compared with a query of the
warehouse's marts, and the workbook is printed to PDF by LibreOffice (page count, title, footer).
The pure helpers (widths, checks, the federation's name, publication) are tested without a run;
the tests on the demo year are marked e2e.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from flows.report.audit import (
    BUDGET_SHEET,
    COVER_SHEET,
    DEFAULT_FEDERATION,
    EXCEPTION_RULES,
    EXCEPTION_TABLES,
    MONEY,
    RECONCILIATION_SHEET,
    Audit,
    AuditMeta,
    checks,
    column_width,
    display_width,
    federation_of,
    publication,
    rule_sheet,
    write_workbook,
)
from tests.support import ROOT, Demo2021, Env

SHEETS = [COVER_SHEET, RECONCILIATION_SHEET, BUDGET_SHEET, *(rule_sheet(r) for r, _, _ in EXCEPTION_RULES)]
HEADER_ROW = 4  # 1-based: title, notes, English names, then the table's Chinese header
ID_SHAPED = re.compile(r"(^|[^0-9a-fA-F])[0-9]{17}[0-9Xx]($|[^0-9a-fA-F])")


# ----------------------------------------------------------------------------- pure helpers
@pytest.mark.unit
def test_display_width_counts_a_cjk_character_as_two() -> None:
    assert display_width("XMBZ") == 4
    assert display_width("项目化补助") == 10
    assert display_width("收款方 A1") == 9
    assert column_width(["项目化补助"], least=6, most=40) == 12.0  # 10 + 2 of padding
    assert column_width(["x"], least=6) == 6.0 and column_width(["长" * 50], most=40) == 40.0


@pytest.mark.unit
def test_the_federation_name_comes_from_the_summary_template() -> None:
    template = (ROOT / "config" / "report" / "summary.zh.md").read_text(encoding="utf-8")
    assert federation_of(template) == "天津港保税区总工会" == DEFAULT_FEDERATION
    assert federation_of("<!-- # 某工会{year} -->\n# 某区总工会{year}年工作总结\n") == "某区总工会"
    assert federation_of("no title") == DEFAULT_FEDERATION


@pytest.mark.unit
def test_publication_reads_the_manifest_hash_and_creates_nothing(tmp_path: Path) -> None:
    assert publication(tmp_path / "published", 2021) == (False, None, None)
    assert not (tmp_path / "published").exists()
    folder = tmp_path / "published" / "2021"
    folder.mkdir(parents=True)
    (folder / "MANIFEST.sha256").write_text("abc  summary-2021.md\n", encoding="utf-8")
    (folder / "publication.json").write_text(
        json.dumps({"published_at": "2022-03-01T09:00:00"}), encoding="utf-8"
    )
    digest = hashlib.sha256(b"abc  summary-2021.md\n").hexdigest()
    assert publication(tmp_path / "published", 2021) == (True, "2022-03-01T09:00:00", digest)


def small_audit(meta: AuditMeta) -> Audit:
    exceptions = [
        {
            "exception_id": "budget_overrun:XMBZ:2021",
            "rule": "budget_overrun",
            "project_code": "XMBZ",
            "reference": "XMBZ:2021",
            "event_date": None,
            "amount_yuan": Decimal("12.50"),
            "reason_zh": "项目XMBZ全年支出超出预算",
            "reason_en": "over",
            "source_file": None,
            "source_row": None,
        }
    ]
    reconciliation = [
        {
            "project_code": "TJ",
            "ledger_total_yuan": Decimal(100),
            "ledger_rows": 2,
            "postings_yuan": Decimal(280),
            "posting_lines": 3,
            "difference_yuan": Decimal(180),
            "is_gap": True,
        }
    ]
    budget = [
        {
            "project_code": "XMBZ",
            "report_month": m,
            "project_name": "项目化补助",
            "budget_yuan": Decimal(100),
            "actual_yuan": Decimal(10 if m < 12 else 2.5),
            "actual_to_date_yuan": Decimal(10 * m),
            "remaining_yuan": Decimal(100 - 10 * m),
            "is_over_budget": m > 10,
        }
        for m in range(1, 13)
    ]
    return Audit(2021, exceptions, reconciliation, budget, meta)


@pytest.mark.unit
def test_checks_count_each_rule_and_sum_its_amounts() -> None:
    got = {c.key: (c.exceptions, c.amount) for c in checks(small_audit(AuditMeta()))}
    assert got["reconciliation"] == (1, Decimal(180))
    assert got["budget_vs_actual"] == (1, None)  # one project over budget (in two months)
    assert got["budget_overrun"] == (1, Decimal("12.50"))
    assert got["duplicate_relief"] == (0, Decimal(0))
    assert len(got) == 2 + len(EXCEPTION_RULES)


@pytest.mark.unit
def test_the_cover_states_a_published_year_with_its_manifest_hash(tmp_path: Path) -> None:
    meta = AuditMeta(
        federation="某区总工会",
        run_id="20220301T020000-bbbbbb",
        run_time=datetime(2022, 3, 1, 2, 5),
        warehouse="postgresql+psycopg://u:***@db/wh",
        published=True,
        published_at="2022-03-02T10:00:00",
        manifest_sha256="f" * 64,
    )
    out = write_workbook(small_audit(meta), tmp_path / "a.xlsx")
    wb = openpyxl.load_workbook(out)
    text = [str(c.value) for row in wb[COVER_SHEET].iter_rows() for c in row if c.value is not None]
    assert text[0] == "某区总工会2021年度经费审计"
    assert any("已发布" in t and "f" * 64 in t and "2022-03-02T10:00:00" in t for t in text)
    assert "postgresql+psycopg://u:***@db/wh" in text and "20220301T020000-bbbbbb" in text
    assert "2022-03-01 02:05:00" in text
    budget = wb[BUDGET_SHEET]
    fills = {r: budget.cell(HEADER_ROW + r, 6).fill.fgColor.rgb for r in (10, 11, 12)}  # 累计支出 of Oct–Dec
    assert fills[10] != fills[11] == fills[12]  # November and December are over budget: filled
    wb.close()


# ----------------------------------------------------------------------------- the demo year
@dataclass
class Demo:
    workbook: Path
    engine: sa.Engine
    run_id: str
    output: str

    def query(self, sql: str) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_2021: Demo2021) -> Iterator[Demo]:
    """The session's 2021 demo run (read only), then ``unionwh audit`` as a user writes the workbook."""
    from flows.cli import main

    mine = tmp_path_factory.mktemp("audit-demo")
    env = {**demo_2021.env, "UNIONWH_PUBLISHED": str(mine / "published"), "UNIONWH_REPORT_YEAR": "2021"}
    out = mine / "audit" / "audit-2021.xlsx"
    assert demo_2021.first.status == "succeeded"
    with Env(**env):
        printed = io.StringIO()
        with redirect_stdout(printed):
            assert main(["audit", "--year", "2021", "--out", str(out)]) == 0
    engine = sa.create_engine(env["UNIONWH_WAREHOUSE"], connect_args={"read_only": True})
    try:
        yield Demo(out, engine, demo_2021.first.run_id, printed.getvalue())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def book(demo: Demo) -> Iterator[openpyxl.Workbook]:
    wb = openpyxl.load_workbook(demo.workbook)
    yield wb
    wb.close()


def table_rows(ws: Any) -> list[dict[str, Any]]:
    """The data rows of a check's table as dicts keyed by the English column names (row 3)."""
    names = [c.value for c in ws[HEADER_ROW - 1]]
    out = []
    for row in ws.iter_rows(min_row=HEADER_ROW + 1, max_row=ws.max_row):
        values = [c.value for c in row]
        if any(v is not None for v in values):
            out.append({n: v for n, v in zip(names, values, strict=False) if n})
    return out


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


@pytest.mark.e2e
def test_audit_prints_what_it_did(demo: Demo) -> None:
    assert "fund audit 2021: 5 exceptions" in demo.output
    assert f"built by run {demo.run_id}; 2021 not published" in demo.output
    assert f"workbook: {demo.workbook}" in demo.output


@pytest.mark.e2e
def test_sheets_tables_headers_and_frozen_panes(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == SHEETS
    assert list(book[COVER_SHEET].tables) == ["checks"]
    for name in SHEETS[1:]:
        ws = book[name]
        (table,) = ws.tables.values()
        assert table.ref.startswith("A4:")
        assert table.autoFilter is not None and table.tableStyleInfo.showRowStripes
        assert ws.freeze_panes == "A5"
        zh = [c.value for c in ws[HEADER_ROW]]
        en = [c.value for c in ws[HEADER_ROW - 1]]
        assert [col.name for col in table.tableColumns] == zh
        assert all(re.search(r"[\u4e00-\u9fff]", h) for h in zh), zh  # Chinese headers
        assert all(re.fullmatch(r"[a-z_]+", h) for h in en), en  # their English names above
        for letter, dim in ws.column_dimensions.items():
            header = ws[f"{letter}{HEADER_ROW}"].value
            if header:
                assert dim.width >= display_width(header) + 2  # fitted, counting CJK as 2
    voucher = book[rule_sheet("unapproved_payment")]
    assert [c.value for c in voucher[HEADER_ROW - 1]][:8] == [
        "voucher_no",
        "line_no",
        "posting_date",
        "project_code",
        "payee_code",
        "payee_name",
        "memo",
        "approval_no",
    ]


@pytest.mark.e2e
def test_amounts_are_yuan_numbers_and_dates_are_dates(book: openpyxl.Workbook) -> None:
    seen = Counter()
    for name in SHEETS[1:]:
        ws = book[name]
        en = [c.value for c in ws[HEADER_ROW - 1]]
        for row in ws.iter_rows(min_row=HEADER_ROW + 1):
            for name_en, cell in zip(en, row, strict=False):
                if cell.value is None:
                    continue
                if name_en.endswith("_yuan"):
                    assert cell.data_type == "n" and cell.number_format == MONEY, (name, cell.coordinate)
                    seen["money"] += 1
                elif name_en.endswith("_date"):
                    assert isinstance(cell.value, datetime) and cell.number_format == "yyyy-mm-dd"
                    seen["date"] += 1
    assert seen["money"] > 100 and seen["date"] >= 3


@pytest.mark.e2e
def test_every_sheet_prints_landscape_one_page_wide_with_repeated_headers(book: openpyxl.Workbook) -> None:
    for name in SHEETS:
        ws = book[name]
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default, left out of the file
        assert ws.oddFooter.center.text == "第 &P 页 共 &N 页"
        assert 0.3 <= ws.page_margins.left <= 1 and 0.3 <= ws.page_margins.top <= 1
        if name != COVER_SHEET:
            assert ws.page_setup.fitToHeight == 0  # as many pages down as it takes
            assert ws.print_title_rows == "$3:$4"


@pytest.mark.e2e
def test_the_cover_states_the_run_the_warehouse_and_links_every_count(
    demo: Demo, book: openpyxl.Workbook
) -> None:
    ws = book[COVER_SHEET]
    text = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    assert ws["A1"].value == "天津港保税区总工会2021年度经费审计"
    assert demo.run_id in text  # the run that built the marts (the only run)
    (finished,) = demo.query(f"select finished_at from ops.runs where run_id = '{demo.run_id}'")[0]
    assert finished.replace(microsecond=0).isoformat(sep=" ") in text
    assert demo.engine.url.render_as_string(hide_password=True) in text
    assert any(t.startswith("未发布") for t in text)
    labels = {"编制人 Prepared by", "审核人 Reviewed by", "日期 Date"}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value in labels:
                box = ws.cell(cell.row, 3)
                assert cell.border.left.style and box.border.bottom.style and box.border.right.style
                labels.discard(cell.value)
    assert labels == set()

    counts = {
        r[0]: int(r[1])
        for r in demo.query(
            "select rule, count(*) from marts.audit_exceptions where report_year = 2021 group by rule"
        )
    }
    gaps = demo.query("select count(*) from marts.audit_reconciliation where report_year = 2021 and is_gap")[
        0
    ][0]
    over = demo.query(
        "select count(distinct project_code) from marts.audit_budget_vs_actual "
        "where report_year = 2021 and is_over_budget"
    )[0][0]
    expected = {
        "reconciliation": gaps,
        "budget_vs_actual": over,
        **{rule: counts.get(rule, 0) for rule, _, _ in EXCEPTION_RULES},
    }
    table = ws.tables["checks"]
    first, last = (int(re.sub(r"\D", "", x)) for x in table.ref.split(":"))
    stated, links = {}, {}
    for r in range(first + 1, last + 1):
        stated[ws.cell(r, 3).value] = ws.cell(r, 5).value
        links[ws.cell(r, 3).value] = ws.cell(r, 5).hyperlink.location
    assert stated == expected and sum(expected.values()) >= 5
    assert links == {
        "reconciliation": f"'{RECONCILIATION_SHEET}'!A1",
        "budget_vs_actual": f"'{BUDGET_SHEET}'!A1",
        **{rule: f"'{rule_sheet(rule)}'!A1" for rule, _, _ in EXCEPTION_RULES},
    }
    assert ws.cell(last + 1, 5).value == sum(counts.values())  # the total of the rules


@pytest.mark.e2e
def test_every_total_equals_the_warehouse(demo: Demo, book: openpyxl.Workbook) -> None:
    """Per rule: the rows, their amounts and their references; reconciliation and budget: every
    row and every amount column's sum; the cover's amounts per check."""
    cover = book[COVER_SHEET]
    amounts = {cover.cell(r, 3).value: cover.cell(r, 6).value for r in range(1, cover.max_row + 1)}
    for rule, _, _ in EXCEPTION_RULES:
        rows = table_rows(book[rule_sheet(rule)])
        marts = demo.query(
            f"select reference, amount_yuan, voucher_no, line_no, memo from marts.audit_exceptions "
            f"where report_year = 2021 and rule = '{rule}'"
        )
        assert len(rows) == len(marts), rule
        assert sum(money(r["amount_yuan"]) for r in rows) == sum(money(m[1]) for m in marts)
        assert money(amounts[rule]) == sum(money(m[1]) for m in marts)
        keys = {c.key for c in EXCEPTION_TABLES[rule]}
        if "voucher_no" in keys:
            assert sorted((r["voucher_no"], r["line_no"], r["memo"]) for r in rows) == sorted(
                (m[2], m[3], m[4]) for m in marts
            )
        else:
            assert sorted(r["reference"] for r in rows) == sorted(m[0] for m in marts)

    recon = table_rows(book[RECONCILIATION_SHEET])
    marts = demo.query(
        "select project_code, ledger_total_yuan, ledger_rows, postings_yuan, posting_lines, "
        "difference_yuan, is_gap from marts.audit_reconciliation where report_year = 2021 "
        "order by project_code"
    )
    assert [
        (
            r["project_code"],
            money(r["ledger_total_yuan"]),
            r["ledger_rows"],
            money(r["postings_yuan"]),
            r["posting_lines"],
            money(r["difference_yuan"]),
            r["is_gap"] == "是",
        )
        for r in recon
    ] == [(m[0], money(m[1]), m[2], money(m[3]), m[4], money(m[5]), bool(m[6])) for m in marts]
    gap = [m for m in marts if m[6]]
    assert money(amounts["reconciliation"]) == sum(money(m[5]) for m in gap)

    budget = table_rows(book[BUDGET_SHEET])
    (n, budget_sum, actual_sum, over) = demo.query(
        "select count(*), sum(budget_yuan), sum(actual_yuan), sum(case when is_over_budget then 1 else 0 end) "
        "from marts.audit_budget_vs_actual where report_year = 2021"
    )[0]
    assert len(budget) == n > 12
    assert sum(money(r["budget_yuan"]) for r in budget) == money(budget_sum)
    assert sum(money(r["actual_yuan"]) for r in budget) == money(actual_sum)
    assert sum(r["is_over_budget"] == "是" for r in budget) == over


@pytest.mark.e2e
def test_exceptions_are_traceable_filled_and_free_of_personal_data(
    demo: Demo, book: openpyxl.Workbook
) -> None:
    for rule in ("unapproved_payment", "unknown_or_revoked_payee"):
        ws = book[rule_sheet(rule)]
        rows = table_rows(ws)
        assert rows, rule  # the demo plants one of each
        for r in rows:
            assert r["voucher_no"] and r["line_no"] and isinstance(r["posting_date"], datetime)
            assert r["memo"] and r["payee_code"] and re.fullmatch(r"finance/.+\.csv#\d+", r["source"])
        # the key cells of an exception row are filled; the others are not
        en = [c.value for c in ws[HEADER_ROW - 1]]
        keyed = {c.key for c in EXCEPTION_TABLES[rule] if c.key_cell}
        first = ws[HEADER_ROW + 1]
        fills = {name: cell.fill.fgColor.rgb for name, cell in zip(en, first, strict=False)}
        assert {fills[k] for k in keyed} == {"FFFCE4D6"}
        assert "FFFCE4D6" not in {fills[k] for k in set(en) - keyed}
    (gap,) = [r for r in table_rows(book[RECONCILIATION_SHEET]) if r["is_gap"] == "是"]
    assert gap["difference_yuan"] == 180.0
    (relief,) = table_rows(book[rule_sheet("duplicate_relief")])
    assert relief["approval_no"] and isinstance(relief["event_date"], datetime)
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and ID_SHAPED.search(cell.value)), (
                    ws.title,
                    cell.coordinate,
                )


@pytest.mark.e2e
def test_the_workbook_prints_to_a_few_pages(demo: Demo, tmp_path: Path) -> None:
    """LibreOffice renders it to PDF (its own profile, so parallel runs do not clash): the demo
    year fits on 12 pages, page 1 is the cover with its title and the footer counts the pages."""
    soffice, pdfinfo = shutil.which("soffice"), shutil.which("pdfinfo")
    if not (soffice and pdfinfo):
        if os.environ.get("CI") == "true":
            pytest.fail("LibreOffice (soffice) and poppler (pdfinfo) are needed in CI: .ci/run installs them")
        pytest.skip("LibreOffice (soffice) or poppler (pdfinfo) is not installed: cannot render the workbook")
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(demo.workbook),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "audit-2021.pdf"
    info = subprocess.run([pdfinfo, str(pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert 2 + len(EXCEPTION_RULES) <= pages <= 12
    first = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "天津港保税区总工会2021年度经费审计" in first
    assert f"第 1 页 共 {pages} 页" in " ".join(first.split())  # LibreOffice numbers the workbook's pages


@pytest.mark.e2e
def test_dates_in_the_demo_are_the_marts_dates(demo: Demo, book: openpyxl.Workbook) -> None:
    rows = table_rows(book[rule_sheet("unapproved_payment")])
    marts = demo.query(
        "select posting_date from marts.audit_exceptions where rule = 'unapproved_payment' "
        "and report_year = 2021"
    )
    assert sorted(r["posting_date"].date() for r in rows) == sorted(
        m[0] if isinstance(m[0], date) else date.fromisoformat(str(m[0])) for m in marts
    )
