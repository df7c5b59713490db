"""events: UTF-8 CSV (activities, honours)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flows.errors import BatchError
from flows.sources import common, events

pytestmark = pytest.mark.unit


def deliver(tmp_path: Path, name: str, data: bytes) -> common.Delivery:
    path = tmp_path / "events" / "2022-01-05" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [d] = common.discover(tmp_path, "events")
    return d


HONOURS = (
    "荣誉编号,年度,荣誉,级别,获奖对象\nH1,2021,五一劳动奖状,区级,甲公司\n"
    "H4,２０２１,优秀志愿者,区级,张三\nH5,2021,不存在的荣誉,区级,李四\n"
)


def test_honours(tmp_path: Path) -> None:
    data = HONOURS.encode("utf-8")
    f = events.read(deliver(tmp_path, "honours.csv", data))["honours"]
    assert f.select("honour_id", "year", "honour", "level", "recipient").rows() == [
        ("H1", "2021", "五一劳动奖状", "区级", "甲公司"),
        ("H4", "2021", "优秀志愿者", "区级", "张三"),
        ("H5", "2021", "不存在的荣誉", "区级", "李四"),
    ]
    assert f["_file_sha256"].unique().to_list() == [hashlib.sha256(data).hexdigest()]
    assert f["_file_name"][0] == "events/2022-01-05/honours.csv"


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    f = events.read(deliver(tmp_path, "honours.csv", HONOURS.encode("utf-8-sig")))["honours"]
    assert f["honour_id"].to_list() == ["H1", "H4", "H5"]


def test_activities(tmp_path: Path) -> None:
    body = (
        "活动编号,名称,类别,日期,参与方式,参与人次\n"
        'HD1,运动会,文体,2021年10月1日,举办,"1,200"\n'
        "HD2,宣讲,宣传,2021-13-01,参与,-5\n"
    )
    f = events.read(deliver(tmp_path, "activities.csv", body.encode("utf-8")))["activities"]
    assert f.select("activity_id", "category", "activity_date", "participation", "participants").rows() == [
        ("HD1", "文体", "2021-10-01", "举办", "1200"),
        ("HD2", "宣传", "2021-13-01", "参与", "-5"),
    ]


def test_gb18030_given_to_events_is_an_encoding_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError) as exc:
        events.read(deliver(tmp_path, "honours.csv", HONOURS.encode("gb18030")))
    assert exc.value.rule == "batch.encoding"
    assert "UTF-8" in exc.value.message
