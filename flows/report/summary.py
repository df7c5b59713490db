"""The annual summary in Chinese: Markdown, one self-contained HTML file and a Word document.

The narrative comes from the template (``config/report/summary.zh.md``, see
``flows.report.template``); every figure in it is the warehouse's computed value written by
``flows.report.phrase``. The HTML links each figure to its appendix entry (definition, dbt
models, source rows, dbt tests, expectations, quarantine, fund audit) and carries its charts
as inline SVG, so it reads offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape
from pathlib import Path

import markdown as md

from flows.report import charts
from flows.report.template import Part, render, stated_numbers
from flows.report.trace import FigureTrace, ReportData
from flows.warehouse.figures import MONEY_UNITS, Figure

CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","WenQuanYi Zen Hei",sans-serif;margin:0;background:#f6f7f9;color:#222}
main{max-width:980px;margin:0 auto;padding:24px 32px;background:#fff}
h1{text-align:center;font-size:1.6em} h2{border-bottom:2px solid #2f6db5;padding-bottom:4px;margin-top:2em}
p{line-height:1.9;text-indent:2em}
a.figure{color:#0b4f9c;font-weight:bold;text-decoration:none;border-bottom:1px dotted #0b4f9c}
a.figure:hover{background:#e8f0fb}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.trace{border:1px solid #ddd;border-radius:4px;padding:8px 14px;margin:10px 0}
.trace:target{border-color:#2f6db5;background:#f2f7fd}
.trace dl{display:grid;grid-template-columns:9em 1fr;gap:2px 10px;margin:4px 0}
.trace dt{color:#555} .trace dd{margin:0}
.ok{color:#2e7d32} .bad{color:#c62828}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#666;font-size:.85em}
"""


def anchor(figure_id: str) -> str:
    return "fig-" + figure_id.replace(".", "-").replace("_", "-")


def _display(f: FigureTrace | Figure) -> str:
    return Figure(f.id, f.value, f.unit, f.zh, f.en).display()


def render_parts(template: str, data: ReportData) -> list[Part]:
    return render(template, data.year, data.values)


# ------------------------------------------------------------------------------ Markdown
def _unverified_note(f: FigureTrace) -> str:
    """Said beside the count when tests have no current result: never a silent 0/29."""
    n = len(f.unverified)
    return f" ({n} 项无当前结果 / without a current result)" if n else ""


