"""Check characters of the contract's identifiers (pure functions, no I/O).

USCC: GB 32100-2015, 18 characters from ``0-9A-HJ-NP-RTUW-Y``; the last is a
mod-31 check character over the first 17 with weights 3^i mod 31.
Resident ID: GB 11643-1999, 17 digits then an ISO 7064 MOD 11-2 check character;
positions 7-14 must be a real calendar date. The area code is not checked
(codes change over the years), on purpose, unlike python-stdnum's ``cn.ric``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(f"^[{USCC_ALPHABET}]{{18}}$")

_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC_CHECK = "10X98765432"
_RIC_RE = re.compile(r"^\d{17}[\dX]$")
UNION_CODE_RE = re.compile(r"^GH\d{10}$")


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str | None) -> bool:
    """True for an 18-char USCC (already upper-cased) whose check character is right."""
    if value is None or not _USCC_RE.match(value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def resident_id_check_char(first17: str) -> str:
    total = sum(int(ch) * w for ch, w in zip(first17, _RIC_WEIGHTS, strict=True))
    return _RIC_CHECK[total % 11]


def resident_id_birth_date(value: str) -> date | None:
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def is_valid_resident_id(value: str | None) -> bool:
    """True for an 18-char resident ID (upper-cased) with a real birth date and check char."""
    if value is None or not _RIC_RE.match(value):
        return False
    if resident_id_birth_date(value) is None:
        return False
    return resident_id_check_char(value[:17]) == value[17]


def is_valid_union_code(value: str | None) -> bool:
    return value is not None and bool(UNION_CODE_RE.match(value))


# ------------------------------------------------------------ vectorised forms
# The same rules as Polars expressions over a String column (null -> false),
# so the Great Expectations metrics run them without a Python call per row.
def _char_values(expr: Any, i: int, alphabet: str) -> Any:
    import polars as pl  # deferred: Polars (~0.2 s), not needed by the scalar checks (unionwh demo)

    return expr.str.slice(i, 1).replace_strict(
        list(alphabet), list(range(len(alphabet))), default=None, return_dtype=pl.Int64
    )


def uscc_valid_expr(expr: Any) -> Any:
    """Polars: ``is_valid_uscc`` for every value of a String expression."""
    import polars as pl  # deferred: Polars (~0.2 s), not needed by the scalar checks (unionwh demo)

    total = pl.sum_horizontal(
        *(_char_values(expr, i, USCC_ALPHABET) * w for i, w in enumerate(_USCC_WEIGHTS))
    )
    check = pl.lit(USCC_ALPHABET).str.slice(((31 - total % 31) % 31).cast(pl.Int64), 1)
    ok = expr.str.contains(_USCC_RE.pattern) & (expr.str.slice(17, 1) == check)
    return ok.fill_null(False)


def resident_id_valid_expr(expr: Any) -> Any:
    """Polars: ``is_valid_resident_id`` for every value of a String expression."""
    import polars as pl  # deferred: Polars (~0.2 s), not needed by the scalar checks (unionwh demo)

    digits = [expr.str.slice(i, 1).cast(pl.Int64, strict=False) for i in range(17)]
    total = pl.sum_horizontal(*(d * w for d, w in zip(digits, _RIC_WEIGHTS, strict=True)))
    check = pl.lit(_RIC_CHECK).str.slice((total % 11).cast(pl.Int64), 1)
    birth = expr.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)
    ok = expr.str.contains(_RIC_RE.pattern) & birth.is_not_null() & (expr.str.slice(17, 1) == check)
    return ok.fill_null(False)


def union_code_valid_expr(expr: Any) -> Any:
    """Polars: ``is_valid_union_code`` for every value of a String expression."""
    return expr.str.contains(UNION_CODE_RE.pattern).fill_null(False)
