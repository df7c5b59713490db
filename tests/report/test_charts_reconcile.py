"""Every chart and table of the annual summary reconciles with its headline figure, its axes are
marked in round numbers (whole ones for counts), and the year-over-year table shows "—" where the
earlier year has no data.

Three levels: ``nice_ticks`` and the year-over-year table as pure functions; the chart series read
from a small hand-built figures mart (a counted key with no enterprise row, a row without a date, a
key counted in two months, a year before the first delivery) on DuckDB and PostgreSQL; and the
summary of the 2021 demo written by a real run, whose SVG bars are summed and compared with
``marts.fig_annual_figures``.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.report.audit import Audit
from flows.report.charts import UNKNOWN, exact, nice_ticks, tick_labels
from flows.report.summary import (
    NO_DATA,
    budget_chart,
    month_charts,
    to_html,
    to_markdown,
    welfare_chart,
    yoy_change,
    zone_keys,
    zone_rows,
)
from flows.report.trace import MONEY_PROJECTS, FigureTrace, ReportData, chart_series
from tests.support import Demo2021, throwaway_postgres

# ----------------------------------------------------------------------------- nice ticks
tops = st.one_of(
    st.integers(min_value=0, max_value=10**12),
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(top=tops, n=st.integers(min_value=1, max_value=5), integer=st.booleans())
def test_nice_ticks_cover_the_maximum_in_even_round_steps(top: Decimal | int, n: int, integer: bool) -> None:
    top = Decimal(top)
    if integer:
        top = top.to_integral_value()
    ticks = nice_ticks(top, n, integer=integer)
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0 and ticks[-1] >= top and len(ticks) <= n + 1 <= 6
    drawn_top = top if top > 0 else Decimal(1)  # an all-zero chart is drawn on an axis up to 1
    assert len(ticks) == 2 or ticks[-2] < drawn_top  # no empty step above the maximum
    assert all(b - a == step for a, b in itertools.pairwise(ticks))
    mantissa = step.scaleb(-step.adjusted())
    assert mantissa.normalize() in {Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5)}
    if integer:
        assert all(t == t.to_integral_value() for t in ticks)
        assert all("." not in label for label in tick_labels(ticks))


@pytest.mark.unit
@settings(max_examples=100, deadline=None)
@given(bottom=st.integers(min_value=-(10**6), max_value=0), top=st.integers(min_value=0, max_value=10**6))
def test_nice_ticks_span_a_negative_bottom(bottom: int, top: int) -> None:
    ticks = nice_ticks(top, 5, integer=True, bottom=bottom)
    assert ticks[0] <= bottom and ticks[-1] >= top and 0 in ticks and len(ticks) <= 6


@pytest.mark.unit
@pytest.mark.parametrize(
    ("top", "integer", "money", "labels"),
    [
        (Decimal("6.75"), True, False, ["0", "2", "4", "6", "8"]),  # not 0, 1.69, 3.38, 5.06, 6.75
        (Decimal("1237.5"), True, False, ["0", "500", "1,000", "1,500"]),  # not 1,237.50
        (1, True, False, ["0", "1"]),  # not 0.50
        (0, True, False, ["0", "1"]),
        (Decimal("986543.21"), False, True, ["0", "25万", "50万", "75万", "100万"]),
        (Decimal("98654.21"), False, True, ["0", "2.5万", "5万", "7.5万", "10万"]),
        (Decimal("3.5"), False, True, ["0", "1", "2", "3", "4"]),
    ],
)
def test_tick_labels(top: Decimal, integer: bool, money: bool, labels: list[str]) -> None:
    assert tick_labels(nice_ticks(top, 4, integer=integer), money) == labels


# ------------------------------------------------------------------------ year over year
def trace(fid: str, value: str, unit: str = "人次") -> FigureTrace:
    return FigureTrace(fid, Decimal(value), unit, fid, fid, "", 1, [])


@pytest.mark.unit
def test_year_over_year_says_no_data_instead_of_a_percentage() -> None:
    figures = [
        trace("a.visits", "39212"),
        trace("b.cases", "74"),
        trace("c.new", "5"),
        trace("d.yuan", "10.50", "元"),
    ]
    history = {
        "a.visits": {2019: Decimal(10), 2021: Decimal(39212)},  # 2020: no data
        "b.cases": {2020: Decimal(0), 2021: Decimal(74)},  # 0 the year before
        "c.new": {2020: Decimal(4), 2021: Decimal(5)},
        "d.yuan": {2020: Decimal("21.00"), 2021: Decimal("10.50")},
    }
    data = ReportData(2021, figures, {}, {}, Audit(2021, [], [], []), history, None, None)
    assert [
        yoy_change(None, Decimal(1)),
        yoy_change(Decimal(0), Decimal(1)),
        yoy_change(Decimal(4), Decimal(5)),
    ] == [NO_DATA, NO_DATA, "+25.0%"]
    md = to_markdown([], data, "")
    assert "| a.visits | 10 | — | 39,212 | — |" in md
    assert "| b.cases | — | 0 | 74 | — |" in md
    assert "| c.new | — | 4 | 5 | +25.0% |" in md
    assert "| d.yuan | — | 21.00 | 10.50 | -50.0% |" in md
    html = to_html([], data, "", datetime(2022, 1, 5))
    yoy = re.search(r'<section id="yoy">.*?</section>', html, re.DOTALL)
    assert yoy is not None
    cells = [
        re.findall(r'<td class="n">([^<]*)</td>', row)
        for row in re.findall(r"<tr>(.*?)</tr>", yoy.group(0))[1:]
    ]
    assert cells == [
        ["10", NO_DATA, "39,212", NO_DATA],
        [NO_DATA, "0", "74", NO_DATA],
        [NO_DATA, "4", "5", "+25.0%"],
        [NO_DATA, "21.00", "10.50", "-50.0%"],
    ]
    assert "%" not in "".join(c[-1] for c in cells[:2])


# -------------------------------------------------------------- a hand-built figures mart
DDL = (
    "CREATE SCHEMA marts",
    "CREATE SCHEMA ops",
    (
        "CREATE TABLE marts.fig_figure_rows (figure_id VARCHAR(60), report_year INTEGER, count_key VARCHAR(40), "
        "amount DECIMAL(18, 2), measure VARCHAR(10), event_on DATE)"
    ),
    "CREATE TABLE marts.figure_catalogue (figure_id VARCHAR(60), unit VARCHAR(8), measure VARCHAR(10))",
    "CREATE TABLE marts.dim_enterprise (uscc VARCHAR(40), zone VARCHAR(8))",
    "CREATE TABLE ops.load_ledger (delivery_date DATE, status VARCHAR(10))",
)
CATALOGUE = [
    ("x.enterprises", "家", "distinct"),
    ("x.people", "名", "distinct"),
    ("x.amount_yuan", "元", "sum"),
    ("x.status", "家", "rows"),
    ("x.visits", "人次", "rows"),
]
ENTERPRISES = [("E1", "海港"), ("E2", "空港"), ("E3", None)]  # E9 is counted but has no enterprise row
ROWS = [
    # x.enterprises: E1 in March and May (one key: March's), E2, E3 (no zone), E9 (no enterprise row)
    ("x.enterprises", 2021, "E1", None, "2021-03-04"),
    ("x.enterprises", 2021, "E1", None, "2021-05-06"),
    ("x.enterprises", 2021, "E2", None, "2021-02-01"),
    ("x.enterprises", 2021, "E3", None, "2021-07-01"),
    ("x.enterprises", 2021, "E9", None, "2021-06-30"),
    # x.people: distinct people (名), not enterprises: no zone row
    ("x.people", 2021, "p1", None, "2021-01-10"),
    ("x.people", 2021, "p1", None, "2021-01-20"),
    ("x.people", 2021, "p2", None, "2021-12-31"),
    # x.amount_yuan: one row without a date (its month is 未知)
    ("x.amount_yuan", 2021, None, "100.25", "2021-01-31"),
    ("x.amount_yuan", 2021, None, "-20.00", "2021-01-31"),
    ("x.amount_yuan", 2021, None, "7.50", None),
    ("x.amount_yuan", 2020, None, "50.00", "2020-08-01"),
    # x.status: a status at year end, no dates: no monthly chart
    ("x.status", 2021, None, None, None),
    ("x.status", 2021, None, None, None),
    ("x.status", 2020, None, None, None),
    # x.visits: last December's visits carried by this year's first delivery, and a year (2019) with no delivery
    ("x.visits", 2021, None, None, "2021-04-02"),
    ("x.visits", 2020, None, None, "2020-12-01"),
    ("x.visits", 2019, None, None, "2019-12-01"),
]
LEDGER = [("2020-06-01", "loaded"), ("2021-04-01", "loaded"), ("2019-03-01", "rejected")]
# fig_annual_figures as int_figures.sql and fig_annual_figures.sql compute it: every figure for every year
FIGURES_SQL = """
CREATE TABLE marts.fig_annual_figures AS
WITH years AS (SELECT DISTINCT report_year FROM marts.fig_figure_rows),
computed AS (
    SELECT figure_id, report_year,
           CASE max(measure) WHEN 'sum' THEN sum(amount) WHEN 'distinct' THEN count(DISTINCT count_key)
                ELSE count(*) END AS value,
           count(*) AS source_rows
    FROM marts.fig_figure_rows GROUP BY figure_id, report_year)
