"""Property-based tests of the date parser and the amount normaliser (hypothesis)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.sources.common import amount_expr, date_expr, normalise_text

pytestmark = pytest.mark.unit

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _dates(values: list[str]) -> list[str | None]:
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.String})
        .select(date_expr(normalise_text(pl.col("v"))))
        .to_series()
        .to_list()
    )


def forms(d: date) -> list[str]:
    return [
        d.isoformat(),
        f"{d.year}/{d.month}/{d.day}",
        f"{d.year}年{d.month}月{d.day}日",
        d.strftime("%Y%m%d"),
        f"{d.year}-{d.month}-{d.day}",
        f" {d.isoformat()}\u00a0",
        d.isoformat().translate(FULL_WIDTH),
    ]


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_every_accepted_form_of_a_real_date_parses_to_iso(d: date) -> None:
    assert _dates(forms(d)) == [d.isoformat()] * len(forms(d))


@settings(max_examples=300, deadline=None)
@given(st.integers(1900, 2100), st.integers(1, 12), st.integers(29, 31))
def test_impossible_dates_stay_as_text(year: int, month: int, day: int) -> None:
    try:
        date(year, month, day)
        return  # real date: covered above
    except ValueError:
        pass
    for text in (
        f"{year}-{month:02d}-{day:02d}",
        f"{year}/{month}/{day}",
        f"{year}年{month}月{day}日",
        f"{year}{month:02d}{day:02d}",
    ):
        assert _dates([text]) == [text]


@settings(deadline=None)
@given(st.text(alphabet="abc年月日-/ :", max_size=12))
def test_non_dates_are_never_invented(text: str) -> None:
    out = _dates([text])[0]
    if out is not None and len(out) == 10 and out[4] == "-" and out[:4].isdigit():
        # only digits in the input can become a date
        assert any(ch.isdigit() for ch in text)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal(0), max_value=Decimal(99999999), places=4, allow_nan=False))
def test_wan_yuan_converts_exactly(value: Decimal) -> None:
    text = format(value, "f")
    got = pl.DataFrame({"v": [text]}).select(amount_expr(pl.col("v"), 10000)).item()
    assert Decimal(got) == (value * 10000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal(0), max_value=Decimal(999999999), places=2, allow_nan=False))
def test_thousands_separators_are_removed(value: Decimal) -> None:
    text = f"{value:,.2f}"
    got = pl.DataFrame({"v": [text]}).select(amount_expr(pl.col("v"))).item()
    assert Decimal(got) == value
