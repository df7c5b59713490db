"""finance: GB18030 CSV, vouchers (debit/credit) and budget (万元 headers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.errors import BatchError
from flows.sources import common, finance

pytestmark = pytest.mark.unit


def deliver(tmp_path: Path, name: str, data: bytes) -> common.Delivery:
    path = tmp_path / "finance" / "2021-12-31" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [d] = common.discover(tmp_path, "finance")
    return d


def test_vouchers(tmp_path: Path) -> None:
    body = (
        "凭证号,行号,记账日期,科目编码,科目名称,摘要,借方金额,贷方金额,项目编码,收款方编码,审批单号\n"
        'PZ001,1,2021-03-05,5010201,慰问支出,两节慰问,"12,345.67",0,LJWW,gh0000000001,SP-1\n'
        "PZ001,2,2021-03-06,5010201,慰问支出,冲销,0,-12345.67,LJWW,,\n"
        "PZ002,１,２０２１/3/7,5010201,体检,体检费,1.005,0.00,ＴＪ, ,\n"
    )
    f = finance.read(deliver(tmp_path, "vouchers.csv", body.encode("gb18030")))["vouchers"]
    assert f.select(
        "voucher_no",
        "line_no",
        "posted_on",
        "debit_yuan",
        "credit_yuan",
        "project_code",
        "payee_code",
        "approval_no",
    ).rows() == [
        ("PZ001", "1", "2021-03-05", "12345.67", "0.00", "LJWW", "GH0000000001", "SP-1"),
        ("PZ001", "2", "2021-03-06", "0.00", "-12345.67", "LJWW", None, None),
        ("PZ002", "1", "2021-03-07", "1.01", "0.00", "TJ", None, None),
    ]


def test_budget_wan_yuan(tmp_path: Path) -> None:
    body = '年度,项目编码,项目名称,预算金额（万元）\n2021,TJ,体检,1.2345\n2021,JZ,救助,"1,200"\n2021,XMBZ,补贴,约5\n'
    f = finance.read(deliver(tmp_path, "budget.csv", body.encode("gb18030")))["budget"]
    assert f["budget_yuan"].to_list() == ["12345.00", "12000000.00", "约5"]


def test_budget_two_amount_headers_is_a_column_error(tmp_path: Path) -> None:
    body = "年度,项目编码,项目名称,预算金额,预算金额(万元)\n"
    with pytest.raises(BatchError) as exc:
        finance.read(deliver(tmp_path, "budget.csv", body.encode("gb18030")))
    assert exc.value.rule == "batch.columns"


def test_utf8_budget_is_an_encoding_error(tmp_path: Path) -> None:
    body = "年度,项目编码,项目名称,预算金额\n2021,TJ,体检,1\n"
    with pytest.raises(BatchError) as exc:
        finance.read(deliver(tmp_path, "budget.csv", body.encode("utf-8")))
    assert exc.value.rule == "batch.encoding"
    assert exc.value.message.startswith("not valid GB18030")
