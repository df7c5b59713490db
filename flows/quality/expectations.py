"""Custom Great Expectations expectations for the contract's value rules.

Importing this module registers them with GE, so suites stored as JSON under
``expectations/`` can name them by their snake_case type. They run on the pandas
execution engine over Arrow-backed frames made from the readers' Polars output
(GE's SQL engine errors on DuckDB; see README "Validation").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
import polars as pl
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)

from flows.checksums import resident_id_valid_expr, union_code_valid_expr, uscc_valid_expr

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
_NUMBER = r"^-?\d{1,16}(?:\.\d+)?$"
"""An amount that fits DECIMAL(18, 2) once rounded to cents."""
_INTEGER = r"^-?\d{1,18}$"
"""An integer that fits BIGINT."""


def _as_str(column: pd.Series) -> pd.Series:
    return column.astype("string[pyarrow]")


def _vectorised(column: pd.Series, check: Callable[[pl.Expr], pl.Expr]) -> pd.Series:
    """Run a Polars check expression over a pandas column (Arrow-backed: no copy per value)."""
    values = pl.from_pandas(_as_str(column).reset_index(drop=True))
    ok = pl.DataFrame({"v": values}).select(check(pl.col("v"))).to_series().to_numpy()
    return pd.Series(ok, index=column.index, dtype=bool)


def _dates(column: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(_as_str(column), format=fmt, errors="coerce")


# ------------------------------------------------------------------ identifiers
class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, uscc_valid_expr)


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """USCC: 18 characters of 0-9A-HJ-NP-RTUW-Y with a right GB 32100-2015 check character."""

    map_metric = "column_values.unionwh_valid_uscc"
    success_keys = ("mostly",)


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, resident_id_valid_expr)


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Resident ID: 17 digits with a real birth date, then the GB 11643-1999 check character."""

    map_metric = "column_values.unionwh_valid_resident_id"
    success_keys = ("mostly",)


class ColumnValuesValidPayeeCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_payee_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, lambda v: uscc_valid_expr(v) | union_code_valid_expr(v))


class ExpectColumnValuesToBeValidPayeeCode(ColumnMapExpectation):
    """A payee is an enterprise (valid USCC) or a union (GH + 10 digits)."""

    map_metric = "column_values.unionwh_valid_payee_code"
    success_keys = ("mostly",)


# ------------------------------------------------------------- dates and numbers
class ColumnValuesIsoDate(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_iso_date"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        text = _as_str(column)
        ok = text.str.match(_ISO_DATE) & _dates(column, "%Y-%m-%d").notna()
        return ok.fillna(False).astype(bool)


class ExpectColumnValuesToBeIsoDate(ColumnMapExpectation):
    """A real calendar date, as the readers canonicalise it (YYYY-MM-DD)."""

    map_metric = "column_values.unionwh_iso_date"
    success_keys = ("mostly",)


class ColumnValuesIsoTimestamp(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_iso_timestamp"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        text = _as_str(column)
        ok = text.str.match(_ISO_TIMESTAMP) & _dates(column, "%Y-%m-%d %H:%M:%S").notna()
        return ok.fillna(False).astype(bool)


class ExpectColumnValuesToBeIsoTimestamp(ColumnMapExpectation):
    """A real timestamp, YYYY-MM-DD HH:MM:SS."""

    map_metric = "column_values.unionwh_iso_timestamp"
    success_keys = ("mostly",)


class ColumnValuesNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_number"
    condition_value_keys = ("min_value", "integer")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column: pd.Series, min_value: float | None = None, integer: bool = False, **kwargs: Any
    ) -> pd.Series:
        text = _as_str(column)
        ok = text.str.match(_INTEGER if integer else _NUMBER).fillna(False)
        if min_value is not None:
            numbers = pd.to_numeric(text.where(ok), errors="coerce")
            ok = ok & (numbers >= min_value).fillna(False)
        return ok.astype(bool)


class ExpectColumnValuesToBeNumber(ColumnMapExpectation):
    """A plain decimal (or integer) number, optionally at least ``min_value``."""

    map_metric = "column_values.unionwh_number"
    success_keys = ("min_value", "integer", "mostly")
    min_value: float | None = None
    integer: bool = False


class ColumnValuesDateOnOrAfter(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_date_on_or_after"
    condition_value_keys = ("min_date",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, min_date: str = "1949-01-01", **kwargs: Any) -> pd.Series:
        d = pd.to_datetime(_as_str(column).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        # Unparseable values are the format rule's business.
        return (~(d < pd.Timestamp(min_date))).fillna(True).astype(bool)


class ExpectColumnValuesToBeDateOnOrAfter(ColumnMapExpectation):
    """No date before ``min_date`` (the federation's records start in 1949)."""

    map_metric = "column_values.unionwh_date_on_or_after"
    success_keys = ("min_date", "mostly")
    min_date: str = "1949-01-01"


class ColumnPairDateNotAfter(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.unionwh_date_not_after"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        a = pd.to_datetime(_as_str(column_A).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        b = pd.to_datetime(_as_str(column_B).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        # Unparseable values are another rule's business: only real dates can be "after".
        return (~(a > b)).fillna(True).astype(bool)


class ExpectColumnPairValuesToBeDateNotAfter(ColumnPairMapExpectation):
    """The date (or timestamp's date) in column_A is on or before the one in column_B."""

    map_metric = "column_pair_values.unionwh_date_not_after"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "either_value_is_missing"
    )