SELECT c.figure_id, y.report_year, c.unit, coalesce(computed.value, 0) AS value,
       coalesce(computed.source_rows, 0) AS source_rows
FROM marts.figure_catalogue AS c CROSS JOIN years AS y
LEFT JOIN computed ON computed.figure_id = c.figure_id AND computed.report_year = y.report_year"""


def build_mart(engine: sa.Engine) -> None:
    measure = {fid: m for fid, _, m in CATALOGUE}
    with engine.begin() as conn:
        for stmt in DDL:
            conn.execute(sa.text(stmt))
        conn.execute(
            sa.text("INSERT INTO marts.figure_catalogue VALUES (:f, :u, :m)"),
            [{"f": f, "u": u, "m": m} for f, u, m in CATALOGUE],
        )
        conn.execute(
            sa.text("INSERT INTO marts.dim_enterprise VALUES (:u, :z)"),
            [{"u": u, "z": z} for u, z in ENTERPRISES],
        )
        conn.execute(
            sa.text("INSERT INTO ops.load_ledger VALUES (CAST(:d AS DATE), :s)"),
            [{"d": d, "s": s} for d, s in LEDGER],
        )
        conn.execute(
            sa.text(
                "INSERT INTO marts.fig_figure_rows VALUES (:f, :y, :k, CAST(:a AS DECIMAL(18, 2)), :m, "
                "CAST(:e AS DATE))"
            ),
            [{"f": f, "y": y, "k": k, "a": a, "m": measure[f], "e": e} for f, y, k, a, e in ROWS],
        )
        conn.execute(sa.text(FIGURES_SQL))


@pytest.fixture(scope="module", params=[pytest.param("duckdb", marks=pytest.mark.unit), "postgresql"])
def mart(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    if request.param == "duckdb":
        engine = sa.create_engine(f"duckdb:///{tmp_path_factory.mktemp('mart') / 'wh.duckdb'}")
        build_mart(engine)
        yield engine
        engine.dispose()
        return
    with throwaway_postgres("unionwh_charts") as url:
        engine = sa.create_engine(url)
        build_mart(engine)
        yield engine
        engine.dispose()


def figures_of(engine: sa.Engine, year: int) -> dict[str, Decimal]:
    with engine.connect() as conn:
        return {
            r[0]: Decimal(str(r[1]))
            for r in conn.execute(
                sa.text("SELECT figure_id, value FROM marts.fig_annual_figures WHERE report_year = :y"),
                {"y": year},
            )
        }


def test_hand_built_mart_every_series_adds_up_to_its_figure(mart: sa.Engine) -> None:
    figures = figures_of(mart, 2021)
    with mart.connect() as conn:
        series = chart_series(conn, 2021)
    assert figures == {
        "x.enterprises": 4,
        "x.people": 2,
        "x.amount_yuan": Decimal("87.75"),
        "x.status": 2,
        "x.visits": 1,
    }
    # months: every dated figure, adding up to it; a key in its first month; undated rows as a 13th value
    assert set(series.by_month) == {"x.enterprises", "x.people", "x.amount_yuan", "x.visits"}
    assert {fid: sum(s) for fid, s in series.by_month.items()} == {
        fid: figures[fid] for fid in series.by_month
    }
    assert series.by_month["x.enterprises"][2:5] == [1, 0, 0]  # E1 in March, not again in May
    assert len(series.by_month["x.amount_yuan"]) == 13 and series.by_month["x.amount_yuan"][12] == Decimal(
        "7.50"
    )
    assert series.distinct_ids == {"x.enterprises", "x.people"}
    # zones: enterprises only; the key without an enterprise row and the one without a zone are 未知
    assert series.by_zone == {"x.enterprises": {"海港": 1, "空港": 1, UNKNOWN: 2}}
    assert sum(series.by_zone["x.enterprises"].values()) == figures["x.enterprises"]
    # history: the years with a delivery (2019's only delivery was rejected), a figure without rows that year: none
    assert series.history["x.visits"] == {2020: 1, 2021: 1}
    assert series.history["x.amount_yuan"] == {2020: Decimal("50.00"), 2021: Decimal("87.75")}
    assert series.history["x.people"] == {2021: 2} and series.history["x.status"] == {2020: 1, 2021: 2}


def test_hand_built_mart_charts_of_the_summary(mart: sa.Engine) -> None:
    """The summary's chart data (the functions to_html draws) from the series above."""
    figures = figures_of(mart, 2021)
    units = {f: u for f, u, _ in CATALOGUE}
    with mart.connect() as conn:
        series = chart_series(conn, 2021)
    traces = [trace(fid, str(v), units[fid]) for fid, v in figures.items()]
    data = ReportData(
        2021,
        traces,
        series.by_month,
        series.by_zone,
        Audit(2021, [], [], []),
        series.history,
        None,
        None,
        series.distinct_ids,
    )
    charts = month_charts(data)
    assert {c.figure_id: sum(next(iter(c.series.values()))) for c in charts} == {
        fid: figures[fid] for fid in series.by_month
    }
    amount = next(c for c in charts if c.figure_id == "x.amount_yuan")
    assert amount.labels[-1] == UNKNOWN and amount.money and amount.note == "合计 87.75"
    assert next(c for c in charts if c.figure_id == "x.enterprises").note == "合计 4，按首次月份"
    rows = zone_rows(data)
    assert zone_keys(rows) == ["海港", "空港", UNKNOWN]
    html = to_html([], data, "", datetime(2022, 1, 5))
    assert svg_values(html)["chart-zones"] == {"x.enterprises": {"海港": 1, "空港": 1, UNKNOWN: 2}}