def _appendix_md(data: ReportData, template: str) -> str:
    lines = [
        "",
        "---",
        "",
        "## 附录：数据溯源 / appendix: where each figure comes from",
        "",
        "| 指标 | figure | 数值 | 源记录 | dbt 测试通过 | 隔离行 (未解决) | 资金审计 |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for f in data.figures:
        lines.append(
            f"| {f.zh} | `{f.id}` | {_display(f)} {f.unit} | {f.source_rows:,} | "
            f"{f.tests_passed}/{len(f.tests)}{_unverified_note(f)} | {f.quarantined} ({f.quarantined_open}) | "
            f"{f.audit or '—'} |"
        )
    typed = stated_numbers(template)
    if typed:
        lines += [
            "",
            "文中手写的数字（非计算所得）/ numbers typed into the text, not computed: "
            + "、".join(f"{n}（第{line}行）" for line, n, _ in typed),
        ]
    lines += _yoy_md(data)
    return "\n".join(lines) + "\n"


YOY_YEARS = 5


def _yoy_years(data: ReportData) -> list[int]:
    """The report year and up to four before it that the warehouse has data for (a year with
    deliveries, flows/report/trace.py HISTORY_SQL)."""
    return [y for y in data.years if data.year - YOY_YEARS < y <= data.year]


NO_DATA = "—"
NO_DATA_NOTE = (
    f"{NO_DATA}：该年无数据（当年未收到交付，或该指标当年无源记录）/ no data that year "
    "(no delivery that year, or no source row of the figure)."
)


def yoy_change(prev: Decimal | None, cur: Decimal | None) -> str:
    """The change on the earlier year, or NO_DATA when there is nothing to grow from: the earlier
    year has no data for the figure (None: no delivery that year, or no source row) or was 0."""
    if prev is None or cur is None or prev == 0:
        return NO_DATA
    return f"{(cur - prev) / prev * 100:+.1f}%"


def yoy_rows(data: ReportData) -> tuple[list[int], list[tuple[FigureTrace, list[Decimal | None], str]]]:
    """The years compared and, per figure, its value each year (None: no data) and the change
    from the year before the report year; markdown and HTML write the same table."""
    years = _yoy_years(data)
    rows = []
    for f in data.figures:
        values = [data.history.get(f.id, {}).get(y) for y in years]
        rows.append((f, values, yoy_change(values[-2], values[-1]) if len(values) > 1 else NO_DATA))
    return years, rows


def _cell(value: Decimal | None, unit: str) -> str:
    return NO_DATA if value is None else _fmt(value, unit)


def _yoy_md(data: ReportData) -> list[str]:
    years, rows = yoy_rows(data)
    if len(years) < 2:
        return []
    lines = [
        "",
        "## 历年对比 / year over year",
        "",
        "| 指标 | " + " | ".join(str(y) for y in years) + " | 同比 change |",
        "|---|" + "---:|" * (len(years) + 1),
    ]
    for f, values, change in rows:
        lines.append(f"| {f.zh} | " + " | ".join(_cell(v, f.unit) for v in values) + f" | {change} |")
    return lines + ["", NO_DATA_NOTE]


def _fmt(value: Decimal, unit: str) -> str:
    return f"{value:,.2f}" if unit == "元" else f"{int(value):,}"


def to_markdown(parts: list[Part], data: ReportData, template: str) -> str:
    return "".join(p.text for p in parts).rstrip() + "\n" + _appendix_md(data, template)


# ---------------------------------------------------------------------------------- HTML
def _body_html(parts: list[Part], data: ReportData) -> str:
    """The narrative as HTML, each figure a link to its appendix entry."""
    marked, figs = [], []
    for p in parts:
        if p.figure_id:
            marked.append(f"\ue000{len(figs)}\ue001")
            figs.append(p)
        else:
            marked.append(p.text)
    html = md.markdown("".join(marked), extensions=["tables"])
    by_id = {f.id: f for f in data.figures}
    for i, p in enumerate(figs):
        f = by_id[p.figure_id]
        link = (
            f'<a class="figure" href="#{anchor(f.id)}" data-figure="{escape(f.id)}" '
            f'title="{escape(f.zh)}: {_display(f)} {escape(f.unit)}">{escape(p.text)}</a>'
        )
        html = html.replace(f"\ue000{i}\ue001", link)
    return html


@dataclass(frozen=True)
class ChartData:
    """What one bar chart of the summary draws (labels x series), read by the tests that reconcile
    it. ``figure_id``: the headline figure its bars add up to (month charts)."""

    id: str
    title: str
    labels: list[str]
    series: dict[str, list[Decimal]]
    money: bool = False
    figure_id: str | None = None
    note: str = ""


ZONES = ("海港", "空港", "临港")


def month_charts(data: ReportData) -> list[ChartData]:
    """One chart per figure with dated rows, in the catalogue's order: its months add up to the
    figure (a distinct count counts each key in the month it is first seen; rows without a date
    are a last bar 未知)."""
    out = []
    for f in data.figures:
        series = data.by_month.get(f.id)
        if not series or not any(series):
            continue
        labels = [str(m) for m in range(1, 13)] + [charts.UNKNOWN] * (len(series) - 12)
        money = f.unit in MONEY_UNITS
        note = f"合计 {charts.exact(sum(series, Decimal(0)), money)}" + (
            "，按首次月份" if f.id in data.distinct_ids else ""
        )
        out.append(
            ChartData(
                f"chart-month-{anchor(f.id)}",
                f"{f.zh}（{f.unit}）",
                labels,
                {f.zh: list(series)},
                money,
                f.id,
                note,
            )
        )
    return out


def zone_rows(data: ReportData) -> dict[str, dict[str, int]]:
    """Figure label -> its count per zone (未知: a key with no enterprise row), in the catalogue's
    order: each row adds up to its figure."""
    return {f.zh: data.by_zone[f.id] for f in data.figures if f.id in data.by_zone}


def zone_keys(rows: dict[str, dict[str, int]]) -> list[str]:
    found = {z for parts in rows.values() for z in parts}
    return (
        [z for z in ZONES if z in found]
        + sorted(found - set(ZONES) - {charts.UNKNOWN})
        + ([charts.UNKNOWN] if charts.UNKNOWN in found else [])
    )


def welfare_chart(data: ReportData) -> ChartData | None:
    """Each welfare programme's ledger total beside its project's net postings (the audit's
    reconciliation, as in the audit workbook)."""
    recon = data.audit.reconciliation
    if not recon:
        return None
    names = {r["project_code"]: r["project_name"] for r in data.audit.budget if r["project_name"]}
    return ChartData(
        "chart-welfare",
        "福利台账与财务入账（元）/ welfare ledger vs postings (yuan)",
        [str(names.get(r["project_code"], r["project_code"])) for r in recon],
        {
            "台账 ledger": [Decimal(r["ledger_total_yuan"] or 0) for r in recon],
            "入账 postings": [Decimal(r["postings_yuan"] or 0) for r in recon],
        },
        money=True,
    )


def budget_chart(data: ReportData) -> ChartData | None:
    """Each project's budget and its actual to date at the year's last month with postings."""
    last: dict[str, dict] = {}
    for r in data.audit.budget:
        if r["project_code"] not in last or r["report_month"] > last[r["project_code"]]["report_month"]:
            last[r["project_code"]] = r
    if not last:
        return None
    return ChartData(
        "chart-budget",
        "预算与实际（元）/ budget vs actual to date (yuan)",
        [str(r["project_name"] or code) for code, r in last.items()],
        {
            "预算 budget": [Decimal(r["budget_yuan"] or 0) for r in last.values()],
            "实际 actual": [Decimal(r["actual_to_date_yuan"] or 0) for r in last.values()],
        },
        money=True,
    )


def _bars(c: ChartData, width: int = 760, height: int = 260) -> str:
    return charts.bars(c.title, c.labels, c.series, c.id, width, height, money=c.money, note=c.note)


def _charts_html(data: ReportData) -> str:
    out = [
        '<section id="charts"><h2>图表 / charts</h2>',
        "<h3>各项指标按月 / figures by month</h3>",
        '<div class="charts" id="chart-months">',
    ]
    out += [_bars(c, 310, 160) for c in month_charts(data)]
    out.append("</div>")
    rows = zone_rows(data)
    out.append("<h3>按片区 / by zone</h3>")
    out.append(
        charts.stacked(
            "按企业所属片区 / figures counted by enterprise, by zone", rows, zone_keys(rows), "chart-zones"
        )
        if rows
        else "<p>无按企业统计的指标。</p>"
    )
    welfare, budget = welfare_chart(data), budget_chart(data)
    out.append("<h3>福利项目 / welfare by programme</h3>")
    out.append(_bars(welfare) if welfare else "<p>本年无福利台账。</p>")
    out.append("<h3>预算执行 / budget vs actual</h3>")
    out.append(_bars(budget) if budget else "<p>本年无预算。</p>")
    out.append("</section>")
    return "".join(out)


def _trace_html(f: FigureTrace) -> str:
    tests_ok = all(t.status == "pass" for t in f.tests)
    failed = [t for t in f.tests if t.status != "pass"]
    suites = (
        "".join(
            f"<li><code>{escape(s.name)}</code>: {s.expectations} 项期望 / expectations; "
            f"{s.rows_loaded:,} 行通过并入库 / rows passed and loaded, {s.rows_quarantined:,} 行隔离 / quarantined"
            + (f", {s.files_rejected} 个文件整批拒收 / files rejected" if s.files_rejected else "")
            + "</li>"
            for s in f.suites
        )
        or "<li>—</li>"
    )
    audit = (
        "—"
        if f.audit is None
        else (
            f'<span class="{"ok" if f.audit_clean else ("bad" if f.audit_clean is False else "")}">{escape(f.audit)}</span>'
        )
    )
    test_list = ", ".join(escape(t.name) for t in f.tests[:60]) + (" …" if len(f.tests) > 60 else "")
    return (
        f'<div class="trace" id="{anchor(f.id)}"><h3>{escape(f.zh)} <code>{escape(f.id)}</code></h3><dl>'
        f"<dt>数值 value</dt><dd>{_display(f)} {escape(f.unit)}</dd>"
        f"<dt>定义 definition</dt><dd>{escape(f.definition)}<br><span class=meta>{escape(f.en)}</span></dd>"
        f"<dt>dbt 模型 models</dt><dd>{' → '.join(f'<code>{escape(m)}</code>' for m in f.models)}</dd>"
        f'<dt>源记录 source rows</dt><dd class="source-rows">{f.source_rows:,}</dd>'
        f'<dt>dbt 测试 tests</dt><dd><span class="{"ok" if tests_ok and f.tests else "bad"}">'
        f"{f.tests_passed}/{len(f.tests)} 通过 / passed</span>"
        + ("".join(f' <span class="bad">{escape(t.name)}: {escape(t.status)}</span>' for t in failed[:10]))
        + f"<details><summary>列表 / list</summary>{test_list}</details></dd>"
        f"<dt>数据期望 expectations</dt><dd><ul>{suites}</ul></dd>"
        f"<dt>隔离 quarantine</dt><dd>{f.quarantined:,} 行 / rows ({f.quarantined_open:,} 未解决 / open)</dd>"
        f"<dt>资金审计 fund audit</dt><dd>{audit}</dd></dl>"
        f'<a href="#top" class="meta">↑ 返回 / back</a></div>'
    )


def _yoy_html(data: ReportData) -> str:
    years, rows = yoy_rows(data)
    if len(years) < 2:
        return ""
    head = "".join(f"<th>{y}</th>" for y in years)
    body = "".join(
        f'<tr><td><a href="#{anchor(f.id)}">{escape(f.zh)}</a></td>'
        + "".join(f'<td class="n">{_cell(v, f.unit)}</td>' for v in values)
        + f'<td class="n">{change}</td></tr>'
        for f, values, change in rows
    )
    return (
        f'<section id="yoy"><h2>历年对比 / year over year</h2><table><tr><th>指标</th>{head}'
        f"<th>同比 change</th></tr>{body}</table><p class=meta>{escape(NO_DATA_NOTE)}</p></section>"
    )


def to_html(parts: list[Part], data: ReportData, template: str, generated: datetime) -> str:
    title = next(
        (p.text.split("\n", 1)[0].lstrip("# ") for p in parts if p.text.startswith("#")),
        f"{data.year}年工作总结",
    )
    typed = stated_numbers(template)
    typed_html = (
        (
            "<h3>文中手写的数字 / numbers typed into the text</h3><p class=meta>以下数字写在模板文字中，"
            "不是由数据计算所得 / these are part of the template's text, not computed:</p><ul>"
            + "".join(f"<li>{escape(n)}（模板第{line}行：{escape(ctx)}）</li>" for line, n, ctx in typed)
            + "</ul>"
        )
        if typed
        else ""
    )
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f'<body><main id="top"><article id="summary">{_body_html(parts, data)}</article>'
        f"{_charts_html(data)}{_yoy_html(data)}"
        f'<section id="appendix"><h2>附录：数据溯源 / appendix: where each figure comes from</h2>'
        f"<p class=meta>{len(data.figures)} 项指标 / figures. dbt 结果来自运行 / dbt results of run "
        f"{escape(data.run_id or '—')}{'' if data.artifacts else '（未找到 dbt 产物 / artifacts not found）'}. "
        f"生成于 / generated {generated:%Y-%m-%d %H:%M}.</p>"
        + "".join(_trace_html(f) for f in data.figures)
        + typed_html
        + "</section></main></body></html>\n"
    )


