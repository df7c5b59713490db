"""The fund-audit workbook: the audit marts of one year as an Excel file finance can sign off.

Sheets: 封面 (cover: the federation's title, the year, the run that built the marts, the
warehouse, whether the year is published with its manifest's hash, every check with its number
of exceptions linked to its sheet, and sign-off cells), 对账 (each welfare programme's ledger
against its finance project), 预算执行 (budget vs actual per project and month), then one sheet
per exception rule (listed even when empty, so an auditor sees that the check ran).

Each check is an Excel table (filters, banded rows) under a Chinese header with the English
column name in the row above it, frozen below the header; amounts are numbers formatted
``¥#,##0.00``, dates real dates; gaps, overruns and each exception's key cells are filled.
Every sheet prints landscape on A4, one page wide, with its header rows repeated and a footer
``第 n 页 共 N 页``. Written with XlsxWriter; every text is written with ``write_string`` and the
workbook is opened with ``strings_to_formulas`` off, so a delivered ``=HYPERLINK(…)`` stays text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows.errors import UnionWHError
from flows.report.catalogue import exception_rules
from flows.report.published import publication

EXCEPTION_RULES: tuple[tuple[str, str, str], ...] = tuple((r.rule, r.zh, r.en) for r in exception_rules())
"""(rule, Chinese name, what it flags) of each exception rule, in the order of ``audit.exceptions``
in config/figures.yaml, where the rules are stated (flows/report/catalogue.py)."""
RULE_ZH_DESCRIPTION = {r.rule: r.zh_definition for r in exception_rules()}

TRACE_COLUMNS = ("voucher_no", "line_no", "posting_date", "payee_code", "payee_name", "memo", "approval_no")
"""Where an exception comes from a voucher line: the line itself (null otherwise). Added to the mart
later than the rest, so a warehouse whose marts an older release built reads them as null."""
EXCEPTION_COLUMNS = (
    "exception_id",
    "rule",
    "project_code",
    "reference",
    "event_date",
    "amount_yuan",
    "reason_zh",
    "reason_en",
    "source_file",
    "source_row",
    *TRACE_COLUMNS,
)
RECONCILIATION_COLUMNS = (
    "project_code",
    "ledger_total_yuan",
    "ledger_rows",
    "postings_yuan",
    "posting_lines",
    "difference_yuan",
    "is_gap",
)
BUDGET_COLUMNS = (
    "project_code",
    "report_month",
    "project_name",
    "budget_yuan",
    "actual_yuan",
    "actual_to_date_yuan",
    "remaining_yuan",
    "is_over_budget",
)

RECONCILIATION_SHEET = "对账 reconciliation"
BUDGET_SHEET = "预算执行 budget"
COVER_SHEET = "封面"
MONEY = "¥#,##0.00"
DATE = "yyyy-mm-dd"
DEFAULT_FEDERATION = "天津港保税区总工会"


def rule_sheet(rule: str) -> str:
    """The sheet of an exception rule (Excel allows 31 characters)."""
    zh = {r: z for r, z, _ in EXCEPTION_RULES}.get(rule, rule)
    return f"{zh} {rule}"[:31]


# ----------------------------------------------------------------------------- reading the marts
@dataclass(frozen=True)
class AuditMeta:
    """What the cover states about where the figures come from (None: not known)."""

    federation: str = DEFAULT_FEDERATION
    run_id: str | None = None
    run_time: datetime | None = None
    warehouse: str | None = None
    published: bool | None = None
    published_at: str | None = None
    manifest_sha256: str | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now().replace(microsecond=0))


@dataclass
class Audit:
    year: int
    exceptions: list[dict[str, Any]]
    reconciliation: list[dict[str, Any]]
    budget: list[dict[str, Any]]
    meta: AuditMeta = field(default_factory=AuditMeta)

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

    def over_budget_projects(self) -> list[str]:
        return sorted({r["project_code"] for r in self.budget if r["is_over_budget"]})


def _rows(
    conn: sa.Connection,
    relation: str,
    columns: tuple[str, ...],
    year: int,
    order: str,
    optional: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The year's rows of a mart; ``optional`` columns the mart lacks (built by an older release) are None."""
    present: set[str] = set()
    if optional:  # information_schema: DuckDB's SQLAlchemy inspector cannot list columns
        present = {
            str(n).lower()
            for n in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = :t"
                ),
                {"t": relation},
            ).scalars()
        }
    selected = [c for c in columns if c not in optional or c in present]
    query = sa.text(
        f"SELECT {', '.join(selected)} FROM marts.{relation} WHERE report_year = :y ORDER BY {order}"
    )
    return [{c: dict(r._mapping).get(c) for c in columns} for r in conn.execute(query, {"y": year})]


