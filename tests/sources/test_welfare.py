"""welfare: xlsx workbooks with sheets 慰问, 体检, 救助."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows import schema
from flows.errors import BatchError
from flows.sources import common, welfare
from tests.support import workbook

pytestmark = pytest.mark.unit

CONDOLENCE = ["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(万元)"]
HEALTH = ["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"]
RELIEF = ["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"]


def deliver(
    tmp_path: Path, name: str, sheets: dict[str, list[list[Any]]] | None = None, data: bytes | None = None
) -> common.Delivery:
    path = tmp_path / "welfare" / "2021-04-02" / name
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        workbook(path, sheets or {})
    [d] = [d for d in common.discover(tmp_path, "welfare") if d.path == path]
    return d


def full_sheets() -> dict[str, list[list[Any]]]:
    return {
        "慰问": [
            CONDOLENCE,
            [
                datetime(2021, 3, 5),
                "两节慰问",
                "农民工",
                " 张三 ",
                "11010119900307123x",
                "ｇｈ0000000001",
                "现金",
                0.05,
            ],
            [44260, "特殊慰问", "退役军人", "李四", 123456789012345, None, "物资", "1.2345"],
            ["2021年3月7日", "特殊慰问", "退役军人", "王五", None, None, "物资", "1,000"],
            [None, None, None, None, None, None, None, None],
            ["2021-02-30", "两节慰问", "农民工", "赵六", None, None, "现金", 1.23456],
        ],
        "体检": [
            HEALTH,
            [date(2021, 3, 8), "张三", "11010119900307123X", "快递员", "第一医院", 300.5],
        ],
        "救助": [RELIEF],
    }


def test_workbook_gives_three_tables(tmp_path: Path) -> None:
    frames = welfare.read(deliver(tmp_path, "ST-01_202103.xlsx", full_sheets()))
    assert list(frames) == ["condolence", "health_checks", "relief"]
    c = frames["condolence"]
    t = schema.table("welfare", "condolence")
    assert c.columns == [col.name for col in t.all_columns] + list(common.META_OUT)
    assert c.select([col.name for col in t.all_columns]).rows() == [
        (
            "ST-01",
            "202103",
            "2021-03-05",
            "两节慰问",
            "农民工",
            "张三",
            "11010119900307123X",
            "GH0000000001",
            "现金",
            "500.00",
        ),
        (
            "ST-01",
            "202103",
            "2021-03-05",
            "特殊慰问",
            "退役军人",
            "李四",
            "123456789012345",
            None,
            "物资",
            "12345.00",
        ),
        ("ST-01", "202103", "2021-03-07", "特殊慰问", "退役军人", "王五", None, None, "物资", "10000000.00"),
        ("ST-01", "202103", "2021-02-30", "两节慰问", "农民工", "赵六", None, None, "现金", "12345.60"),
    ]
    assert c["_row_number"].to_list() == [2, 3, 4, 6]
    assert c["_file_name"][0] == "welfare/2021-04-02/ST-01_202103.xlsx"
    assert c["_delivery_date"][0] == "2021-04-02"
    assert c["_parse_error"].to_list() == [None] * 4
    assert json.loads(c["_original"][1]) == {
        "日期": "44260",
        "慰问项目": "特殊慰问",
        "对象类别": "退役军人",
        "姓名": "李四",
        "身份证号": "123456789012345",
        "所属工会编码": None,
        "形式": "物资",
        "金额(万元)": "1.2345",
    }
    h = frames["health_checks"]
    assert h.select("station_code", "ledger_month", "check_date", "id_card", "fee_yuan").rows() == [
        ("ST-01", "202103", "2021-03-08", "11010119900307123X", "300.50")
    ]
    r = frames["relief"]
    assert r.height == 0
    assert r.columns == [col.name for col in schema.table("welfare", "relief").all_columns] + list(
        common.META_OUT
    )
    assert r.schema["_row_number"] == pl.Int64
    sha = common.sha256_file(tmp_path / "welfare" / "2021-04-02" / "ST-01_202103.xlsx")
    assert set(c["_file_sha256"]) == {sha}


def test_yuan_header_and_extra_column(tmp_path: Path) -> None:
    sheets = full_sheets()
    sheets["慰问"] = [
        ["备注"] + [h.replace("(万元)", "（元）") for h in CONDOLENCE],
        ["x", "2021-03-01", "两节慰问", "农民工", "张三", None, None, "现金", "1,234.5"],
    ]
    c = welfare.read(deliver(tmp_path, "A01_202103.xlsx", sheets))["condolence"]
    assert c.select("visit_date", "amount_yuan").rows() == [("2021-03-01", "1234.50")]


def test_missing_sheet(tmp_path: Path) -> None:
    sheets = full_sheets()
    del sheets["救助"]
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A01_202103.xlsx", sheets))
    assert exc.value.rule == "batch.sheets"
    assert exc.value.message == "missing sheet(s) 救助; found: 慰问, 体检"
    assert exc.value.file == "welfare/2021-04-02/A01_202103.xlsx"


def test_missing_column_names_the_sheet(tmp_path: Path) -> None:
    sheets = full_sheets()
    sheets["体检"] = [HEALTH[:-1]]
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A01_202103.xlsx", sheets))
    assert exc.value.rule == "batch.columns"
    assert exc.value.message.startswith("sheet 体检: missing column(s) 费用(元)/(万元)")


def test_sheet_without_header_is_empty(tmp_path: Path) -> None:
    sheets = full_sheets()
    sheets["救助"] = []
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A01_202103.xlsx", sheets))
    assert exc.value.rule == "batch.empty"


def test_truncated_workbook(tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    workbook(good, full_sheets())
    data = good.read_bytes()
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A01_202103.xlsx", data=data[: len(data) // 2]))
    assert exc.value.rule == "batch.unreadable"


def test_not_a_workbook_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A01_202103.xlsx", data=b"not a zip"))
    assert exc.value.rule == "batch.structure"
    with pytest.raises(BatchError) as exc:
        welfare.read(deliver(tmp_path, "A02_202103.xlsx", data=b""))
    assert exc.value.rule == "batch.empty"


def test_file_name_key() -> None:
    assert common.welfare_file_key("ST-01_202103.xlsx") == ("ST-01", "202103")
    assert common.welfare_file_key("A01_202100.xlsx") is None
    assert common.welfare_file_key("A01_2021031.xlsx") is None
    assert common.welfare_file_key("A 01_202103.xlsx") is None
