"""training: JSON Lines (UTF-8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.errors import BatchError
from flows.sources import common, training

pytestmark = pytest.mark.unit


def deliver(tmp_path: Path, name: str, data: bytes) -> common.Delivery:
    path = tmp_path / "training" / "2021-12-01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    [d] = common.discover(tmp_path, "training")
    return d


def lines(*items: str) -> bytes:
    return ("\n".join(items) + "\n").encode("utf-8")


def test_attendance(tmp_path: Path) -> None:
    data = lines(
        json.dumps(
            {
                "session_id": "S1",
                "id_card": "11010119900307123x",
                "name": "张三",
                "union_code": "gh0000000001",
                "registered": True,
                "attended": False,
                "replay_views": 3,
                "extra": [1],
            },
            ensure_ascii=False,
        ),
        json.dumps(
            {
                "session_id": " Ｓ2 ",
                "id_card": None,
                "name": "李四",
                "union_code": "GH0000000002",
                "registered": "true",
                "attended": "是",
                "replay_views": 2.0,
            },
            ensure_ascii=False,
        ),
        "",
        '{"session_id": "S3", "name": "王五"',
        "[1, 2]",
        json.dumps(
            {
                "session_id": "S4",
                "name": "赵六",
                "union_code": "GH0000000003",
                "registered": False,
                "attended": True,
                "replay_views": "1,000",
            },
            ensure_ascii=False,
        ),
    )
    f = training.read(deliver(tmp_path, "attendance.jsonl", data))["attendance"]
    assert f.select(
        "session_id", "id_card", "name", "union_code", "registered", "attended", "replay_views"
    ).rows() == [
        ("S1", "11010119900307123X", "张三", "GH0000000001", "true", "false", "3"),
        ("S2", None, "李四", "GH0000000002", "true", "是", "2"),
        (None, None, None, None, None, None, None),
        (None, None, None, None, None, None, None),
        ("S4", None, "赵六", "GH0000000003", "false", "true", "1000"),
    ]
    assert f["_row_number"].to_list() == [1, 2, 4, 5, 6]
    assert f["_parse_error"][0] is None
    assert f["_parse_error"][2].startswith("invalid JSON")
    assert f["_parse_error"][3] == "JSON value is not an object but list"
    assert json.loads(f["_original"][2]) == {"_line": '{"session_id": "S3", "name": "王五"'}
    assert json.loads(f["_original"][3]) == {"_line": "[1, 2]"}
    assert json.loads(f["_original"][0])["registered"] == "true"
    assert json.loads(f["_original"][0])["extra"] == "[1]"
    assert f["_file_name"][0] == "training/2021-12-01/attendance.jsonl"
    assert f["_delivery_date"][0] == "2021-12-01"


def test_sessions_and_competitions(tmp_path: Path) -> None:
    data = lines(
        '{"session_id":"S1","title":"安全培训","mode":"online","start_date":"2021/3/5","end_date":"20210306"}'
    )
    f = training.read(deliver(tmp_path, "sessions.jsonl", data))["sessions"]
    assert f.select("session_id", "title", "mode", "start_date", "end_date").rows() == [
        ("S1", "安全培训", "online", "2021-03-05", "2021-03-06")
    ]
    data = lines(
        '{"competition_id":"C1","name":"技能赛","level":"city","role":"host","start_date":"2021-02-30",'
        '"participants":12}'
    )
    (tmp_path / "training" / "2021-12-01" / "sessions.jsonl").unlink()
    f = training.read(deliver(tmp_path, "competitions.jsonl", data))["competitions"]
    assert f.select("competition_id", "competition_name", "start_date", "participants").rows() == [
        ("C1", "技能赛", "2021-02-30", "12")
    ]


def test_key_missing_from_every_record_is_a_column_error(tmp_path: Path) -> None:
    data = lines('{"session_id":"S1","title":"x","start_date":"2021-01-01","end_date":"2021-01-02"}')
    with pytest.raises(BatchError) as exc:
        training.read(deliver(tmp_path, "sessions.jsonl", data))
    assert exc.value.rule == "batch.columns"
    assert exc.value.message.startswith("missing column(s) mode")


def test_optional_key_may_be_absent(tmp_path: Path) -> None:
    data = lines(
        '{"session_id":"S1","name":"张三","union_code":"GH0000000001","registered":true,'
        '"attended":true,"replay_views":0}'
    )
    f = training.read(deliver(tmp_path, "attendance.jsonl", data))["attendance"]
    assert f["id_card"].to_list() == [None]


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BatchError) as exc:
        training.read(deliver(tmp_path, "sessions.jsonl", data))
    assert exc.value.rule == "batch.empty"


def test_non_utf8_is_an_encoding_error(tmp_path: Path) -> None:
    data = '{"session_id":"S1","title":"安全培训"}\n'.encode("gb18030")
    with pytest.raises(BatchError) as exc:
        training.read(deliver(tmp_path, "sessions.jsonl", data))
    assert exc.value.rule == "batch.encoding"


def test_crlf_and_bom(tmp_path: Path) -> None:
    data = (
        '\ufeff{"session_id":"S1","title":"t","mode":"offline","start_date":"2021-01-01","end_date":"2021-01-01"}'
        "\r\n"
    ).encode("utf-8")
    f = training.read(deliver(tmp_path, "sessions.jsonl", data))["sessions"]
    assert f["session_id"].to_list() == ["S1"]
    assert f["_parse_error"].to_list() == [None]
