"""The summary files from given figures (no warehouse): text, links, appendix, charts, Word."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from flows.report.audit import Audit
from flows.report.summary import anchor, write_report
from flows.report.trace import Check, FigureTrace, ReportData, Suite
from tests.support import ROOT

pytestmark = pytest.mark.unit

TEMPLATE = (ROOT / "config" / "report" / "summary.zh.md").read_text(encoding="utf-8")


def report_data(catalogue: list[dict], history: bool = False) -> ReportData:
    figures = []
    for f in catalogue:
        lo, hi = (Decimal(str(b)) for b in f["seed_range"])
        value = lo if f["unit"] == "元" else (lo + hi) // 2
        figures.append(
            FigureTrace(
                f["id"],
                value,
                f["unit"],
                f["zh"],
                f["en"],
                f["definition"],
                7,
                ["stg_x", "int_figures"],
                tests=[
                    Check("not_null_x", "pass"),
                    Check("unique_x", "fail" if f["id"] == "org.union_units_total" else "pass"),
                ],
                suites=[Suite("rights.cases", 12, 1500, 3, 0)],
                quarantined=3,
                quarantined_open=1,
                audit="XMBZ: 0 项审计异常 / exceptions" if f["unit"] == "元" else None,
                audit_clean=True if f["unit"] == "元" else None,
            )
        )
    audit = Audit(
        2021,
        [],
        [
            {
                "project_code": "LJWW",
                "ledger_total_yuan": Decimal("5000.00"),
                "ledger_rows": 3,
                "postings_yuan": Decimal("5000.00"),
                "posting_lines": 2,
                "difference_yuan": Decimal(0),
                "is_gap": False,
            }
        ],
        [
            {
                "project_code": "XMBZ",
                "report_month": m,
                "project_name": "项目化补助",
                "budget_yuan": Decimal(120000),
                "actual_yuan": Decimal(10000),
                "actual_to_date_yuan": Decimal(10000 * m),
                "remaining_yuan": Decimal(0),
                "is_over_budget": False,
            }
            for m in range(1, 13)
        ],
    )
    hist = {f.id: {2020: f.value - 1, 2021: f.value} for f in figures} if history else {}
    return ReportData(
        2021,
        figures,
        {"rights.consultations": [Decimal(m) for m in range(12)]},
        {"org.union_units_total": {"海港": 3, "空港": 2, "临港": 1}},
        audit,
        hist,
        "run-1",
        None,
    )


def test_files_text_links_and_appendix(tmp_path: Path, figure_catalogue: list[dict]) -> None:
    files = write_report(
        report_data(figure_catalogue), TEMPLATE, tmp_path, generated=datetime(2022, 1, 5, 9, 0)
    )
    assert [p.name for p in files] == [
        "summary-2021.md",
        "summary-2021.html",
        "summary-2021.docx",
        "figures-2021.json",
    ]
    md = files[0].read_text(encoding="utf-8")
    assert md.startswith("# 天津港保税区总工会2021年工作总结\n")
    assert "维权金额349.88万余元" in md and "十五余场" not in md and "比赛十余场" in md
    assert "| 接待咨询 | `rights.consultations` | 1,131 件 | 7 | 2/2 | 3 (1) | — |" in md
    assert "2600（第" in md  # a number typed into the text is listed as such
    assert "历年对比" not in md  # one year: no comparison
    html = files[1].read_text(encoding="utf-8")
    links = re.findall(r'<a class="figure" href="#([^"]+)" data-figure="([^"]+)"', html)
    assert len(links) == 42 and all(a == anchor(fid) for a, fid in links)
    assert all(f'id="{a}"' in html for a, _ in links)
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count('<svg class="chart"') == 4  # one month chart, zones, welfare, budget
    assert 'class="bad">unique_x: fail' in html  # a failed test is shown as such
    payload = json.loads(files[3].read_text(encoding="utf-8"))
    assert payload["figures"][0]["dbt_tests"] == {
        "passed": 2,
        "total": 2,
        "without_current_result": 0,
        "results_from_runs": [],
    }


def test_tests_without_a_current_result_are_said_and_block_publication(
    tmp_path: Path, figure_catalogue: list[dict]
) -> None:
    """A test that no build ran under this project (missing) or whose model was rebuilt after it
    ran (stale) is never counted or shown as passed, and the trace is not publishable."""
    from flows.report.trace import trace_gaps

    data = report_data(figure_catalogue)
    data.artifacts = tmp_path  # (a run's artifacts folder: only its presence matters here)
    assert trace_gaps(data) is None
    data.figures[0].tests = [
        Check("not_null_x", "pass", "run-1"),
        Check("unique_x", "missing"),
        Check("relationships_x", "stale", "run-0"),
    ]
    gaps = trace_gaps(data)
    assert (
        gaps is not None and "1 missing (e.g. unique_x)" in gaps and "1 stale (e.g. relationships_x)" in gaps
    )
    md = write_report(data, TEMPLATE, tmp_path / "out")[0].read_text(encoding="utf-8")
    assert "| 1/3 (2 项无当前结果 / without a current result) |" in md
    data.artifacts = None
    assert "no dbt artifacts" in (trace_gaps(data) or "")


def test_two_years_give_a_year_over_year_table(tmp_path: Path, figure_catalogue: list[dict]) -> None:
    files = write_report(report_data(figure_catalogue, history=True), TEMPLATE, tmp_path)
    md = files[0].read_text(encoding="utf-8")
    assert "## 历年对比 / year over year" in md and "| 接待咨询 | 1,130 | 1,131 |" in md
    html = files[1].read_text(encoding="utf-8")
    assert 'id="yoy"' in html and "+0.1%" in html
