"""rights: UTF-8 CSV with (or without) BOM: cases and bargaining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.errors import BatchError
from flows.sources import common, rights

pytestmark = pytest.mark.unit

CASES_HEADER = "案件编号,类型,受理日期,统一社会信用代码,职工身份证号,调解结果,结案日期,维权金额(元)"


def deliver(tmp_path: Path, name: str, data: bytes) -> common.Delivery:
    path = tmp_path / "rights" / "2022-02-20" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [d] = common.discover(tmp_path, "rights")
    return d


CASES = (
    CASES_HEADER + "\n"
    'AJ-001,劳动争议,2021/9/1,91310000ma1k4abc1x,11010119900307123x,成功,2022年2月1日,"1,000.50"\n'
    "ＡＪ-002,咨询,20210902,,,,,\n"
)


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""])
def test_cases_with_and_without_bom(tmp_path: Path, bom: bytes) -> None:
    f = rights.read(deliver(tmp_path, "cases.csv", bom + CASES.encode("utf-8")))["cases"]
    assert f.select(
        "case_no",
        "case_type",
        "received_on",
        "uscc",
        "worker_id_card",
        "mediation_result",
        "closed_on",
        "recovered_yuan",
    ).rows() == [
        (
            "AJ-001",
            "劳动争议",
            "2021-09-01",
            "91310000MA1K4ABC1X",
            "11010119900307123X",
            "成功",
            "2022-02-01",
            "1000.50",
        ),
        ("AJ-002", "咨询", "2021-09-02", None, None, None, None, None),
    ]
    assert f["_row_number"].to_list() == [2, 3]
    assert next(iter(json.loads(f["_original"][0]))) == "案件编号"  # BOM not part of the first header


def test_cases_amount_in_wan_yuan_full_width_header(tmp_path: Path) -> None:
    body = (
        CASES_HEADER.replace("维权金额(元)", "维权金额（万元）")
        + "\nAJ-1,劳动争议,2021-09-01,,,成功,2021-10-01,1.2345\n"
    )
    f = rights.read(deliver(tmp_path, "cases.csv", body.encode("utf-8-sig")))["cases"]
    assert f["recovered_yuan"].to_list() == ["12345.00"]


def test_bargaining_bools(tmp_path: Path) -> None:
    body = (
        "统一社会信用代码,年度,开展集体协商,质效评估,建立协商机制,签订工资协议,协议签订日期,录入日期\n"
        "91310000MA1K4ABC1X,２０２１,是,否,是,是,2021-3-5,2021/12/31\n"
        "91310000MA1K4ABC1X,2021.0,否,不知道,否,否,,2022-01-01\n"
    )
    f = rights.read(deliver(tmp_path, "bargaining.csv", body.encode("utf-8-sig")))["bargaining"]
    assert f.select(
        "year",
        "bargained",
        "evaluated",
        "mechanism_established",
        "wage_agreement_signed",
        "agreement_signed_on",
        "entered_on",
    ).rows() == [
        ("2021", "true", "false", "true", "true", "2021-03-05", "2021-12-31"),
        ("2021", "false", "不知道", "false", "false", None, "2022-01-01"),
    ]


def test_gb18030_given_to_rights_is_an_encoding_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError) as exc:
        rights.read(deliver(tmp_path, "cases.csv", CASES.encode("gb18030")))
    assert exc.value.rule == "batch.encoding"
    assert exc.value.file == "rights/2022-02-20/cases.csv"


def test_bom_only_file_is_empty(tmp_path: Path) -> None:
    with pytest.raises(BatchError) as exc:
        rights.read(deliver(tmp_path, "cases.csv", b"\xef\xbb\xbf"))
    assert exc.value.rule == "batch.empty"