# ----------------------------------------------------------------------- the 2021 demo
def svg_values(html: str) -> dict[str, dict[str, dict[str, Decimal]]]:
    """chart id -> series -> label -> the value its bar or segment draws (from the rendered SVG)."""
    out: dict[str, dict[str, dict[str, Decimal]]] = {}
    for chart_id, body in re.findall(r'<svg class="chart" id="([^"]+)"(.*?)</svg>', html, re.DOTALL):
        values: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for series, label, value in re.findall(
            r'<rect class="bar"[^>]*data-series="([^"]*)" data-label="([^"]*)" data-value="([^"]*)"', body
        ):
            values[series][label] = Decimal(value)
        out[chart_id] = dict(values)
    return out


def tick_texts(html: str, chart_id: str) -> list[str]:
    body = re.search(rf'<svg class="chart" id="{re.escape(chart_id)}"(.*?)</svg>', html, re.DOTALL)
    assert body is not None, chart_id
    return re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', body.group(1))


@dataclass
class DemoSummary:
    html: str
    markdown: str
    data: ReportData
    figures: dict[str, Decimal]
    units: dict[str, str]
    dated: set[str]
    unmatched: dict[str, int]
    reconciliation: dict[str, tuple[Decimal, Decimal]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_2021: Demo2021) -> DemoSummary:
    """The session's 2021 demo run (read only), then `unionwh report` as a user writes the summary."""
    from flows.cli import main
    from flows.report.trace import collect
    from flows.settings import load_settings
    from tests.support import Env

    home = tmp_path_factory.mktemp("charts-demo")
    assert demo_2021.first.status == "succeeded"
    with Env(**demo_2021.env):
        assert main(["report", "--year", "2021", "--out", str(home / "summary")]) == 0
        settings_ = load_settings()
    engine = sa.create_engine(demo_2021.env["UNIONWH_WAREHOUSE"], connect_args={"read_only": True})
    try:
        data = collect(engine, 2021, settings_.output_dir)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT figure_id, value, unit FROM marts.fig_annual_figures WHERE report_year = 2021"
                )
            ).all()
            dated = set(
                conn.execute(
                    sa.text(
                        "SELECT DISTINCT figure_id FROM marts.fig_figure_rows "
                        "WHERE report_year = 2021 AND event_on IS NOT NULL"
                    )
                ).scalars()
            )
            unmatched = dict(
                conn.execute(
                    sa.text(
                        "SELECT r.figure_id, count(DISTINCT r.count_key) FROM marts.fig_figure_rows r "
                        "WHERE r.report_year = 2021 AND r.measure = 'distinct' AND NOT EXISTS "
                        "(SELECT 1 FROM marts.dim_enterprise e WHERE e.uscc = r.count_key AND e.zone IS NOT NULL) "
                        "GROUP BY 1"
                    )
                ).all()
            )
            recon = {
                r[0]: (Decimal(str(r[1])), Decimal(str(r[2])))
                for r in conn.execute(
                    sa.text(
                        "SELECT project_code, ledger_total_yuan, postings_yuan FROM marts.audit_reconciliation "
                        "WHERE report_year = 2021"
                    )
                )
            }
    finally:
        engine.dispose()
    return DemoSummary(
        (home / "summary" / "summary-2021.html").read_text(encoding="utf-8"),
        (home / "summary" / "summary-2021.md").read_text(encoding="utf-8"),
        data,
        {r[0]: Decimal(str(r[1])) for r in rows},
        {r[0]: r[2] for r in rows},
        dated,
        {k: int(v) for k, v in unmatched.items()},
        recon,
    )


