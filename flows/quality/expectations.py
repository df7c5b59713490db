"""Custom Great Expectations expectations for the contract's value rules.

Importing this module registers them with GE, so suites stored as JSON under
``expectations/`` can name them by their snake_case type. They run on the pandas
execution engine over Arrow-backed frames made from the readers' Polars output
(GE's SQL engine errors on DuckDB; see docs/validation.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import pandas as pd
import polars as pl
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType

from flows.checksums import resident_id_valid_expr, union_code_valid_expr, uscc_valid_expr
from flows.schema import TABLES

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


# The rules below are the pandas functions that follow (``_pandas_…``), computed as Polars
# expressions on the values whose answer Polars gives exactly as pandas does: plain ASCII dates,
# timestamps and numbers, which is every value a reader canonicalised. The rest (full-width or
# Arabic-Indic digits, which Python's ``\d`` and pandas' date parser take; a final line break,
# which ``$`` allows; a second 60 or 61, which pandas rolls over; long decimals) keep pandas' answer.
_PLAIN_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PLAIN_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9]$"
_PLAIN_NUMBER = r"^-?[0-9]{1,16}(?:\.[0-9]{1,6})?$"
"""A number whose float is on the same side of any ``min_value`` under 1e6 in every parser."""
_PLAIN_INTEGER = r"^-?[0-9]{1,18}$"


def _plain_or_pandas(
    column: pd.Series,
    plain: pl.Expr,
    check: pl.Expr,
    pandas_check: Callable[[pd.Series], pd.Series],
) -> pd.Series:
    """``check`` (a Polars expression over the values ``v``) where ``plain`` holds, else
    ``pandas_check`` on the other values alone (usually none)."""
    values = pl.from_pandas(_as_str(column).reset_index(drop=True))
    flags = pl.DataFrame({"v": values}).select(plain=plain.fill_null(True), ok=check)
    ok = flags["ok"].to_numpy(allow_copy=True).astype(bool, copy=True)
    rest = ~flags["plain"].to_numpy(allow_copy=True).astype(bool)
    if rest.any():
        ok[rest] = pandas_check(column[rest]).to_numpy(dtype=bool)
    return pd.Series(ok, index=column.index, dtype=bool)


def _date10(v: pl.Expr) -> pl.Expr:
    """The date of a plain date's (or timestamp's) first ten characters; null if none."""
    return v.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def _plain10(v: pl.Expr) -> pl.Expr:
    return v.is_null() | v.str.slice(0, 10).str.contains(_PLAIN_DATE)


CHINESE_LABELS = {
    "_delivery_date": "交付目录日期",
    "joined_on": "入会日期",
    "updated_at": "更新时间",
    "deleted_at": "注销时间",
    "action_on": "办理日期",
    "start_date": "开始日期",
    "end_date": "结束日期",
    "id_card": "身份证号",
    "union_code": "工会编码",
    "member_id": "会员编号",
    "card_event_id": "办卡记录编号",
    "session_id": "培训场次编号",
    "competition_id": "竞赛编号",
    "participants": "参与人次",
    "replay_views": "回放次数",
}
"""Chinese names of the columns whose upstream header is English (the members database, the
training JSON) or differs between files; ``_delivery_date`` is the date of the file's folder."""


@functools.lru_cache(maxsize=1)
def _chinese_labels() -> Mapping[str, str]:
    """Column name -> its upstream Chinese header, where every table that has the column
    calls it the same (``updated_at`` is 更新时间 in one file and updated_at in another)."""
    headers: dict[str, set[str]] = {}
    for t in TABLES:
        for c in t.all_columns:
            headers.setdefault(c.name, set()).add(c.header)
    labels = {
        name: next(iter(h))
        for name, h in headers.items()
        if len(h) == 1 and any("\u4e00" <= ch <= "\u9fff" for ch in next(iter(h)))
    }
    return labels | CHINESE_LABELS


def chinese_label(column: str) -> str:
    return _chinese_labels().get(column, column)