# ---------------------------------------------------------------------------------- Word
def to_docx(parts: list[Part], data: ReportData, out: Path) -> Path:
    # deferred: python-docx (~0.2 s, with lxml), only the Word file needs it
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.size = Pt(11)
    paragraphs: list[list[Part]] = [[]]
    for p in parts:
        if p.figure_id:
            paragraphs[-1].append(p)
            continue
        chunks = p.text.split("\n")
        for i, chunk in enumerate(chunks):
            if i:
                paragraphs.append([])
            if chunk:
                paragraphs[-1].append(Part(chunk))
    for runs in paragraphs:
        if not runs:
            continue
        first = runs[0].text if runs[0].figure_id is None else ""
        level = len(first) - len(first.lstrip("#"))
        if level:
            runs = [Part(first.lstrip("# "))] + runs[1:]
            para = doc.add_heading(level=max(0, level - 1))
        else:
            para = doc.add_paragraph()
        for r in runs:
            run = para.add_run(r.text)
            run.bold = bool(r.figure_id) or None
    doc.add_page_break()
    doc.add_heading("附录：数据溯源", level=1)
    table = doc.add_table(rows=1, cols=6)
    table.style = "Table Grid"
    for cell, head in zip(table.rows[0].cells, ("指标", "数值", "定义", "源记录", "dbt 测试", "隔离 / 审计")):
        cell.text = head
    for f in data.figures:
        cells = table.add_row().cells
        cells[0].text = f"{f.zh}\n{f.id}"
        cells[1].text = f"{_display(f)} {f.unit}"
        cells[2].text = f.definition
        cells[3].text = f"{f.source_rows:,}"
        cells[4].text = f"{f.tests_passed}/{len(f.tests)}{_unverified_note(f)}"
        cells[5].text = f"{f.quarantined} ({f.quarantined_open})" + (f"\n{f.audit}" if f.audit else "")
    doc.save(str(out))
    return out