@pytest.mark.e2e
def test_demo_every_month_chart_adds_up_to_its_figure(demo: DemoSummary) -> None:
    drawn = svg_values(demo.html)
    month = {c.figure_id: c for c in month_charts(demo.data)}
    assert set(month) == {fid for fid in demo.dated if demo.figures[fid] != 0}  # none left out
    for fid, chart in month.items():
        [(_series, bars)] = drawn[chart.id].items()
        assert sum(bars.values()) == sum(next(iter(chart.series.values()))) == demo.figures[fid], fid
        money = demo.units[fid] == "元"
        assert f"合计 {exact(demo.figures[fid], money)}" in chart.note
        ticks = tick_texts(demo.html, chart.id)
        assert 2 <= len(ticks) <= 6
        if not money:  # a count's axis: whole numbers only
            assert all(re.fullmatch(r"[\d,]+", t) for t in ticks), (fid, ticks)


@pytest.mark.e2e
def test_demo_zone_chart_rows_add_up_to_their_figures_with_unmatched_keys_as_unknown(
    demo: DemoSummary,
) -> None:
    drawn = svg_values(demo.html)["chart-zones"]
    labels = {f.zh: f.id for f in demo.data.figures}
    enterprise_counts = {
        fid for fid, unit in demo.units.items() if unit == "家" and fid in demo.data.distinct_ids
    }
    assert {labels[row] for row in drawn} == enterprise_counts and len(enterprise_counts) >= 5
    for row, parts in drawn.items():
        fid = labels[row]
        assert sum(parts.values()) == demo.figures[fid], (fid, parts)
        assert parts.get(UNKNOWN, 0) == demo.unmatched.get(fid, 0), fid
    # the case: a paid enterprise with no enterprise row (265, drawn as 264 by the inner join)
    allowance = drawn[next(f.zh for f in demo.data.figures if f.id == "funds.cadre_allowance_enterprises")]
    assert allowance[UNKNOWN] >= 1
    assert (
        f'{exact(demo.figures["funds.cadre_allowance_enterprises"])}<tspan fill="#777">（含{UNKNOWN}'
        in demo.html
    )