class Described:
    """Data Docs text of a custom expectation, in Chinese then English, from its kwargs.

    Without it GE renders the expectation as raw Python (``expect_…(**{'batch_id': …})``).
    ``zh`` and ``en`` are string.Template texts over the kwargs; ``$<kwarg>_zh`` is a column's
    Chinese label. A subclass may override :meth:`texts` when the text depends on the kwargs.
    """

    zh: ClassVar[str] = ""
    en: ClassVar[str] = ""

    @classmethod
    def texts(cls, kwargs: Mapping[str, Any]) -> tuple[str, str]:
        return cls.zh, cls.en

    @classmethod
    def describe(cls, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """(template, params) for GE's string templates."""
        fields = getattr(cls, "__fields__", {})  # a kwarg equal to its default is not in the configuration
        kwargs = {**{k: fields[k].default for k in getattr(cls, "success_keys", ()) if k in fields}, **kwargs}
        zh, en = cls.texts(kwargs)
        params: dict[str, str] = {}
        for key, value in kwargs.items():
            if key in ("column", "column_A", "column_B") and isinstance(value, str):
                params[key], params[f"{key}_zh"] = value, chinese_label(value)
            elif isinstance(value, bool):
                params[key] = str(value).lower()
            elif isinstance(value, float) and value.is_integer():
                params[key] = str(int(value))
            elif value is not None and not isinstance(value, (dict, list)):
                params[key] = str(value)
        mostly = kwargs.get("mostly")
        if isinstance(mostly, (int, float)) and mostly < 1:
            params["mostly_pct"] = f"{mostly * 100:g}"
            zh, en = f"{zh}（至少 $mostly_pct% 的行）", f"{en}, for at least $mostly_pct % of the rows"
        return f"{zh} / {en}.", params

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        """The atomic prescriptive text (GE's summary renderer calls this)."""
        template, params = cls.describe(dict(renderer_configuration.kwargs or {}))
        for name, value in params.items():
            renderer_configuration.add_param(name=name, param_type=RendererValueType.STRING, value=value)
        renderer_configuration.template_str = template
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
        **kwargs: Any,
    ) -> list[RenderedStringTemplateContent]:
        """The text in a validation or suite page's "Expectation" column."""
        if configuration is None and result is not None:
            configuration = result.expectation_config
        template, params = cls.describe(dict(configuration.kwargs) if configuration is not None else {})
        styling = (runtime_configuration or {}).get("styling")
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params, "styling": styling},
            )
        ]


# ------------------------------------------------------------------ identifiers
class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, uscc_valid_expr)


class ExpectColumnValuesToBeValidUscc(Described, ColumnMapExpectation):
    """USCC: 18 characters of 0-9A-HJ-NP-RTUW-Y with a right GB 32100-2015 check character."""

    map_metric = "column_values.unionwh_valid_uscc"
    zh: ClassVar[str] = "$column_zh 为有效的统一社会信用代码（GB 32100-2015 校验码）"
    en: ClassVar[str] = "$column is a valid unified social credit code (GB 32100-2015 check character)"
    success_keys = ("mostly",)


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, resident_id_valid_expr)


class ExpectColumnValuesToBeValidResidentId(Described, ColumnMapExpectation):
    """Resident ID: 17 digits with a real birth date, then the GB 11643-1999 check character."""

    map_metric = "column_values.unionwh_valid_resident_id"
    zh: ClassVar[str] = "$column_zh 为有效的居民身份证号（真实出生日期，GB 11643-1999 校验码）"
    en: ClassVar[str] = "$column is a valid resident ID (a real birth date, GB 11643-1999 check character)"
    success_keys = ("mostly",)


class ColumnValuesValidPayeeCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_valid_payee_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return _vectorised(column, lambda v: uscc_valid_expr(v) | union_code_valid_expr(v))


