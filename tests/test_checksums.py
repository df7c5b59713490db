"""Check characters, against python-stdnum as an oracle where it agrees with the contract."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from flows.checksums import (
    USCC_ALPHABET,
    is_valid_resident_id,
    is_valid_union_code,
    is_valid_uscc,
    resident_id_check_char,
    resident_id_valid_expr,
    union_code_valid_expr,
    uscc_check_char,
    uscc_valid_expr,
)

pytestmark = pytest.mark.unit

digits8 = st.text(alphabet="0123456789", min_size=8, max_size=8)
body9 = st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9)
any_char = st.sampled_from(USCC_ALPHABET)


@given(digits8, body9, any_char)
def test_uscc_agrees_with_stdnum(prefix: str, body: str, last: str) -> None:
    code = prefix + body + last
    assert is_valid_uscc(code) == uscc.is_valid(code)


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_with_computed_check_char_is_valid_and_any_other_is_not(first17: str) -> None:
    check = uscc_check_char(first17)
    assert is_valid_uscc(first17 + check)
    for other in USCC_ALPHABET:
        if other != check:
            assert not is_valid_uscc(first17 + other)


@given(st.text(min_size=0, max_size=20))
def test_uscc_rejects_wrong_shapes(text: str) -> None:
    if len(text) != 18 or any(ch not in USCC_ALPHABET for ch in text):
        assert not is_valid_uscc(text)


def test_uscc_letters_outside_the_alphabet() -> None:
    good = "91120116MA05K8XQ3" + uscc_check_char("91120116MA05K8XQ3")
    assert is_valid_uscc(good)
    for bad in ("I", "O", "S", "V", "Z"):
        assert not is_valid_uscc(good[:10] + bad + good[11:])
    assert not is_valid_uscc(good.lower())  # readers upper-case first
    assert not is_valid_uscc(None)


@given(
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
def test_resident_id_check_char_matches_stdnum(area: str, born: date, seq: str) -> None:
    first17 = area + born.strftime("%Y%m%d") + seq
    rid = first17 + resident_id_check_char(first17)
    assert is_valid_resident_id(rid)
    assert ric.calc_check_digit(first17 + "0") == rid[-1]  # stdnum drops the last character
    wrong = "0" if rid[-1] != "0" else "1"
    assert not is_valid_resident_id(first17 + wrong)


def test_resident_id_area_code_is_not_checked_but_the_date_is() -> None:
    first17 = "99999919900307123"  # no such area code: the contract does not check it
    assert is_valid_resident_id(first17 + resident_id_check_char(first17))
    feb30 = "12010519900230123"
    assert not is_valid_resident_id(feb30 + resident_id_check_char(feb30))
    x_id = next(
        f"1201051990030712{i}" for i in range(10) if resident_id_check_char(f"1201051990030712{i}") == "X"
    )
    assert is_valid_resident_id(x_id + "X")
    assert not is_valid_resident_id(x_id + "x")  # readers upper-case first
    assert not is_valid_resident_id("12345")


def test_union_code() -> None:
    assert is_valid_union_code("GH0123456789")
    assert not is_valid_union_code("GH012345678")
    assert not is_valid_union_code("gh0123456789")
    assert not is_valid_union_code("GH01234567890")


def _vectorised(values: list[str | None]) -> dict[str, list[bool]]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(
        uscc=uscc_valid_expr(pl.col("v")),
        ric=resident_id_valid_expr(pl.col("v")),
        union=union_code_valid_expr(pl.col("v")),
    ).to_dict(as_series=False)


near_ids = st.builds(
    lambda body, last: body + last,
    st.text(alphabet="0123456789", min_size=17, max_size=17),
    st.sampled_from("0123456789Xx"),
)
near_usccs = st.builds(
    lambda body, last: body + last,
    st.text(alphabet=USCC_ALPHABET + "IOSVZ", min_size=17, max_size=17),
    st.sampled_from(USCC_ALPHABET + "Z"),
)
valid_ids = st.builds(
    lambda area, born, seq: (
        (b := f"{area}{born.year:04d}{born.month:02d}{born.day:02d}{seq}") + resident_id_check_char(b)
    ),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1, 1, 1)),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
valid_usccs = st.builds(
    lambda b: b + uscc_check_char(b), st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)
)


@settings(max_examples=200, deadline=None)  # polars per example: seconds on a loaded machine
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(max_size=20),
            near_ids,
            near_usccs,
            valid_ids,
            valid_usccs,
            st.from_regex(r"\AGH\d{10}\Z"),
            st.from_regex(r"\A\d{6}0000\d{8}\Z"),
        ),
        max_size=30,
    )
)
def test_vectorised_checks_agree_with_the_scalar_ones(values: list[str | None]) -> None:
    """The Polars forms the GE expectations run are exactly is_valid_uscc / is_valid_resident_id."""
    got = _vectorised(values)
    assert got["uscc"] == [is_valid_uscc(v) for v in values]
    assert got["ric"] == [is_valid_resident_id(v) for v in values]
    assert got["union"] == [is_valid_union_code(v) for v in values]
