"""The custom rules' row flags are Polars expressions on plain values and pandas' on the rest
(flows/quality/expectations.py): on every value they flag exactly what the pandas functions
alone flag, hostile values included (full-width and Arabic-Indic digits, a final line break,
second 60, year 0000, out-of-range days, long decimals)."""

from __future__ import annotations

import itertools
import random

import pandas as pd
import pytest

from flows.quality import expectations as ex

DATES = [
    "2021-01-01", "2021-02-29", "2020-02-29", "0000-02-29", "0000-01-01", "0001-01-01", "1677-09-21",
    "2262-04-12", "9999-12-31", "1948-12-31", "1949-01-01", "2021-1-01", "2021-01-1", "1949-1-1",
    "２０２１-01-01", "٢٠٢١-01-01", "1948-١٢-31", "2021-01-01\n", "2021-01-01 ", " 2021-01-01", "2021-13-01",
    "2021-00-10", "2021-01-00", "2021-01-32", "2021-06-31", "1900-02-29", "2000-02-29", "-021-01-01",
    "+021-01-01", "194-12-31", "2021/01/01", "20210101", "", "2021-01-01x", "2021-01-01\x00",
]  # fmt: skip
TIMES = [
    " 00:00:00", " 23:59:59", " 24:00:00", " 23:59:60", " 12:00:61", " 12:60:00", " 0:00:00", "T00:00:00",
    " 00:00", " 00:00:00.5", " ２３:00:00", " 12:00:00\n", " 99:99:99", "",
]  # fmt: skip
NUMBERS = [
    "0", "-0", "-000", "12", "-1", "1.5", "-0.000001", "0.0000001", "-0.0000001", "1.", ".5", "1e3",
    "１２", "٣", "12\n", "1234567890123456", "12345678901234567", "123456789012345678", "1234567890123456789",
    "-" + "0" * 15 + "1", "0." + "0" * 400 + "1", "-0." + "0" * 400 + "1", "1,000", " 1", "",
]  # fmt: skip


def texts(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype="string[pyarrow]", index=range(100, 100 + len(values)))


def noise(seed: int, n: int = 3000) -> list[str]:
    """Random strings of the characters dates, times and numbers are made of (and a few more)."""
    rng = random.Random(seed)
    alphabet = "0123456789-: .\n١２x"
    shapes = ["dddd-dd-dd", "dddd-dd-dd dd:dd:dd", "d", "-dd.ddd", "dddd-d-d"]
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            shape = rng.choice(shapes)
            out.append("".join(rng.choice("0123456789") if c == "d" else c for c in shape))
            if rng.random() < 0.2:
                i = rng.randrange(len(out[-1]))
                out[-1] = out[-1][:i] + rng.choice(alphabet) + out[-1][i + 1 :]
        else:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 22))))
    return out


def same(got: pd.Series, want: pd.Series, values: pd.Series) -> None:
    assert got.dtype == bool and list(got.index) == list(values.index)
    diff = [v for v, g, w in zip(values, got, want, strict=True) if g != w]
    assert not diff, diff[:10]


@pytest.mark.parametrize("seed", [0, 1])
def test_date_and_timestamp_rules(seed: int) -> None:
    values = texts([*DATES, *(d + t for d, t in itertools.product(DATES, TIMES)), *noise(seed), None])
    same(ex.iso_date(values), ex._pandas_iso_date(values), values)
    same(ex.iso_timestamp(values), ex._pandas_iso_timestamp(values), values)
    for floor in ("1949-01-01", "2021-06-30"):
        same(ex.on_or_after(values, floor), ex._pandas_on_or_after(values, floor), values)
    other = texts(random.Random(seed).sample(list(values), len(values)))
    other.index = values.index
    same(ex.not_after(values, other), ex._pandas_not_after(values, other), values)


@pytest.mark.parametrize("seed", [0, 1])
def test_number_rules(seed: int) -> None:
    values = texts([*NUMBERS, *noise(seed), None])
    for integer, floor in itertools.product((False, True), (None, 0, 1, -5, 1e7)):
        same(ex.number(values, floor, integer), ex._pandas_number(values, floor, integer), values)


def test_the_plain_path_decides_canonical_values() -> None:
    """Values as the readers write them never reach pandas (the rules' point: native speed)."""
    values = texts(["2021-03-04", "1948-12-31", "2021-02-30"])
    got = ex._plain_or_pandas(
        values, ex.pl.col("v").str.contains(ex._PLAIN_DATE), ex.pl.lit(True), lambda _: pytest.fail("pandas")
    )
    assert got.tolist() == [True, True, True]
