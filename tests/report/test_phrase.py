"""The formatter writes every figure the way the 2021 seed summary does, and only inside the
values for which the seed's phrase is true (figures.yaml's seed_range)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.errors import ConfigError
from flows.report.phrase import chinese_numeral, parse_style, phrase
from flows.report.template import placeholders, render, stated_numbers
from tests.support import ROOT

pytestmark = pytest.mark.unit

TEMPLATE = (ROOT / "config" / "report" / "summary.zh.md").read_text(encoding="utf-8")
STYLES = {p.figure_id: p for p in placeholders(TEMPLATE)}


def seed_phrase(fig: dict) -> str:
    """The seed's phrase; figures.yaml reads the seed's self-contradictory 近70余万元 as 余."""
    if "read as 余" in fig.get("phrase", ""):
        return fig["seed"].replace("近", "", 1)
    return fig["seed"]


def written(fig: dict, value: Decimal) -> str:
    p = STYLES[fig["id"]]
    return phrase(value, p.style) + p.after


def test_every_catalogued_figure_has_a_placeholder(figure_catalogue: list[dict]) -> None:
    assert sorted(STYLES) == sorted(f["id"] for f in figure_catalogue)


def test_seed_range_bounds_give_the_seed_phrase(figure_catalogue: list[dict]) -> None:
    for fig in figure_catalogue:
        for bound in fig["seed_range"]:
            value = Decimal(str(bound))
            assert written(fig, value).startswith(seed_phrase(fig)), (fig["id"], value, written(fig, value))


def test_every_value_in_a_range_gives_the_seed_phrase_and_none_outside(figure_catalogue: list[dict]) -> None:
    for fig in figure_catalogue:
        lo, hi = (Decimal(str(b)) for b in fig["seed_range"])
        eps = Decimal("0.01") if fig["unit"] == "元" else Decimal(1)
        inside = [lo, hi, (lo + hi) / 2 // eps * eps]
        if fig["unit"] != "元":
            inside += [lo + i for i in range(0, int(hi - lo) + 1, max(1, int(hi - lo) // 200))]
        for value in inside:
            assert written(fig, value).startswith(seed_phrase(fig)), (fig["id"], value, written(fig, value))
        for value in (lo - eps, hi + eps):
            assert not written(fig, value).startswith(seed_phrase(fig)), (fig["id"], value)


@pytest.mark.parametrize(
    ("value", "style", "text"),
    [
        (1131, "", "1131"),
        (Decimal("3498856.37"), "万余0.01", "349.88万余"),
        (Decimal("3498800.00"), "万余0.01", "349.88万"),  # exact: no 余
        (121600, "万余0.01", "12.16万"),
        (120000, "万余0.01", "12万"),
        (Decimal("705432.10"), "万余1", "70余万"),
        (700000, "万余1", "70万"),
        (Decimal(5000), "万余1", "0.5万"),  # nothing left at 1万: finer
        (38500, "万近1", "近4万"),
        (37000, "万近1", "3余万"),  # too far below 4万 for 近
        (40000, "万近1", "4万"),
        (960000, "万汉近100/5", "近百万"),
        (3450, "近500", "近3500"),
        (3200, "近500", "3000余"),
        (15, "汉余10", "十余"),
        (25, "汉余10", "二十余"),
        (30, "汉余10", "三十"),
        (2, "汉", "两"),
        (3, "汉", "三"),
        (20500, "余1000", "20000余"),
        (400, "余1000", "400"),
        (355, "约50", "约350"),
        (372, "约50", "372"),
        (2500, "超1000", "超2000"),
        (2000, "超1000", "2000"),
    ],
)
def test_phrases(value: object, style: str, text: str) -> None:
    assert phrase(value, style) == text


def test_chinese_numerals() -> None:
    assert [chinese_numeral(n) for n in (0, 2, 10, 11, 20, 100, 105, 110, 1000, 3500, 10000, 20300)] == [
        "零",
        "两",
        "十",
        "十一",
        "二十",
        "百",
        "一百零五",
        "一百一十",
        "千",
        "三千五百",
        "一万",
        "二万零三百",
    ]


def test_bad_styles_and_placeholders_are_named() -> None:
    for bad in ("万余", "近-5", "余0", "abc"):
        with pytest.raises(ConfigError, match="figure style"):
            parse_style(bad)
    with pytest.raises(ConfigError, match="line 2: '{rights consultations}' is no placeholder"):
        placeholders("ok\n接待{rights consultations}件")
    with pytest.raises(ConfigError, match="line 1: figure style '近x'"):
        placeholders("{rights.consultations:近x}")
    with pytest.raises(ConfigError, match="lacks: rights.nope"):
        render("{rights.nope}", 2021, {"rights.consultations": 1})


def test_render_fills_years_figures_and_braces_and_lists_typed_numbers() -> None:
    text = "<!-- {not:rendered} -->\n# {year}年\n{year-1}年度{{注}}接待{rights.consultations}件，超5000人次"
    parts = render(text, 2021, {"rights.consultations": Decimal(1131)})
    assert "".join(p.text for p in parts) == "# 2021年\n2020年度{注}接待1131件，超5000人次"
    assert [p.figure_id for p in parts if p.figure_id] == ["rights.consultations"]
    assert [(n[0], n[1]) for n in stated_numbers(text)] == [(3, "5000")]


@pytest.mark.parametrize(
    ("value", "style", "text"),
    [
        ("-1206249.66", "万余0.01", "-120.624966万"),  # exact: never 余 ("more than") of a negative size
        ("-5", "", "-5"),
        ("-5", "汉", "负五"),
        ("-120", "近500", "-120"),
        ("-3", "约50/10", "-3"),
    ],
)
def test_a_negative_figure_is_stated_exactly_with_its_sign(value: str, style: str, text: str) -> None:
    """A sum can come out negative (a year's reversals outweighing its payments; found by the
    fuzzed real run): the summary states it exactly instead of failing the run."""
    assert phrase(value, style) == text
