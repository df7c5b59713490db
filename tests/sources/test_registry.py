"""registry: GB18030 CSV readers (enterprises, unions, coverage)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows import schema
from flows.errors import BatchError
from flows.sources import common, registry

pytestmark = pytest.mark.unit

DAY = "2021-06-30"
ENTERPRISE_HEADER = "统一社会信用代码,企业名称,所属片区,行业门类,职工人数,企业标签,注册日期,更新时间"


def deliver(tmp_path: Path, name: str, data: bytes, day: str = DAY) -> common.Delivery:
    path = tmp_path / "registry" / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [d] = [d for d in common.discover(tmp_path, "registry") if d.path == path]
    return d


def gb(text: str) -> bytes:
    return text.encode("gb18030")


def test_enterprises_canonical_frame(tmp_path: Path) -> None:
    body = (
        ENTERPRISE_HEADER + "\r\n"
        '９１３１００００ma1k4abc1x,\u00a0甲公司\u3000,海港,Ｃ,"1,234",百强、科技领军,2021年3月5日,2021/6/1 8:00\r\n'
        "91310000MA1K4ABC2Y,乙公司,空港,I,12,,20210230,2021-06-01T09:30:00\r\n"
    )
    data = gb(body)
    d = deliver(tmp_path, "enterprises.csv", data)
    frames = registry.read(d)
    assert list(frames) == ["enterprises"]
    f = frames["enterprises"]
    t = schema.table("registry", "enterprises")
    assert f.columns == [c.name for c in t.all_columns] + list(common.META_OUT)
    assert all(f.schema[c.name] == pl.String for c in t.all_columns)
    assert f.schema["_row_number"] == pl.Int64
    assert f.select([c.name for c in t.columns]).rows() == [
        (
            "91310000MA1K4ABC1X",
            "甲公司",
            "海港",
            "C",
            "1234",
            "百强、科技领军",
            "2021-03-05",
            "2021-06-01 08:00:00",
        ),
        ("91310000MA1K4ABC2Y", "乙公司", "空港", "I", "12", None, "20210230", "2021-06-01 09:30:00"),
    ]
    assert f["_source"].to_list() == ["registry", "registry"]
    assert f["_file_name"].to_list() == ["registry/2021-06-30/enterprises.csv"] * 2
    assert f["_file_sha256"].to_list() == [hashlib.sha256(data).hexdigest()] * 2
    assert f["_delivery_date"].to_list() == ["2021-06-30"] * 2
    assert f["_row_number"].to_list() == [2, 3]
    assert f["_parse_error"].to_list() == [None, None]
    assert json.loads(f["_original"][0]) == {
        "统一社会信用代码": "９１３１００００ma1k4abc1x",
        "企业名称": "\u00a0甲公司\u3000",
        "所属片区": "海港",
        "行业门类": "Ｃ",
        "职工人数": "1,234",
        "企业标签": "百强、科技领军",
        "注册日期": "2021年3月5日",
        "更新时间": "2021/6/1 8:00",
    }
    assert "甲公司" in f["_original"][0]  # ensure_ascii=False


def test_unions_bool_and_dates(tmp_path: Path) -> None:
    body = (
        "工会编码,工会名称,建会形式,统一社会信用代码,成立日期,党组织,状态,撤销日期,更新时间\n"
        "ｇｈ0000000001,甲工会,独立建会,91310000MA1K4ABC1X,2020/1/2,是,正常,,2021-06-01 08:00:00\n"
        "GH0000000002,乙工会,联合建会,,2019-12-31,否,撤销,2021-05-06,2021-06-01 08:00:00\n"
        "GH0000000003,丙工会,联合建会,,2019-12-31,有,撤销,abc,2021-06-01 08:00:00\n"
    )
    f = registry.read(deliver(tmp_path, "unions.csv", gb(body)))["unions"]
    assert f["union_code"].to_list() == ["GH0000000001", "GH0000000002", "GH0000000003"]
    assert f["founded_on"].to_list() == ["2020-01-02", "2019-12-31", "2019-12-31"]
    assert f["has_party_org"].to_list() == ["true", "false", "有"]
    assert f["uscc"].to_list() == ["91310000MA1K4ABC1X", None, None]
    assert f["revoked_on"].to_list() == [None, "2021-05-06", "abc"]


def test_coverage_header_only_is_zero_rows(tmp_path: Path) -> None:
    f = registry.read(deliver(tmp_path, "coverage.csv", gb("工会编码,统一社会信用代码,起始日期,终止日期\n")))[
        "coverage"
    ]
    assert f.height == 0
    assert f.columns == ["union_code", "uscc", "start_on", "end_on"] + list(common.META_OUT)


def test_extra_column_ignored_and_order_free(tmp_path: Path) -> None:
    body = "备注,终止日期,起始日期,统一社会信用代码,工会编码\n随便,,2021-1-1,X,GH0000000001\n"
    f = registry.read(deliver(tmp_path, "coverage.csv", gb(body)))["coverage"]
    assert f.select("union_code", "uscc", "start_on", "end_on").rows() == [
        ("GH0000000001", "X", "2021-01-01", None)
    ]
    assert json.loads(f["_original"][0])["备注"] == "随便"


def test_missing_column(tmp_path: Path) -> None:
    body = "统一社会信用代码,企业名称,所属片区,行业门类,职工人数,企业标签,更新时间\n"
    with pytest.raises(BatchError) as exc:
        registry.read(deliver(tmp_path, "enterprises.csv", gb(body)))
    assert exc.value.rule == "batch.columns"
    assert exc.value.file == "registry/2021-06-30/enterprises.csv"
    assert exc.value.message.startswith("missing column(s) 注册日期; found: 统一社会信用代码,")


def test_ragged_row_becomes_parse_error(tmp_path: Path) -> None:
    body = (
        "工会编码,统一社会信用代码,起始日期,终止日期\n"
        "GH0000000001,X,2021-01-01,\n"
        "GH0000000002,X,2021-01-01\n"
        "\n"
        'GH0000000003,"Y\nZ",2021-01-01,,extra\n'
        ",,,\n"
        "GH0000000004,X,2021-01-01,\n"
    )
    f = registry.read(deliver(tmp_path, "coverage.csv", gb(body)))["coverage"]
    assert f["_row_number"].to_list() == [2, 3, 5, 7]
    assert f["_parse_error"].to_list() == [
        None,
        "row has 3 fields, header has 4",
        "row has 5 fields, header has 4",
        None,
    ]
    assert f["union_code"].to_list() == ["GH0000000001", None, None, "GH0000000004"]
    assert json.loads(f["_original"][1]) == {"_line": "GH0000000002,X,2021-01-01"}
    assert json.loads(f["_original"][2]) == {"_line": 'GH0000000003,"Y\nZ",2021-01-01,,extra'}


def test_utf8_file_is_an_encoding_error(tmp_path: Path) -> None:
    body = "工会编码,统一社会信用代码,起始日期,终止日期\nGH0000000001,X,2021-01-01,\n"
    with pytest.raises(BatchError) as exc:
        registry.read(deliver(tmp_path, "coverage.csv", body.encode("utf-8")))
    assert exc.value.rule == "batch.encoding"
    assert "GB18030" in exc.value.message


def test_utf8_bom_ascii_file_is_an_encoding_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError) as exc:
        registry.read(deliver(tmp_path, "coverage.csv", b"\xef\xbb\xbfa,b\n"))
    assert exc.value.rule == "batch.encoding"


def test_invalid_bytes_is_an_encoding_error(tmp_path: Path) -> None:
    data = gb("工会编码,统一社会信用代码,起始日期,终止日期\n") + b"GH1,\xff\xff,2021-01-01,\n"
    with pytest.raises(BatchError) as exc:
        registry.read(deliver(tmp_path, "coverage.csv", data))
    assert exc.value.rule == "batch.encoding"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BatchError) as exc:
        registry.read(deliver(tmp_path, "coverage.csv", data))
    assert exc.value.rule == "batch.empty"


def test_flagged_delivery_is_refused(tmp_path: Path) -> None:
    d = deliver(tmp_path, "coverage.csv", gb("工会编码\n"), day="latest")
    assert d.delivery_date is None
    with pytest.raises(BatchError) as exc:
        registry.read(d)
    assert exc.value.rule == "batch.unknown_file"


def test_delivery_of_another_source_is_a_bug(tmp_path: Path) -> None:
    d = common.Delivery("events", date(2021, 1, 1), tmp_path / "x.csv", "events/2021-01-01/honours.csv")
    with pytest.raises(ValueError):
        registry.read(d)


def test_a_hostile_header_never_becomes_a_column_name(tmp_path: Path) -> None:
    """File headers only choose which contract column a value goes to: an extra header written
    as SQL stays data (in ``_original``), never a column, table or statement."""
    hostile = 'x"); DROP TABLE raw.registry__enterprises; --'
    body = (
        ENTERPRISE_HEADER + f',"{hostile.replace(chr(34), chr(34) * 2)}"\r\n'
        "91310000MA1K4ABC1X,甲公司,海港,C,12,,2021-03-05,2021-06-01 08:00:00,1\r\n"
    )
    f = registry.read(deliver(tmp_path, "enterprises.csv", gb(body)))["enterprises"]
    t = schema.table("registry", "enterprises")
    assert f.columns == [c.name for c in t.all_columns] + list(common.META_OUT)
    assert all(schema.identifier(c) for c in f.columns if not c.startswith("_"))
    assert json.loads(f["_original"][0])[hostile] == "1"