def federation_of(template: str) -> str:
    """The federation's name from the summary template's title (``# 天津港保税区总工会{year}年工作总结``)."""
    from flows.report.template import strip_comments

    for line in strip_comments(template).splitlines():
        if line.startswith("# "):
            name = line[2:].split("{year}")[0].strip()
            if name:
                return name
    return DEFAULT_FEDERATION


def _first(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> sa.Row | None:
    """One row, or None when the ledger table is missing (a warehouse without that table yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params or {}).first()
    except DBAPIError:
        return None


def build_run(engine: Engine) -> tuple[str | None, datetime | None]:
    """The run that last built the audit marts successfully and when it finished: the newest
    successful dbt node result of ``audit_exceptions``, else the newest succeeded run."""
    row = _first(
        engine,
        "SELECT n.run_id, coalesce(r.finished_at, n.built_at) FROM ops.dbt_node_results n "
        "LEFT JOIN ops.runs r ON r.run_id = n.run_id "
        "WHERE n.unique_id = 'model.unionwh.audit_exceptions' AND n.status = 'success' "
        "ORDER BY n.built_at DESC LIMIT 1",
    )
    if row is None:
        row = _first(
            engine,
            "SELECT run_id, finished_at FROM ops.runs WHERE status = 'succeeded' "
            "ORDER BY started_at DESC, run_id DESC LIMIT 1",
        )
    return (None, None) if row is None else (str(row[0]), row[1])


def fetch_audit(
    engine: Engine, year: int, published_dir: Path | None = None, template: str | None = None
) -> Audit:
    """The year's audit marts, with what the cover states about them (the publication only when
    ``published_dir`` is given; the federation's name from the summary ``template``)."""
    try:
        with engine.connect() as conn:
            exceptions = _rows(
                conn, "audit_exceptions", EXCEPTION_COLUMNS, year, "rule, reference", TRACE_COLUMNS
            )
            reconciliation = _rows(conn, "audit_reconciliation", RECONCILIATION_COLUMNS, year, "project_code")
            budget = _rows(conn, "audit_budget_vs_actual", BUDGET_COLUMNS, year, "project_code, report_month")
    except DBAPIError as exc:
        raise UnionWHError(
            "cannot read the audit marts from the warehouse (has `unionwh run` built them?): "
            f"{type(exc.orig).__name__}"
        ) from None
    run_id, run_time = build_run(engine)
    published, published_at, digest = (
        (None, None, None) if published_dir is None else publication(published_dir, year)
    )
    meta = AuditMeta(
        federation=federation_of(template) if template else DEFAULT_FEDERATION,
        run_id=run_id,
        run_time=run_time,
        warehouse=engine.url.render_as_string(hide_password=True),
        published=published,
        published_at=published_at,
        manifest_sha256=digest,
    )
    return Audit(year, exceptions, reconciliation, budget, meta)


def audit_years(engine: Engine) -> list[int]:
    """The years the audit marts hold anything for (budgets, postings, welfare ledgers)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                " UNION ".join(
                    f"SELECT DISTINCT report_year FROM marts.{r}"
                    for r in ("audit_budget_vs_actual", "audit_reconciliation", "audit_exceptions")
                )
            )
        ).all()
    return sorted(int(r[0]) for r in rows)


# ----------------------------------------------------------------------------- pure helpers
def display_width(text: str) -> int:
    """Columns ``text`` takes on screen: a wide (CJK) character counts 2, as Excel's widths do."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def column_width(texts: Sequence[str], least: int = 6, most: int = 40) -> float:
    """A column width fitting its longest text (CJK counted 2), within ``least``..``most``."""
    widest = max((display_width(t) for t in texts), default=0)
    return float(min(max(widest + 2, least), most))


@dataclass(frozen=True)
class Column:
    """One column of a check's table: the mart column, its Chinese header, and how it is shown."""

    key: str
    zh: str
    kind: str = "text"  # text, money, date, int, flag
    most: int = 40
    key_cell: bool = False  # filled on an exception row

    @property
    def en(self) -> str:
        return self.key


def shown(value: Any, kind: str) -> str:
    """A value as the sheet shows it, for fitting the column's width (pure)."""
    if value is None:
        return ""
    if kind == "money":
        return f"¥{Decimal(str(value)):,.2f}"
    if kind == "date":
        return "0000-00-00"
    if kind == "flag":
        return "是" if value else "否"
    return str(value)


RECONCILIATION_TABLE = (
    Column("project_code", "项目编码", key_cell=True),
    Column("ledger_total_yuan", "台账合计", "money"),
    Column("ledger_rows", "台账行数", "int"),
    Column("postings_yuan", "记账净额", "money"),
    Column("posting_lines", "凭证行数", "int"),
    Column("difference_yuan", "差额", "money", key_cell=True),
    Column("is_gap", "存在差异", "flag", key_cell=True),
)
BUDGET_TABLE = (
    Column("project_code", "项目编码"),
    Column("report_month", "月份", "int"),
    Column("project_name", "项目名称", most=28),
    Column("budget_yuan", "全年预算", "money"),
    Column("actual_yuan", "本月支出", "money"),
    Column("actual_to_date_yuan", "累计支出", "money", key_cell=True),
    Column("remaining_yuan", "预算余额", "money", key_cell=True),
    Column("is_over_budget", "超预算", "flag", key_cell=True),
)
_VOUCHER = (
    Column("voucher_no", "凭证号", key_cell=True),
    Column("line_no", "行号", "int", key_cell=True),
    Column("posting_date", "记账日期", "date"),
    Column("project_code", "项目编码"),
    Column("payee_code", "收款方编码", most=22),
    Column("payee_name", "收款方名称", most=30),
    Column("memo", "摘要", most=24),
    Column("approval_no", "审批单号"),
    Column("amount_yuan", "金额", "money", key_cell=True),
    Column("reason_zh", "原因", most=24, key_cell=True),
    Column("source", "来源文件#行", most=30),
)
_RELIEF = (
    Column("reference", "台账文件#行", most=40, key_cell=True),
    Column("event_date", "救助日期", "date"),
    Column("project_code", "项目编码"),
    Column("approval_no", "审批单号", key_cell=True),
    Column("amount_yuan", "救助金额", "money", key_cell=True),
    Column("reason_zh", "原因", most=40, key_cell=True),
)
_PROJECT = (
    Column("project_code", "项目编码", key_cell=True),
    Column("reference", "引用"),
    Column("amount_yuan", "金额", "money", key_cell=True),
    Column("reason_zh", "原因", most=40, key_cell=True),
    Column("reason_en", "英文说明", most=50),
)
EXCEPTION_TABLES: dict[str, tuple[Column, ...]] = {
    "budget_overrun": _PROJECT,
    "unapproved_payment": _VOUCHER,
    "unknown_or_revoked_payee": _VOUCHER,
    "duplicate_relief": _RELIEF,
    "relief_without_voucher": _RELIEF,
    "reconciliation_gap": _PROJECT,
}


@dataclass(frozen=True)
class Check:
    """One line of the cover's table of checks."""

    key: str
    zh: str
    what: str
    sheet: str
    exceptions: int
    amount: Decimal | None


def checks(audit: Audit) -> list[Check]:
    """Every check with its number of exceptions and the amount at stake (pure): reconciliation
    gaps, projects over budget, then each exception rule."""

    def total(values: list[Any]) -> Decimal:
        return sum((Decimal(str(v)) for v in values if v is not None), Decimal(0))

    gaps = [r for r in audit.reconciliation if r["is_gap"]]
    out = [
        Check(
            "reconciliation",
            "福利台账对账",
            "福利台账与财务项目记账净额核对",
            RECONCILIATION_SHEET,
            len(gaps),
            total([r["difference_yuan"] for r in gaps]),
        ),
        Check(
            "budget_vs_actual",
            "预算执行",
            "各项目逐月预算执行（超预算的项目数）",
            BUDGET_SHEET,
            len(audit.over_budget_projects()),
            None,
        ),
    ]
    by_rule = audit.by_rule()
    for rule, zh, _ in EXCEPTION_RULES:
        rows = by_rule[rule]
        out.append(
            Check(
                rule,
                zh,
                RULE_ZH_DESCRIPTION[rule],
                rule_sheet(rule),
                len(rows),
                total([r["amount_yuan"] for r in rows]),
            )
        )
    return out


# ----------------------------------------------------------------------------- writing
class _Formats:
    """The workbook's cell formats (XlsxWriter formats belong to one workbook)."""

    def __init__(self, wb: Any) -> None:
        base = {"font_name": "等线", "font_size": 10, "valign": "vcenter"}

        def f(**kw: Any) -> Any:
            return wb.add_format({**base, **kw})

        self.f = f
        self.title = f(bold=True, font_size=18, align="center", font_color="#1F3864")
        self.subtitle = f(font_size=10, align="center", font_color="#595959")
        self.sheet_title = f(bold=True, font_size=14, font_color="#1F3864")
        self.note = f(font_color="#595959", text_wrap=True, valign="top")
        self.en_header = f(italic=True, font_size=8, font_color="#7F7F7F", bottom=1, bottom_color="#BFBFBF")
        self.header = f(bold=True, font_color="#FFFFFF", bg_color="#1F4E78", text_wrap=True, border=1)
        self.label = f(bold=True, bg_color="#DDEBF7", border=1, border_color="#8EA9DB")
        self.value = f(border=1, border_color="#8EA9DB", text_wrap=True)
        self.value_ok = f(border=1, border_color="#8EA9DB", font_color="#375623", bold=True)
        self.value_warn = f(border=1, border_color="#8EA9DB", font_color="#C00000", bold=True)
        self.section = f(bold=True, font_size=12, font_color="#1F3864", bottom=2, bottom_color="#1F3864")
        self.sign_label = f(bold=True, border=1, align="center", bg_color="#F2F2F2")
        self.sign_box = f(border=1)
        self.seal = f(border=1, font_color="#A6A6A6", align="right", valign="bottom")
        self.link_count = f(font_color="#0563C1", underline=1, align="center", bold=True)
        self.link_count_hit = f(
            font_color="#C00000", underline=1, align="center", bold=True, bg_color="#FCE4D6"
        )
        self.link_text = f(font_color="#0563C1", underline=1, align="left", indent=1)
        self.dash = f(align="center", font_color="#7F7F7F")
        self.total_label = f(bold=True, top=1)
        self.total_int = f(bold=True, top=1, align="center")
        self.total_money = f(bold=True, top=1, num_format=MONEY)
        self.cells: dict[tuple[str, bool, bool, bool], Any] = {}

    def cell(self, kind: str, hit: bool, wrap: bool = False, band: bool = False) -> Any:
        """The format of a data cell of ``kind``; ``hit``: an exception's key cell (filled); ``band``:
        every other row shaded (the table style bands them in Excel; the fill also prints elsewhere)."""
        key = (kind, hit, wrap, band)
        if key not in self.cells:
            props: dict[str, Any] = {"num_format": {"money": MONEY, "date": DATE}.get(kind, "General")}
            if kind in ("int", "flag", "date"):
                props["align"] = "center"
            elif kind == "text":
                props.update(align="left", indent=1)  # clear of the amount to its left
            if wrap:
                props["text_wrap"] = True
            if band:
                props.update(bg_color="#EEF3FA")
            if hit:
                props.update(bg_color="#FCE4D6", font_color="#9C0006")
            self.cells[key] = self.f(**props)
        return self.cells[key]


def _page_setup(ws: Any, title: str, repeat: tuple[int, int] | None) -> None:
    """A4 landscape, one page wide, header rows repeated, ``第 n 页 共 N 页`` at the foot."""
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.7)
    ws.set_header(f"&L&8{_header_text(title)}&R&8&A", {"margins": 0.3})
    ws.set_footer("&C第 &P 页 共 &N 页", {"margins": 0.3})
    ws.center_horizontally()
    if repeat is not None:
        ws.repeat_rows(*repeat)


