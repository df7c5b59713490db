"""The malformed-input corpus: each case is one delivered file and its exact outcome.

Every case is written into a fresh landing zone and goes through the same code
the nightly flow runs (discover -> read_delivery -> GE validate -> batch gates,
flows.quality.screen), with real files and real Great Expectations runs. A case
states which rows load, which are quarantined under which rules, or which batch
error rejects the file; and every case checks that no row is unaccounted for:
the data rows of the file are exactly the loaded rows plus the quarantined rows
(or, for a rejected file, that nothing loads).

``python -m tests.quality.test_malformed_corpus <dir>`` writes the corpus files
into ``<dir>`` to look at them.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flows import schema
from flows.checksums import resident_id_check_char, uscc_check_char
from flows.quality.screen import WHOLE_FILE, Outcome, screen_delivery
from flows.schema import ENCODINGS
from flows.settings import QualitySettings
from flows.sources import common
from tests.support import workbook_bytes
from tests.warehouse.pipeline_support import delivery_csv

pytestmark = pytest.mark.unit

DELIVERY = "2021-06-30"
USCC = "91120116MA05K8XQ3" + uscc_check_char("91120116MA05K8XQ3")
USCC2 = "91120116MA05K8XQ4" + uscc_check_char("91120116MA05K8XQ4")
BAD_USCC = USCC[:17] + ("0" if USCC[17] != "0" else "1")
ID = "12010519900307123" + resident_id_check_char("12010519900307123")
BAD_ID = ID[:17] + ("0" if ID[17] != "0" else "1")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


# -------------------------------------------------------------- file builders
# Each CSV builder writes its file as the contract says its source delivers it (delivery_csv, in
# the source's encoding); the cases that break the contract's encoding do so explicitly below.
CASES_HEADER = [
    "案件编号",
    "类型",
    "受理日期",
    "统一社会信用代码",
    "职工身份证号",
    "调解结果",
    "结案日期",
    "维权金额",
]


def case_row(no: str = "C1", **over: str) -> list[str]:
    row = {
        "案件编号": no,
        "类型": "劳动争议",
        "受理日期": "2021-03-05",
        "统一社会信用代码": USCC,
        "职工身份证号": ID,
        "调解结果": "成功",
        "结案日期": "2021-04-01",
        "维权金额": "1200.50",
    }
    row.update(over)
    return [row[h] for h in CASES_HEADER]


def cases_csv(rows: list[list[str]], header: list[str] = CASES_HEADER) -> bytes:
    return delivery_csv(header, rows, ENCODINGS["rights"])  # UTF-8 with a BOM


ENTERPRISES_HEADER = [
    "统一社会信用代码",
    "企业名称",
    "所属片区",
    "行业门类",
    "职工人数",
    "企业标签",
    "注册日期",
    "更新时间",
]


def enterprise_row(uscc: str = USCC, **over: str) -> list[str]:
    row = {
        "统一社会信用代码": uscc,
        "企业名称": "某某科技有限公司",
        "所属片区": "海港",
        "行业门类": "C",
        "职工人数": "120",
        "企业标签": "",
        "注册日期": "2015-05-01",
        "更新时间": "2021-06-01 08:00:00",
    }
    row.update(over)
    return [row[h] for h in ENTERPRISES_HEADER]


def enterprises_csv(rows: list[list[str]]) -> bytes:
    return delivery_csv(ENTERPRISES_HEADER, rows, ENCODINGS["registry"])  # GB18030


VOUCHERS_HEADER = [c.header for c in schema.table("finance", "vouchers").columns]  # the contract's


def voucher_row(no: str = "V1", line: str = "1", **over: str) -> list[str]:
    row = {
        "凭证号": no,
        "行号": line,
        "记账日期": "2021-03-05",
        "科目编码": "5010101",
        "科目名称": "职工活动支出",
        "摘要": "补助",
        "借方金额": "1,000.00",
        "贷方金额": "0",
        "项目编码": "XMBZ",
        "收款方编码": USCC,
        "审批单号": "SP-1",
    }
    row.update(over)
    return [row[h] for h in VOUCHERS_HEADER]


def vouchers_csv(rows: list[list[str]]) -> bytes:
    return delivery_csv(VOUCHERS_HEADER, rows, ENCODINGS["finance"])  # GB18030


ACTIVITIES_HEADER = ["活动编号", "名称", "类别", "日期", "参与方式", "参与人次"]


def activity_row(no: str = "A1", **over: str) -> list[str]:
    row = {
        "活动编号": no,
        "名称": "职工运动会",
        "类别": "文体",
        "日期": "2021-05-01",
        "参与方式": "举办",
        "参与人次": "300",
    }
    row.update(over)
    return [row[h] for h in ACTIVITIES_HEADER]


def activities_csv(rows: list[list[str]]) -> bytes:
    return delivery_csv(ACTIVITIES_HEADER, rows, ENCODINGS["events"])  # UTF-8


def session(sid: str = "S1", **over: Any) -> str:
    obj = {
        "session_id": sid,
        "title": "劳动法讲座",
        "mode": "online",
        "start_date": "2021-05-01",
        "end_date": "2021-05-01",
    } | over
    return json.dumps(obj, ensure_ascii=False)


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


CONDOLENCE = ["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(元)"]
HEALTH = ["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"]
RELIEF = ["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"]


def condolence(**over: Any) -> list[Any]:
    row = {
        "日期": datetime(2021, 3, 5),
        "慰问项目": "两节慰问",
        "对象类别": "农民工",
        "姓名": "张三",
        "身份证号": ID,
        "所属工会编码": "GH0000000001",
        "形式": "现金",
        "金额": 500,
    }
    assert set(over) <= set(row), over
    row.update(over)
    return list(row.values())


def xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    return workbook_bytes(sheets)


def workbook(
    condolence_rows: list[list[Any]], header: list[str] = CONDOLENCE, **other: list[list[Any]]
) -> bytes:
    sheets = {"慰问": [header, *condolence_rows], "体检": [HEALTH], "救助": [RELIEF]}
    sheets.update({k: v for k, v in other.items()})
    return xlsx(sheets)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def without_sheet(sheet: str) -> bytes:
    sheets = {"慰问": [CONDOLENCE, condolence()], "体检": [HEALTH], "救助": [RELIEF]}
    del sheets[sheet]
    return xlsx(sheets)


def zip_without_workbook() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return buf.getvalue()


# ----------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Loaded:
    """The file loads: these data rows (record numbers, header = 1) pass, these are quarantined."""

    table: str
    passed: tuple[int, ...]
    quarantined: dict[int, frozenset[str]] = field(default_factory=dict)
    check: Callable[[Outcome], None] | None = None


@dataclass(frozen=True)
class Rejected:
    """The file (or one table of it) is held back whole by a batch error."""

    rule: str
    table: str = WHOLE_FILE
    says: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    path: str
    data: bytes
    expect: tuple[Loaded | Rejected, ...]


def q(*rules: str) -> frozenset[str]:
    return frozenset(rules)


def _values(table: str, row: int, **expected: str | None) -> Callable[[Outcome], None]:
    """A check of the canonical values one loaded row ends up with."""

    def check(outcome: Outcome) -> None:
        assert outcome.result is not None
        [got] = (
            outcome.result.passed.filter(common.pl.col("_row_number") == row)
            .select(list(expected))
            .rows(named=True)
        )
        assert got == expected, f"{table} row {row}: {got!r} != {expected!r}"

    return check


C = f"rights/{DELIVERY}/cases.csv"
E = f"registry/{DELIVERY}/enterprises.csv"
V = f"finance/{DELIVERY}/vouchers.csv"
A = f"events/{DELIVERY}/activities.csv"
S = f"training/{DELIVERY}/sessions.jsonl"
W = f"welfare/{DELIVERY}/HG01_202106.xlsx"

EMPTY_SHEETS = (Loaded("health_checks", ()), Loaded("relief", ()))

CASES: list[Case] = [
    # --- encodings and byte-order marks (each file in an encoding other than its source's, on purpose)
    Case(
        "registry_in_utf8",
        "registry",
        E,
        delivery_csv(ENTERPRISES_HEADER, [enterprise_row()], "utf-8"),
        (Rejected("batch.encoding", says="UTF-8-encoded"),),
    ),
    Case(
        "registry_with_utf8_bom",
        "registry",
        E,
        b"\xef\xbb\xbf" + enterprises_csv([enterprise_row()]),
        (Rejected("batch.encoding", says="byte-order mark"),),
    ),
    Case(
        "rights_in_gb18030",
        "rights",
        C,
        delivery_csv(CASES_HEADER, [case_row()], "gb18030"),
        (Rejected("batch.encoding", says="undecodable bytes"),),
    ),
    Case(
        "rights_without_bom",
        "rights",
        C,
        delivery_csv(CASES_HEADER, [case_row()], "utf-8"),
        (Loaded("cases", (2,)),),
    ),
    Case(
        "events_with_bom",
        "events",
        A,
        delivery_csv(ACTIVITIES_HEADER, [activity_row()], "utf-8-sig"),
        (Loaded("activities", (2,)),),
    ),
    Case(
        "registry_latin1_bytes",
        "registry",
        E,
        enterprises_csv([enterprise_row()]) + b"\xff\xff\xff\r\n",
        (Rejected("batch.encoding", says="undecodable bytes"),),
    ),
    # --- empty files and headers
    Case("empty_csv", "rights", C, b"", (Rejected("batch.empty", says="0 bytes"),)),
    Case(
        "only_blank_lines",
        "rights",
        C,
        b"\xef\xbb\xbf\r\n  \r\n",
        (Rejected("batch.empty", says="no header"),),
    ),
    Case("header_only", "rights", C, cases_csv([]), (Loaded("cases", ()),)),
    Case("empty_jsonl", "training", S, b"", (Rejected("batch.empty"),)),
    Case(
        "missing_column",
        "rights",
        C,
        cases_csv([case_row()[:7]], header=CASES_HEADER[:7]),
        (Rejected("batch.columns", says="维权金额"),),
    ),
    Case(
        "renamed_column",
        "rights",
        C,
        cases_csv([case_row()], header=[*CASES_HEADER[:2], "受理时间", *CASES_HEADER[3:]]),
        (Rejected("batch.columns", says="受理日期"),),
    ),
    Case(
        "duplicated_column",
        "rights",
        C,
        cases_csv([case_row() + ["2021-03-05"]], header=[*CASES_HEADER, "受理日期"]),
        (Rejected("batch.columns", says="more than once"),),
    ),
    Case(
        "unknown_amount_unit",
        "rights",
        C,
        cases_csv([case_row()], header=[*CASES_HEADER[:7], "维权金额(千元)"]),
        (Rejected("batch.columns", says="维权金额"),),
    ),
    Case(
        "extra_column_ignored",
        "rights",
        C,
        cases_csv([case_row() + ["备注"]], header=[*CASES_HEADER, "备注"]),
        (Loaded("cases", (2,)),),
    ),
    Case(
        "columns_reordered",
        "rights",
        C,
        cases_csv([list(reversed(case_row()))], header=list(reversed(CASES_HEADER))),
        (Loaded("cases", (2,), check=_values("cases", 2, recovered_yuan="1200.50")),),
    ),
    Case(
        "wan_yuan_header",
        "rights",
        C,
        cases_csv([case_row(维权金额="1.5")], header=[*CASES_HEADER[:7], "维权金额(万元)"]),
        (Loaded("cases", (2,), check=_values("cases", 2, recovered_yuan="15000.00")),),
    ),
    # --- rows
    Case(
        "ragged_rows",
        "rights",
        C,
        cases_csv([case_row("C1"), case_row("C2")[:5], case_row("C3") + ["x"]]),
        (
            Loaded(
                "cases",
                (2,),
                {
                    3: q("row.parse", "case_no.required", "case_type.required", "received_on.required"),
                    4: q("row.parse", "case_no.required", "case_type.required", "received_on.required"),
                },
            ),
        ),
    ),
    Case(
        "broken_uscc_check_char",
        "rights",
        C,
        cases_csv([case_row("C1"), case_row("C2", 统一社会信用代码=BAD_USCC)]),
        (Loaded("cases", (2,), {3: q("uscc.uscc")}),),
    ),
    Case(
        "uscc_wrong_length_and_letters",
        "registry",
        E,
        enterprises_csv([enterprise_row(), enterprise_row(USCC[:17]), enterprise_row(USCC[:16] + "IO")]),
        (Loaded("enterprises", (2,), {3: q("uscc.uscc"), 4: q("uscc.uscc")}),),
    ),
    Case(
        "broken_id_check_char",
        "rights",
        C,
        cases_csv([case_row("C1"), case_row("C2", 职工身份证号=BAD_ID)]),
        (Loaded("cases", (2,), {3: q("worker_id_card.resident_id")}),),
    ),
    Case(
        "id_with_impossible_birth_date",
        "rights",
        C,
        cases_csv(
            [case_row("C1", 职工身份证号="12010519900230123" + resident_id_check_char("12010519900230123"))]
        ),
        (Loaded("cases", (), {2: q("worker_id_card.resident_id")}),),
    ),
    Case(
        "fullwidth_digits_and_spaces",
        "rights",
        C,
        cases_csv(
            [
                case_row(
                    "\u3000" + _fullwidth("C1") + "\u00a0",
                    受理日期=_fullwidth("2021-03-05"),
                    统一社会信用代码=_fullwidth(USCC.lower()),
                    维权金额=_fullwidth("1,200.50"),
                )
            ]
        ),
        (
            Loaded(
                "cases",
                (2,),
                check=_values(
                    "cases", 2, case_no="C1", received_on="2021-03-05", uscc=USCC, recovered_yuan="1200.50"
                ),
            ),
        ),
    ),
    Case(
        "all_date_forms",
        "events",
        A,
        activities_csv(
            [
                activity_row("A1", 日期="2021/5/1"),
                activity_row("A2", 日期="2021年5月1日"),
                activity_row("A3", 日期="20210501"),
            ]
        ),
        (Loaded("activities", (2, 3, 4), check=_values("activities", 3, activity_date="2021-05-01")),),
    ),
    Case(
        "excel_serial_in_csv",
        "events",
        A,
        activities_csv([activity_row("A1", 日期="44317")]),
        (Loaded("activities", (), {2: q("activity_date.date_format")}),),
    ),
    Case(
        "impossible_calendar_date",
        "events",
        A,
        activities_csv([activity_row("A1", 日期="2021-02-30")]),
        (Loaded("activities", (), {2: q("activity_date.date_format")}),),
    ),
    Case(
        "date_after_delivery",
        "rights",
        C,
        cases_csv([case_row("C1", 受理日期="2021-07-01", 结案日期="")]),
        (Loaded("cases", (), {2: q("received_on.after_delivery")}),),
    ),
    Case(
        "date_before_1949",
        "events",
        A,
        activities_csv([activity_row("A1", 日期="1948-12-31")]),
        (Loaded("activities", (), {2: q("activity_date.before_1949")}),),
    ),
    Case(
        "negative_and_reversal_amounts",
        "finance",
        V,
        vouchers_csv(
            [
                voucher_row("V1", "1"),
                voucher_row("V1", "2", 借方金额="-5.00"),
                voucher_row("V2", "1", 借方金额="0", 贷方金额="-1,000.00"),
            ]
        ),
        (
            Loaded(
                "vouchers",
                (2, 4),
                {3: q("debit_yuan.amount")},
                check=_values("vouchers", 4, credit_yuan="-1000.00"),
            ),
        ),
    ),
    Case(
        "unknown_codes",
        "finance",
        V,
        vouchers_csv([voucher_row("V1", "1", 项目编码="XXXX"), voucher_row("V1", "2", 收款方编码="GH12")]),
        (Loaded("vouchers", (), {2: q("project_code.allowed_values"), 3: q("payee_code.payee_code")}),),
    ),
    Case(
        "not_an_integer",
        "events",
        A,
        activities_csv(
            [
                activity_row("A1", 参与人次="12.5"),
                activity_row("A2", 参与人次="-3"),
                activity_row("A3", 参与人次="1,200"),
            ]
        ),
        (Loaded("activities", (4,), {2: q("participants.integer"), 3: q("participants.integer")}),),
    ),
    Case(
        "several_rules_in_one_row",
        "rights",
        C,
        cases_csv([case_row("C1", 类型="投诉", 受理日期="abc", 统一社会信用代码=BAD_USCC)]),
        (Loaded("cases", (), {2: q("case_type.allowed_values", "received_on.date_format", "uscc.uscc")}),),
    ),
    Case(
        "duplicate_keys_below_threshold",
        "rights",
        C,
        cases_csv([case_row(f"C{i}") for i in range(1, 40)] + [case_row("C1")]),
        (
            Loaded(
                "cases",
                tuple(range(3, 41)),
                {2: q("key.unique_in_delivery"), 41: q("key.unique_in_delivery")},
            ),
        ),
    ),
    Case(
        "duplicate_keys_beyond_threshold",
        "rights",
        C,
        cases_csv([case_row("C1"), case_row("C1"), case_row("C2")]),
        (Rejected("batch.duplicate_keys", "cases", says="2 of 3 rows"),),
    ),
    # --- JSON Lines
    Case(
        "invalid_json_lines",
        "training",
        S,
        jsonl(session("S1"), '{"session_id": "S2", "title": "x"', "[1, 2]", "", session("S3", mode="hybrid")),
        (
            Loaded(
                "sessions",
                (1,),
                {
                    2: q(
                        "row.parse",
                        "session_id.required",
                        "title.required",
                        "mode.required",
                        "start_date.required",
                        "end_date.required",
                    ),
                    3: q(
                        "row.parse",
                        "session_id.required",
                        "title.required",
                        "mode.required",
                        "start_date.required",
                        "end_date.required",
                    ),
                    5: q("mode.allowed_values"),
                },
            ),
        ),
    ),
    # --- xlsx
    Case(
        "truncated_xlsx", "welfare", W, truncated(workbook([condolence()])), (Rejected("batch.unreadable"),)
    ),
    Case("zip_but_not_xlsx", "welfare", W, zip_without_workbook(), (Rejected("batch.structure"),)),
    Case("csv_named_xlsx", "welfare", W, cases_csv([case_row()]), (Rejected("batch.structure"),)),
    Case("xlsx_missing_sheet", "welfare", W, without_sheet("救助"), (Rejected("batch.sheets", says="救助"),)),
    Case(
        "xlsx_serial_dates_and_wan_yuan",
        "welfare",
        W,
        workbook(
            [condolence(日期=44260, 金额=0.05), condolence(日期="2021年3月6日")],
            header=[*CONDOLENCE[:7], "金额(万元)"],
        ),
        (
            Loaded(
                "condolence",
                (2, 3),
                check=_values("condolence", 2, visit_date="2021-03-05", amount_yuan="500.00"),
            ),
            *EMPTY_SHEETS,
        ),
    ),
    Case(
        "xlsx_row_errors",
        "welfare",
        W,
        workbook(
            [condolence(), condolence(身份证号=BAD_ID), condolence(金额=-10), condolence(对象类别="学生")]
        ),
        (
            Loaded(
                "condolence",
                (2,),
                {
                    3: q("id_card.resident_id"),
                    4: q("amount_yuan.amount"),
                    5: q("recipient_category.allowed_values"),
                },
            ),
            *EMPTY_SHEETS,
        ),
    ),
    # --- file names and folders
    Case(
        "unknown_file_name",
        "rights",
        f"rights/{DELIVERY}/case.csv",
        cases_csv([case_row()]),
        (Rejected("batch.unknown_file", says="unknown file name"),),
    ),
    Case(
        "bad_welfare_month",
        "welfare",
        f"welfare/{DELIVERY}/HG01_202113.xlsx",
        workbook([condolence()]),
        (Rejected("batch.unknown_file"),),
    ),
    Case(
        "folder_not_a_date",
        "events",
        "events/2021-6-30/activities.csv",
        activities_csv([activity_row()]),
        (Rejected("batch.unknown_file", says="not a date"),),
    ),
    Case(
        "file_outside_delivery_folder",
        "events",
        "events/activities.csv",
        activities_csv([activity_row()]),
        (Rejected("batch.unknown_file", says="delivery-date folder"),),
    ),
]


def materialise(case: Case, landing: Path) -> common.Delivery:
    path = landing / case.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)
    [delivery] = common.discover(landing, case.source)
    return delivery


def data_rows(outcome: Outcome) -> set[int]:
    assert outcome.result is not None
    return set(outcome.result.passed["_row_number"]) | set(outcome.result.quarantined["_row_number"])


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input(case: Case, tmp_path: Path) -> None:
    outcomes = screen_delivery(materialise(case, tmp_path), QualitySettings())
    by_table = {o.table_name: o for o in outcomes}
    assert set(by_table) == {e.table for e in case.expect}, [(o.table_name, o.error) for o in outcomes]
    for expected in case.expect:
        got = by_table[expected.table]
        if isinstance(expected, Rejected):
            assert got.error is not None, f"{case.id}: expected {expected.rule}, the file loaded"
            assert got.error.rule == expected.rule, got.error
            assert got.error.file == case.path
            assert expected.says in got.error.message, got.error.message
            assert got.rows_loaded == 0 and got.rows_quarantined == 0  # held back whole
            continue
        assert got.error is None, f"{case.id}: {got.error}"
        assert got.result is not None
        passed = sorted(got.result.passed["_row_number"])
        quarantined = {
            r["_row_number"]: frozenset(r["rules"].split(";"))
            for r in got.result.quarantined.iter_rows(named=True)
        }
        assert passed == list(expected.passed)
        assert quarantined == expected.quarantined
        # no row unaccounted for: every data row read is either loaded or quarantined, once
        assert got.rows_read == got.rows_loaded + got.rows_quarantined
        assert data_rows(got) == set(expected.passed) | set(expected.quarantined)
        for row in got.result.quarantined.iter_rows(named=True):
            reasons = json.loads(row["reasons"])
            assert [r["rule"] for r in reasons] == row["rules"].split(";")
            assert all(r["zh"] and r["en"] for r in reasons)
            assert row["_original"]
        if expected.check:
            expected.check(got)


if __name__ == "__main__":  # pragma: no cover - a look at the corpus
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for c in CASES:
        out = target / c.id / c.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(c.data)
        print(out)