@pytest.mark.e2e
def test_demo_welfare_and_budget_charts_agree_with_the_audit_and_the_figures(demo: DemoSummary) -> None:
    drawn = svg_values(demo.html)
    welfare, budget = welfare_chart(demo.data), budget_chart(demo.data)
    assert welfare is not None and budget is not None
    names = dict(zip([r["project_code"] for r in demo.data.audit.reconciliation], welfare.labels))
    assert {names[code]: v for code, (v, _) in demo.reconciliation.items()} == drawn["chart-welfare"][
        "台账 ledger"
    ]
    assert {names[code]: v for code, (_, v) in demo.reconciliation.items()} == drawn["chart-welfare"][
        "入账 postings"
    ]
    actual = drawn["chart-budget"]["实际 actual"]
    project_names = {r["project_code"]: r["project_name"] for r in demo.data.audit.budget}
    paid = {fid: code for fid, code in MONEY_PROJECTS.items() if code in project_names}
    assert len(paid) == 3
    for fid, code in paid.items():  # a money figure paid by a project is that project's actual to date
        assert actual[project_names[code]] == demo.figures[fid], fid
    assert (
        drawn["chart-welfare"]["入账 postings"][names["YQWZ"]]
        == demo.figures["welfare.pandemic_supply_value_yuan"]
    )
    assert all(t.endswith("万") or t == "0" for t in tick_texts(demo.html, "chart-budget"))


@pytest.mark.e2e
def test_demo_tables_state_the_figures_and_no_growth_from_a_year_without_data(demo: DemoSummary) -> None:
    """The appendix states each figure; the demo's warehouse has deliveries of 2021 only, so 2020's
    stragglers (40 December visits against 39,212) are no year to compare with."""
    for f in demo.data.figures:
        assert f.value == demo.figures[f.id]
        assert demo.data.history[f.id][2021] == demo.figures[f.id]
    assert demo.data.years == [2021]
    assert "历年对比" not in demo.markdown and 'id="yoy"' not in demo.html
    assert "97930" not in demo.html + demo.markdown