def _header_text(text: str) -> str:
    """Text for a page header: ``&`` doubled (it starts a header code)."""
    return text.replace("&", "&&")


def _write(ws: Any, row: int, col: int, value: Any, kind: str, fmt: Any) -> None:
    """One data cell, typed: text always as a string (never a formula), amounts and counts as
    numbers, dates as dates."""
    if value is None:
        ws.write_blank(row, col, None, fmt)
    elif kind == "flag":
        ws.write_string(row, col, "是" if value else "否", fmt)
    elif kind == "date" and isinstance(value, (date, datetime)):
        ws.write_datetime(
            row,
            col,
            value if isinstance(value, datetime) else datetime(value.year, value.month, value.day),
            fmt,
        )
    elif (
        kind in ("money", "int") and isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    ):
        ws.write_number(row, col, float(value), fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


def _table(
    wb: Any,
    fm: _Formats,
    audit: Audit,
    name: str,
    table_name: str,
    title: str,
    notes: list[str],
    columns: Sequence[Column],
    rows: list[dict[str, Any]],
    is_hit: Callable[[dict[str, Any]], bool],
) -> None:
    """One check as a sheet: title and notes, the English names over a Chinese-headed Excel table
    frozen below its header, the exception rows' key cells filled, set up for print."""
    ws = wb.add_worksheet(name)
    ws.hide_gridlines(2)
    last = len(columns) - 1
    ws.merge_range(0, 0, 0, max(last, 1), "", fm.sheet_title)
    ws.write_string(0, 0, title, fm.sheet_title)
    ws.set_row(0, 24)
    ws.merge_range(1, 0, 1, max(last, 1), "", fm.note)
    ws.write_string(1, 0, "\n".join(notes), fm.note)
    ws.set_row(1, 15 * len(notes) + 3)
    header_row = 3
    for c, col in enumerate(columns):
        ws.write_string(header_row - 1, c, col.en, fm.en_header)
    body = rows or [{}]  # an Excel table needs a data row: an empty check shows one blank row
    ws.add_table(
        header_row,
        0,
        header_row + len(body),
        last,
        {
            "name": table_name,
            "style": "Table Style Light 9",
            "banded_rows": True,
            "autofilter": True,
            "columns": [{"header": col.zh, "header_format": fm.header} for col in columns],
        },
    )
    for r, row in enumerate(rows, start=header_row + 1):
        hit = is_hit(row)
        for c, col in enumerate(columns):
            wrap = display_width(shown(row.get(col.key), col.kind)) + 2 > col.most
            fmt = fm.cell(col.kind, hit and col.key_cell, wrap=wrap, band=(r - header_row) % 2 == 0)
            _write(ws, r, c, row.get(col.key), col.kind, fmt)
    if not rows:
        for c, col in enumerate(columns):
            ws.write_blank(header_row + 1, c, None, fm.cell(col.kind, False))
    for c, col in enumerate(columns):
        texts = [col.zh, "x" * (len(col.en) * 3 // 4)]  # the English name is set smaller
        texts += [shown(row.get(col.key), col.kind) for row in rows[:500]]
        ws.set_column(
            c, c, column_width(texts, least={"money": 14, "date": 12}.get(col.kind, 6), most=col.most)
        )
    ws.freeze_panes(header_row + 1, 0)
    _page_setup(
        ws, f"{audit.meta.federation}{audit.year}年度经费审计 · {title}", (header_row - 1, header_row)
    )


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat(sep=" ")
    return "—" if value is None else str(value)


def _cover(wb: Any, fm: _Formats, audit: Audit) -> None:
    ws = wb.add_worksheet(COVER_SHEET)
    ws.hide_gridlines(2)
    meta = audit.meta
    widths = (6, 16, 26, 50, 10, 18, 32)
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    last = len(widths) - 1
    title = f"{meta.federation}{audit.year}年度经费审计"
    ws.merge_range(0, 0, 0, last, "", fm.title)
    ws.write_string(0, 0, title, fm.title)
    ws.set_row(0, 36)
    ws.merge_range(1, 0, 1, last, "", fm.subtitle)
    ws.write_string(
        1,
        0,
        f"Fund audit workbook · {audit.year} · 本工作簿由数据仓库的审计数据生成，不含个人身份信息",
        fm.subtitle,
    )

    if meta.published is None:
        pub, pub_fmt = "未核对（未指定发布目录）/ not checked", fm.value
    elif meta.published:
        pub = f"已发布 / published {meta.published_at or ''}；清单 MANIFEST.sha256 的 SHA-256：{meta.manifest_sha256}"
        pub_fmt = fm.value_ok
    else:
        pub, pub_fmt = "未发布 / not published：数据仍可能随新交付变化", fm.value_warn
    info = [
        ("年度 Year", f"{audit.year}年度", fm.value),
        ("数据批次 Run", meta.run_id or "—（运行台账中没有构建记录）", fm.value),
        ("运行完成 Run time", _fmt_time(meta.run_time), fm.value),
        ("数据仓库 Warehouse", meta.warehouse or "—", fm.value),
        ("发布状态 Published", pub, pub_fmt),
        ("生成时间 Generated", _fmt_time(meta.generated_at), fm.value),
    ]
    row = 3
    for label, value, fmt in info:
        ws.merge_range(row, 0, row, 1, "", fm.label)
        ws.write_string(row, 0, label, fm.label)
        ws.merge_range(row, 2, row, last, "", fmt)
        ws.write_string(row, 2, value, fmt)
        ws.set_row(row, 30 if display_width(value) > 110 else 18)
        row += 1

    row += 1
    ws.merge_range(row, 0, row, last, "", fm.section)
    ws.write_string(row, 0, "检查项目与异常 / Checks and exceptions", fm.section)
    row += 1
    headers = ("序号", "检查", "Check", "检查内容", "异常数", "涉及金额", "工作表")
    table_top = row
    all_checks = checks(audit)
    ws.add_table(
        table_top,
        0,
        table_top + len(all_checks),
        last,
        {
            "name": "checks",
            "style": "Table Style Light 9",
            "banded_rows": True,
            "autofilter": False,
            "columns": [{"header": h, "header_format": fm.header} for h in headers],
        },
    )
    for i, check in enumerate(all_checks, start=1):
        r = table_top + i
        hit = check.exceptions > 0
        ws.write_number(r, 0, i, fm.cell("int", False))
        ws.write_string(r, 1, check.zh, fm.cell("text", hit))
        ws.write_string(r, 2, check.key, fm.cell("text", False))
        ws.write_string(r, 3, check.what, fm.cell("text", False, wrap=True))
        link = f"internal:'{check.sheet}'!A1"
        # XlsxWriter's documented way to a linked number: write the link, then the number over it
        ws.write_url(
            r,
            4,
            link,
            fm.link_count_hit if hit else fm.link_count,
            str(check.exceptions),
            f"打开工作表 {check.sheet}",
        )
        ws.write_number(r, 4, check.exceptions, fm.link_count_hit if hit else fm.link_count)
        if check.amount is None:  # months over budget are no amount at stake: the overrun is budget_overrun's
            ws.write_string(r, 5, "—", fm.dash)
        else:
            ws.write_number(r, 5, float(check.amount), fm.cell("money", hit))
        ws.write_url(r, 6, link, fm.link_text, check.sheet)
        ws.set_row(r, 18 if display_width(check.what) <= 48 else 30)
    row = table_top + len(all_checks) + 1
    ws.write_string(row, 1, "合计 Total（异常规则）", fm.total_label)
    for c in (0, 2, 3, 6):
        ws.write_blank(row, c, None, fm.total_label)
    ws.write_number(row, 4, len(audit.exceptions), fm.total_int)
    rule_total = sum(
        (c.amount or Decimal(0) for c in all_checks if c.key not in ("reconciliation", "budget_vs_actual")),
        Decimal(0),
    )
    ws.write_number(row, 5, float(rule_total), fm.total_money)
    row += 1
    ws.merge_range(row, 0, row, last, "", fm.note)
    ws.write_string(
        row,
        0,
        "异常数可点击，跳转到该项检查的工作表；对账与预算执行两项不计入合计（其差异已作为"
        "“对账差异”“超预算”异常列出）。金额单位：元。",
        fm.note,
    )
    ws.set_row(row, 28)

    row += 2
    ws.merge_range(row, 0, row, last, "", fm.section)
    ws.write_string(row, 0, "签字 / Sign-off", fm.section)
    row += 1
    for i, label in enumerate(("编制人 Prepared by", "审核人 Reviewed by", "日期 Date")):
        ws.merge_range(row + i, 0, row + i, 1, "", fm.sign_label)
        ws.write_string(row + i, 0, label, fm.sign_label)
        ws.merge_range(row + i, 2, row + i, 3, "", fm.sign_box)
        ws.set_row(row + i, 30)
    ws.merge_range(row, 4, row + 2, last, "", fm.seal)
    ws.write_string(row, 4, "单位盖章 Seal", fm.seal)
    _page_setup(ws, title, None)
    ws.fit_to_pages(1, 1)
    ws.activate()


def write_workbook(audit: Audit, out: Path) -> Path:
    """Write the audit workbook to ``out`` (the folder is made if missing)."""
    import xlsxwriter  # deferred: only the workbook's writer needs it

    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(
        str(out),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": DATE,
        },
    )
    wb.set_properties(
        {
            "title": f"{audit.meta.federation}{audit.year}年度经费审计",
            "subject": "fund audit",
            "author": "unionwh",
            "comments": f"run {audit.meta.run_id or '—'}",
        }
    )
    fm = _Formats(wb)
    _cover(wb, fm, audit)
    year = f"{audit.year}年度"
    gaps = sum(1 for r in audit.reconciliation if r["is_gap"])
    _table(
        wb,
        fm,
        audit,
        RECONCILIATION_SHEET,
        "reconciliation",
        f"福利台账对账 · {year}",
        [
            "每个福利项目的台账合计与其财务项目的记账净额（借方－贷方）；差额不为零即为差异。",
            f"Welfare ledgers vs their finance projects' net postings. 差异 {gaps} 项。",
        ],
        RECONCILIATION_TABLE,
        audit.reconciliation,
        lambda r: bool(r["is_gap"]),
    )
    over = audit.over_budget_projects()
    _table(
        wb,
        fm,
        audit,
        BUDGET_SHEET,
        "budget_vs_actual",
        f"预算执行 · {year}",
        [
            "各项目逐月记账净额与全年预算；累计支出超过预算（或无预算而有支出）的月份标红。",
            f"Budget vs net postings per project and month. 超预算项目：{'、'.join(over) if over else '无'}。",
        ],
        BUDGET_TABLE,
        audit.budget,
        lambda r: bool(r["is_over_budget"]),
    )
    by_rule = audit.by_rule()
    for rule, zh, en in EXCEPTION_RULES:
        rows = [
            {**r, "source": f"{r['source_file']}#{r['source_row']}" if r["source_file"] else None}
            for r in by_rule[rule]
        ]
        _table(
            wb,
            fm,
            audit,
            rule_sheet(rule),
            rule,
            f"{zh} · {rule} · {year}",
            [
                f"{RULE_ZH_DESCRIPTION[rule]}。{en}.",
                f"异常 {len(rows)} 项"
                + ("" if rows else "：本项检查已执行，未发现异常 / checked, none found"),
            ],
            EXCEPTION_TABLES[rule],
            rows,
            lambda r: True,
        )
    wb.close()
    return out