# ------------------------------------------------------------------------------- writing
def figures_payload(data: ReportData) -> dict:
    return {
        "year": data.year,
        "run_id": data.run_id,
        "figures": [
            {
                "id": f.id,
                "value": Figure(f.id, f.value, f.unit, f.zh, f.en).json_value(),
                "unit": f.unit,
                "zh": f.zh,
                "en": f.en,
                "source_rows": f.source_rows,
                "models": f.models,
                "dbt_tests": {
                    "passed": f.tests_passed,
                    "total": len(f.tests),
                    "without_current_result": len(f.unverified),
                    "results_from_runs": sorted({t.run_id for t in f.tests if t.run_id}),
                },
                "expectation_suites": [s.name for s in f.suites],
                "quarantined": f.quarantined,
                "quarantined_open": f.quarantined_open,
                "audit": f.audit,
            }
            for f in data.figures
        ],
    }


def write_report(
    data: ReportData, template: str, out_dir: Path, generated: datetime | None = None
) -> list[Path]:
    """Write summary-<year>.md/.html/.docx and figures-<year>.json into ``out_dir``."""
    generated = generated or datetime.now()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = render_parts(template, data)
    y = data.year
    files = [
        out_dir / f"summary-{y}.md",
        out_dir / f"summary-{y}.html",
        out_dir / f"summary-{y}.docx",
        out_dir / f"figures-{y}.json",
    ]
    files[0].write_text(to_markdown(parts, data, template), encoding="utf-8")
    files[1].write_text(to_html(parts, data, template, generated), encoding="utf-8")
    to_docx(parts, data, files[2])
    files[3].write_text(
        json.dumps(figures_payload(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return files
