"""Expectation suites: built from the contract, stored as JSON under ``expectations/``.

``python -m flows.quality.suites`` rewrites the files from flows/schema.py. The
runner reads the files, so a suite can be tightened by editing its JSON. Every
expectation carries ``meta.rule`` (a stable id that the quarantine records) and
``meta.reason_en`` / ``meta.reason_zh`` (what a person reads).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flows.schema import TABLES, Column, Table, source

SUITE_DIR = Path(__file__).resolve().parents[2] / "expectations"

KIND_LABEL = {
    "uscc": (
        "USCC check character is wrong or the code is malformed (GB 32100-2015)",
        "统一社会信用代码格式或校验码错误（GB 32100-2015）",
    ),
    "resident_id": (
        "resident ID is malformed, has an impossible birth date or a wrong check character (GB 11643-1999)",
        "身份证号格式、出生日期或校验码错误（GB 11643-1999）",
    ),
    "union_code": ("union code must be GH followed by 10 digits", "工会编码应为GH加10位数字"),
    "payee_code": (
        "payee code is neither a valid USCC nor a union code",
        "收款方编码既不是有效的统一社会信用代码也不是工会编码",
    ),
    "date": ("not a date in an accepted form, or not a real calendar date", "日期无法识别或不是真实日期"),
    "timestamp": ("not a timestamp YYYY-MM-DD HH:MM:SS", "时间格式应为YYYY-MM-DD HH:MM:SS"),
    "bool": ("must be 是/否 (true/false)", "应为是/否"),
    "phone": ("phone must be 11 digits", "手机号应为11位数字"),
}


def _exp(
    type_: str, rule: str, en: str, zh: str, detail_column: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """One expectation; ``detail_column``: a column of the frame whose value says, per failing
    row, what exactly failed (which columns), added to the row's reason in quarantine."""
    meta = {"rule": rule, "reason_en": en, "reason_zh": zh}
    if detail_column:
        meta["detail_column"] = detail_column
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def _column_expectations(t: Table, c: Column) -> list[dict[str, Any]]:
    label = c.header or c.name
    out: list[dict[str, Any]] = []
    if c.required:
        out.append(
            _exp(
                "expect_column_values_to_not_be_null",
                f"{c.name}.required",
                f"{label} is required but blank",
                f"{label}为必填项，但为空",
                column=c.name,
            )
        )
    if c.kind == "code":
        allowed = "、".join(c.allowed)
        out.append(
            _exp(
                "expect_column_values_to_be_in_set",
                f"{c.name}.allowed_values",
                f"{label} must be one of {allowed}",
                f"{label}应为{allowed}之一",
                column=c.name,
                value_set=list(c.allowed),
            )
        )
    elif c.kind in ("uscc", "resident_id", "payee_code"):
        en, zh = KIND_LABEL[c.kind]
        type_ = {
            "uscc": "expect_column_values_to_be_valid_uscc",
            "resident_id": "expect_column_values_to_be_valid_resident_id",
            "payee_code": "expect_column_values_to_be_valid_payee_code",
        }[c.kind]
        out.append(_exp(type_, f"{c.name}.{c.kind}", f"{label}: {en}", f"{label}：{zh}", column=c.name))
    elif c.kind == "union_code":
        en, zh = KIND_LABEL[c.kind]
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                f"{c.name}.union_code",
                f"{label}: {en}",
                f"{label}：{zh}",
                column=c.name,
                regex=r"^GH\d{10}$",
            )
        )
    elif c.kind == "phone":
        en, zh = KIND_LABEL[c.kind]
        out.append(
            _exp(
                "expect_column_values_to_match_regex",
                f"{c.name}.phone",
                f"{label}: {en}",
                f"{label}：{zh}",
                column=c.name,
                regex=r"^\d{11}$",
            )
        )
    elif c.kind == "bool":
        en, zh = KIND_LABEL[c.kind]
        out.append(
            _exp(
                "expect_column_values_to_be_in_set",
                f"{c.name}.boolean",
                f"{label}: {en}",
                f"{label}：{zh}",
                column=c.name,
                value_set=["true", "false"],
            )
        )
    elif c.kind in ("date", "timestamp"):
        en, zh = KIND_LABEL[c.kind]
        type_ = (
            "expect_column_values_to_be_iso_date"
            if c.kind == "date"
            else "expect_column_values_to_be_iso_timestamp"
        )
        out.append(
            _exp(type_, f"{c.name}.{c.kind}_format", f"{label}: {en}", f"{label}：{zh}", column=c.name)
        )
        out.append(
            _exp(
                "expect_column_values_to_be_date_on_or_after",
                f"{c.name}.before_1949",
                f"{label} is before 1949",
                f"{label}早于1949年",
                column=c.name,
                min_date="1949-01-01",
            )
        )
        out.append(
            _exp(
                "expect_column_pair_values_to_be_date_not_after",
                f"{c.name}.after_delivery",
                f"{label} is later than the delivery date of its folder",
                f"{label}晚于所在交付目录的日期",
                column_A=c.name,
                column_B="_delivery_date",
            )
        )
    elif c.kind in ("int", "amount"):
        integer = c.kind == "int"
        what_en = "a whole number" if integer else "an amount"
        what_zh = "整数" if integer else "金额"
        if c.min_value is not None:
            what_en += f" of at least {c.min_value:g}"
            what_zh += f"且不小于{c.min_value:g}"
        out.append(
            _exp(
                "expect_column_values_to_be_number",
                f"{c.name}.{'integer' if integer else 'amount'}",
                f"{label} must be {what_en}",
                f"{label}应为{what_zh}",
                column=c.name,
                integer=integer,
                min_value=c.min_value,
            )
        )
    return out