class ExpectColumnValuesToBeValidPayeeCode(Described, ColumnMapExpectation):
    """A payee is an enterprise (valid USCC) or a union (GH + 10 digits)."""

    map_metric = "column_values.unionwh_valid_payee_code"
    zh: ClassVar[str] = "$column_zh 为有效的统一社会信用代码或工会编码（GH加10位数字）"
    en: ClassVar[str] = "$column is a valid USCC or a union code (GH and 10 digits)"
    success_keys = ("mostly",)


# ------------------------------------------------------------- dates and numbers
class ColumnValuesIsoDate(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_iso_date"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return iso_date(column)


def iso_date(column: pd.Series) -> pd.Series:
    v = pl.col("v")
    plain = v.is_null() | v.str.contains(_PLAIN_DATE)
    ok = v.str.to_date("%Y-%m-%d", strict=False).is_not_null()
    return _plain_or_pandas(column, plain, ok, _pandas_iso_date)


def _pandas_iso_date(column: pd.Series) -> pd.Series:
    text = _as_str(column)
    ok = text.str.match(_ISO_DATE) & _dates(column, "%Y-%m-%d").notna()
    return ok.fillna(False).astype(bool)


class ExpectColumnValuesToBeIsoDate(Described, ColumnMapExpectation):
    """A real calendar date, as the readers canonicalise it (YYYY-MM-DD)."""

    map_metric = "column_values.unionwh_iso_date"
    zh: ClassVar[str] = "$column_zh 为真实日期（YYYY-MM-DD）"
    en: ClassVar[str] = "$column is a real calendar date (YYYY-MM-DD)"
    success_keys = ("mostly",)


class ColumnValuesIsoTimestamp(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_iso_timestamp"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return iso_timestamp(column)


def iso_timestamp(column: pd.Series) -> pd.Series:
    v = pl.col("v")
    plain = v.is_null() | v.str.contains(_PLAIN_TIMESTAMP)
    ok = v.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False).is_not_null()
    return _plain_or_pandas(column, plain, ok, _pandas_iso_timestamp)


def _pandas_iso_timestamp(column: pd.Series) -> pd.Series:
    text = _as_str(column)
    ok = text.str.match(_ISO_TIMESTAMP) & _dates(column, "%Y-%m-%d %H:%M:%S").notna()
    return ok.fillna(False).astype(bool)


class ExpectColumnValuesToBeIsoTimestamp(Described, ColumnMapExpectation):
    """A real timestamp, YYYY-MM-DD HH:MM:SS."""

    map_metric = "column_values.unionwh_iso_timestamp"
    zh: ClassVar[str] = "$column_zh 为真实时间（YYYY-MM-DD HH:MM:SS）"
    en: ClassVar[str] = "$column is a real timestamp (YYYY-MM-DD HH:MM:SS)"
    success_keys = ("mostly",)


class ColumnValuesNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_number"
    condition_value_keys = ("min_value", "integer")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column: pd.Series, min_value: float | None = None, integer: bool = False, **kwargs: Any
    ) -> pd.Series:
        return number(column, min_value, integer)


def number(column: pd.Series, min_value: float | None, integer: bool) -> pd.Series:
    v = pl.col("v")
    slow = functools.partial(_pandas_number, min_value=min_value, integer=integer)
    if min_value is not None and not abs(min_value) < 1e6:
        return slow(column)
    plain = v.is_null() | v.str.contains(_PLAIN_INTEGER if integer else _PLAIN_NUMBER)
    ok = v.is_not_null()
    if min_value is not None:
        ok = ok & (v.cast(pl.Float64, strict=False) >= min_value)
    return _plain_or_pandas(column, plain, ok.fill_null(False), slow)


def _pandas_number(column: pd.Series, min_value: float | None, integer: bool) -> pd.Series:
    text = _as_str(column)
    ok = text.str.match(_INTEGER if integer else _NUMBER).fillna(False)
    if min_value is not None:
        numbers = pd.to_numeric(text.where(ok), errors="coerce")
        ok = ok & (numbers >= min_value).fillna(False)
    return ok.astype(bool)


