"""The fund-audit workbook: the audit marts of one year as an Excel file, one sheet per check.

Sheets: 汇总 (summary: every check and its number of exceptions), 对账 (reconciliation of
each welfare programme against its finance project), 预算执行 (budget vs actual per project
and month), then one sheet per exception rule (listed even when empty, so an auditor sees
that the check ran).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows.errors import UnionWHError
from flows.report.cells import text_cells

EXCEPTION_RULES: tuple[tuple[str, str, str], ...] = (
    ("budget_overrun", "超预算", "net postings on a project in the year exceed its budget"),
    ("unapproved_payment", "无审批支付", "XMBZ, LZJT or JZ voucher line without 审批单号"),
    ("unknown_or_revoked_payee", "收款方异常", "payee is no registered enterprise/union, or a union revoked "
                                            "before the posting date"),
    ("duplicate_relief", "重复救助", "the same 身份证号 given 救助 twice within 30 days"),
    ("relief_without_voucher", "救助无凭证", "a 救助 审批单号 that no JZ voucher line carries"),
    ("reconciliation_gap", "对账差异", "a welfare ledger total differs from its project's net postings"),
)

EXCEPTION_COLUMNS = ("exception_id", "rule", "project_code", "reference", "event_date", "amount_yuan",
                     "reason_zh", "reason_en", "source_file", "source_row")
RECONCILIATION_COLUMNS = ("project_code", "ledger_total_yuan", "ledger_rows", "postings_yuan", "posting_lines",
                          "difference_yuan", "is_gap")
BUDGET_COLUMNS = ("project_code", "report_month", "project_name", "budget_yuan", "actual_yuan",
                  "actual_to_date_yuan", "remaining_yuan", "is_over_budget")


@dataclass
class Audit:
    year: int
    exceptions: list[dict[str, Any]]
    reconciliation: list[dict[str, Any]]
    budget: list[dict[str, Any]]

    @property
    def is_empty(self) -> bool:
        """No budget, posting or welfare ledger of the year: nothing was audited (an empty
        workbook would look like a clean audit)."""
        return not (self.exceptions or self.reconciliation or self.budget)

    def by_rule(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {rule: [] for rule, _, _ in EXCEPTION_RULES}
        for row in self.exceptions:
            out.setdefault(row["rule"], []).append(row)
        return out


def _rows(conn: sa.Connection, relation: str, columns: tuple[str, ...], year: int, order: str) -> list[dict[str, Any]]:
    query = sa.text(f"SELECT {', '.join(columns)} FROM marts.{relation} WHERE report_year = :y ORDER BY {order}")
    return [dict(r._mapping) for r in conn.execute(query, {"y": year})]


def fetch_audit(engine: Engine, year: int) -> Audit:
    try:
        with engine.connect() as conn:
            return Audit(
                year=year,
                exceptions=_rows(conn, "audit_exceptions", EXCEPTION_COLUMNS, year, "rule, reference"),
                reconciliation=_rows(conn, "audit_reconciliation", RECONCILIATION_COLUMNS, year, "project_code"),
                budget=_rows(conn, "audit_budget_vs_actual", BUDGET_COLUMNS, year, "project_code, report_month"),
            )
    except DBAPIError as exc:
        raise UnionWHError(
            "cannot read the audit marts from the warehouse (has `unionwh run` built them?): "
            f"{type(exc.orig).__name__}") from None


def audit_years(engine: Engine) -> list[int]:
    """The years the audit marts hold anything for (budgets, postings, welfare ledgers)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(" UNION ".join(
            f"SELECT DISTINCT report_year FROM marts.{r}" for r in
            ("audit_budget_vs_actual", "audit_reconciliation", "audit_exceptions")))).all()
    return sorted(int(r[0]) for r in rows)


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sheet(wb: Any, title: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    ws = wb.create_sheet(title)
    ws.append(list(columns))
    for row in rows:
        ws.append([_cell(row[c]) for c in columns])
    ws.freeze_panes = "A2"
    for i, c in enumerate(columns):
        width = max([len(str(c))] + [len(str(row[c])) for row in rows[:200]]) + 2
        ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width = min(width, 60)
    for col in ws.iter_cols(min_row=2):
        for cell in col:
            if isinstance(cell.value, float):
                cell.number_format = "#,##0.00"
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"


def write_workbook(audit: Audit, out: Path) -> Path:
    """Write the audit workbook to ``out``."""
    from openpyxl import Workbook

    wb = Workbook()
    summary = wb.active
    summary.title = "汇总"
    summary.append(["check", "检查", "what it checks", "exceptions"])
    by_rule = audit.by_rule()
    summary.append(["reconciliation", "福利台账对账", "welfare ledgers vs their finance projects",
                    sum(1 for r in audit.reconciliation if r["is_gap"])])
    summary.append(["budget_vs_actual", "预算执行", "budget vs net postings per project and month",
                    len({r["project_code"] for r in audit.budget if r["is_over_budget"]})])
    for rule, zh, en in EXCEPTION_RULES:
        summary.append([rule, zh, en, len(by_rule[rule])])
    summary.append([])
    summary.append([f"report year {audit.year}", f"{audit.year}年度", "exceptions in all", len(audit.exceptions)])
    _sheet(wb, "对账 reconciliation", RECONCILIATION_COLUMNS, audit.reconciliation)
    _sheet(wb, "预算执行 budget", BUDGET_COLUMNS, audit.budget)
    for rule, zh, _ in EXCEPTION_RULES:
        _sheet(wb, f"{zh} {rule}"[:31], EXCEPTION_COLUMNS, by_rule[rule])
    text_cells(wb)  # a delivered 项目名称 or 凭证号 such as =HYPERLINK(…) is data, never a formula
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