def _conditional(t: Table) -> list[dict[str, Any]]:
    """Rules that tie one column to another (the contract's 'required for …' clauses), from the
    table's entry (``Table.rules``); a ``row_condition`` is parsed by pandas."""
    out = []
    for r in t.rules:
        args = dict(r.args)
        if "row_condition" in args:
            args["condition_parser"] = "pandas"
        out.append(_exp(r.expectation, r.id, r.en, r.zh, **args))
    return out


FILE_COLUMN = "_file_name"
KEY_SCOPE_COLUMN = "_key_scope"
"""For a compound key: the row's file, or null when every part of its key is blank
(flows/quality/runner.py adds it to the frame Great Expectations validates)."""


def uses_key_scope(t: Table) -> bool:
    """Whether ``t``'s key rule compares ``KEY_SCOPE_COLUMN`` (a compound key) rather than the file."""
    return len(t.unique_key) > 1


def _key_uniqueness(t: Table) -> list[dict[str, Any]]:
    """A key may appear once per delivered file: two rows with one key contradict each other, so
    both are quarantined. (Rows of a source whose newer file replaces the older one have no key:
    a welfare ledger row is a person-time.)"""
    if not t.unique_key:
        return []
    headers = "、".join(t.column(k).header for k in t.unique_key)
    en, zh = (
        f"key ({headers}) appears more than once in this delivery",
        f"同一交付文件中主键（{headers}）重复",
    )
    # per file: the run validates all files of a table at once, and a key rightly recurs in later deliveries
    # (a blank single key breaks its own `required` rule, not this one; in a compound key a blank
    # part is a value, as the contract's optional 身份证号 in the attendance key, but a row whose
    # every key part is blank (an unparseable line, say) has no key: its file is in KEY_SCOPE_COLUMN
    # only when some part is there, so such rows are all missing and ignored, and two garbled lines
    # never "share a key")
    if not uses_key_scope(t):
        return [
            _exp(
                "expect_compound_columns_to_be_unique",
                "key.unique_in_delivery",
                en,
                zh,
                column_list=[FILE_COLUMN, *t.unique_key],
                ignore_row_if="any_value_is_missing",
            )
        ]
    return [
        _exp(
            "expect_compound_columns_to_be_unique",
            "key.unique_in_delivery",
            en,
            zh,
            column_list=[KEY_SCOPE_COLUMN, *t.unique_key],
            ignore_row_if="all_values_are_missing",
        )
    ]


def build_suite(t: Table) -> dict[str, Any]:
    expectations = [
        _exp(
            "expect_column_values_to_be_null",
            "row.parse",
            "the record could not be parsed",
            "该行无法解析",
            column="_parse_error",
        ),
        _exp(
            "expect_column_values_to_be_null",
            "row.control_characters",
            "a value holds a control character (NUL or another C0 character; line breaks only inside a "
            "quoted CSV field)",
            "字段含有控制字符（如NUL；换行符仅允许出现在CSV引号字段内）",
            column="_control_chars",
            detail_column="_control_chars",
        ),
    ]
    if source(t.source).json_types:
        expectations.append(
            _exp(
                "expect_column_values_to_be_null",
                "row.json_type",
                "a JSON value has the wrong type for its column (text wants a string, integers a JSON integer, "
                "booleans true/false)",
                "JSON值类型与字段不符（文本应为字符串，整数应为JSON整数，布尔值应为true/false）",
                column="_type_errors",
                detail_column="_type_errors",
            )
        )
    for c in t.columns:
        expectations += _column_expectations(t, c)
    expectations += _conditional(t)
    expectations += _key_uniqueness(t)
    return {
        "name": f"{t.source}.{t.name}",
        "expectations": expectations,
        "meta": {"generated_from": "flows/schema.py (python -m flows.quality.suites)"},
    }


_NAME = re.compile(r"[^\W\d]\w*")
"""A name in a ``row_condition`` (pandas' query syntax: a column is a Python identifier)."""


def suite_columns(suite: dict[str, Any]) -> frozenset[str] | None:
    """The columns the expectations of ``suite`` (a suite dict) may read, or None for all of
    them (a table-level expectation, ``expect_table_…``, looks at every column). Any text a
    kwarg holds counts, alone or in a list (``column``, ``column_A``, ``column_list`` …), and
    every name in a ``row_condition``: a name that is no column (a value, an operator) is
    harmless, as only a frame's own columns are kept."""
    names: set[str] = set()
    for e in suite.get("expectations", []):
        if str(e.get("type", "")).startswith("expect_table_"):
            return None
        for key, value in (e.get("kwargs") or {}).items():
            if key == "row_condition" and isinstance(value, str):
                names.update(_NAME.findall(value))
            if isinstance(value, str):
                names.add(value)
            elif isinstance(value, (list, tuple)):
                names.update(v for v in value if isinstance(v, str))
    return frozenset(names)


def suite_path(t: Table, directory: Path = SUITE_DIR) -> Path:
    return directory / f"{t.source}.{t.name}.json"


def load_suite_dict(t: Table, directory: Path = SUITE_DIR) -> dict[str, Any]:
    """The stored suite of ``t``; for a table of a source added by ``schema.register`` whose suite
    was never written, the suite its contract entry gives."""
    path = suite_path(t, directory)
    if t not in TABLES and not path.exists():
        return build_suite(t)
    with suite_path(t, directory).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def write_suites(directory: Path = SUITE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for t in TABLES:
        path = suite_path(t, directory)
        path.write_text(json.dumps(build_suite(t), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_suites():
        print(p)