class ExpectColumnValuesToBeNumber(Described, ColumnMapExpectation):
    """A plain decimal (or integer) number, optionally at least ``min_value``."""

    map_metric = "column_values.unionwh_number"
    success_keys = ("min_value", "integer", "mostly")
    min_value: float | None = None
    integer: bool = False

    @classmethod
    def texts(cls, kwargs: Mapping[str, Any]) -> tuple[str, str]:
        zh, en = (
            ("$column_zh 为整数", "$column is a whole number")
            if kwargs.get("integer")
            else ("$column_zh 为数字（入库时计到分）", "$column is a number (kept to cents)")
        )
        if kwargs.get("min_value") is not None:
            zh, en = f"{zh}，且不小于 $min_value", f"{en} of at least $min_value"
        return zh, en


class ColumnValuesDateOnOrAfter(ColumnMapMetricProvider):
    condition_metric_name = "column_values.unionwh_date_on_or_after"
    condition_value_keys = ("min_date",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, min_date: str = "1949-01-01", **kwargs: Any) -> pd.Series:
        return on_or_after(column, min_date)


def on_or_after(column: pd.Series, min_date: str) -> pd.Series:
    v = pl.col("v")
    ok = (_date10(v) >= pl.lit(min_date).str.to_date("%Y-%m-%d")).fill_null(True)
    return _plain_or_pandas(
        column, _plain10(v), ok, functools.partial(_pandas_on_or_after, min_date=min_date)
    )


def _pandas_on_or_after(column: pd.Series, min_date: str) -> pd.Series:
    d = pd.to_datetime(_as_str(column).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    # Unparseable values are the format rule's business.
    return (~(d < pd.Timestamp(min_date))).fillna(True).astype(bool)


class ExpectColumnValuesToBeDateOnOrAfter(Described, ColumnMapExpectation):
    """No date before ``min_date`` (the federation's records start in 1949)."""

    map_metric = "column_values.unionwh_date_on_or_after"
    zh: ClassVar[str] = "$column_zh 不早于 $min_date"
    en: ClassVar[str] = "$column is not before $min_date"
    success_keys = ("min_date", "mostly")
    min_date: str = "1949-01-01"


class ColumnPairDateNotAfter(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.unionwh_date_not_after"

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return not_after(column_A, column_B)


def not_after(column_A: pd.Series, column_B: pd.Series) -> pd.Series:
    frame = pl.DataFrame(
        {
            "a": pl.from_pandas(_as_str(column_A).reset_index(drop=True)),
            "b": pl.from_pandas(_as_str(column_B).reset_index(drop=True)),
        }
    ).select(
        plain=_plain10(pl.col("a")) & _plain10(pl.col("b")),
        ok=(_date10(pl.col("a")) <= _date10(pl.col("b"))).fill_null(True),
    )
    ok = frame["ok"].to_numpy(allow_copy=True).astype(bool, copy=True)
    rest = ~frame["plain"].to_numpy(allow_copy=True).astype(bool)
    if rest.any():
        ok[rest] = _pandas_not_after(column_A[rest], column_B[rest]).to_numpy(dtype=bool)
    return pd.Series(ok, index=column_A.index, dtype=bool)


def _pandas_not_after(column_A: pd.Series, column_B: pd.Series) -> pd.Series:
    a = pd.to_datetime(_as_str(column_A).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    b = pd.to_datetime(_as_str(column_B).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    # Unparseable values are another rule's business: only real dates can be "after".
    return (~(a > b)).fillna(True).astype(bool)


class ExpectColumnPairValuesToBeDateNotAfter(Described, ColumnPairMapExpectation):
    """The date (or timestamp's date) in column_A is on or before the one in column_B."""

    map_metric = "column_pair_values.unionwh_date_not_after"
    zh: ClassVar[str] = "$column_A_zh 不晚于 $column_B_zh"
    en: ClassVar[str] = "$column_A is not after $column_B"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "either_value_is_missing"
    )
