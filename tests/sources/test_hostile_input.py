"""Hostile and broken deliveries at the reader (contract v1.1, "Hostile and broken input").

Pure functions on real files: links out of the landing zone, entries that are no files,
unknown top-level folders, control characters, open quotes, files that are not what their
name says and JSON values of the wrong type. Each test fails on the readers before issue 18.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import openpyxl
import pytest

from flows.checksums import resident_id_check_char
from flows.errors import BatchError
from flows.quality.runner import validate
from flows.quality.screen import read_delivery
from flows.schema import table
from flows.sources import common, events, rights, training, welfare

pytestmark = pytest.mark.unit

DAY = "2021-12-01"
ID = "12010519900307123" + resident_id_check_char("12010519900307123")
ACTIVITIES = "活动编号,名称,类别,日期,参与方式,参与人次\r\n"


def put(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def only(landing: Path, source: str, rel: str) -> common.Delivery:
    [d] = [d for d in common.discover(landing, source) if d.rel_name == rel]
    return d


def activities(*rows: str) -> bytes:
    return (ACTIVITIES + "".join(r + "\r\n" for r in rows)).encode("utf-8")


# ----------------------------------------------------------------- paths (class 5, 8)
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the landing zone holding a valid delivery of events."""
    out = tmp_path / "elsewhere"
    put(out, "activities.csv", activities("A1,运动会,文体,2021-05-01,举办,10"))
    put(out, f"{DAY}/activities.csv", activities("A1,运动会,文体,2021-05-01,举办,10"))
    return out


def test_links_out_of_the_landing_zone_are_flagged_never_read(tmp_path: Path, outside: Path) -> None:
    land = tmp_path / "landing"
    (land / "events" / DAY).mkdir(parents=True)
    (land / "events" / DAY / "activities.csv").symlink_to(outside / "activities.csv")  # a file
    (land / "events" / "2021-12-02").symlink_to(outside / DAY)  # a delivery folder
    (land / "rights").symlink_to(outside)  # a whole source folder
    found = {d.rel_name: d for d in common.discover(land, "events") + common.discover(land, "rights")}
    assert {k: d.rule for k, d in found.items()} == {
        f"events/{DAY}/activities.csv": common.OUTSIDE_LANDING,
        "events/2021-12-02": common.OUTSIDE_LANDING,
        "rights": common.OUTSIDE_LANDING,
    }
    for d in found.values():
        assert d.unread and "outside the landing zone" in (d.problem or "")
        with pytest.raises(BatchError) as exc:
            read_delivery(d)
        assert exc.value.rule == common.OUTSIDE_LANDING
        # its identity is its name, not bytes read from outside
        assert common.delivery_sha256(d) == common.sha256_bytes(f"{d.rule}:{d.rel_name}".encode())


def test_links_that_stay_inside_the_landing_zone_are_read(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    target = put(land, f"events/{DAY}/activities.csv", activities("A1,运动会,文体,2021-05-01,举办,10"))
    (land / "events" / "2021-12-02").mkdir()
    (land / "events" / "2021-12-02" / "activities.csv").symlink_to(target)
    d = only(land, "events", "events/2021-12-02/activities.csv")
    assert d.problem is None
    assert events.read(d)["activities"].height == 1


def test_entries_that_are_not_files_are_flagged(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    (land / "events" / DAY).mkdir(parents=True)
    os.mkfifo(land / "events" / DAY / "activities.csv")  # a reader would block on it for ever
    (land / "events" / DAY / "honours.csv").symlink_to(tmp_path / "missing.csv")  # dangling
    found = {d.rel_name: d.rule for d in common.discover(land, "events")}
    assert found == {
        f"events/{DAY}/activities.csv": common.NOT_A_FILE,
        f"events/{DAY}/honours.csv": common.NOT_A_FILE,
    }
    assert all(d.unread for d in common.discover(land, "events"))


def test_unknown_top_level_entries_are_reported(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    for folder in ("hr", "Events", "REGISTRY", "registry-old", "events"):
        (land / folder / DAY).mkdir(parents=True)
    put(land, "notes.txt", b"x")
    put(land, "members.sqlite", b"")
    put(land, "members.sqlite-journal", b"")
    found = {d.rel_name: d for d in common.discover_unknown(land)}
    assert sorted(found) == ["Events/", "REGISTRY/", "hr/", "notes.txt", "registry-old/"]
    assert {d.rule for d in found.values()} == {common.UNKNOWN_SOURCE}
    assert {d.source for d in found.values()} == {common.LANDING}
    assert "exact and lower case" in (found["Events/"].problem or "")


def test_an_empty_folder_that_is_no_delivery_is_said(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    (land / "events" / "latest").mkdir(parents=True)
    (land / "events" / DAY).mkdir(parents=True)  # an empty delivery: nothing to say
    [d] = common.discover(land, "events")
    assert d.rel_name == "events/latest" and d.rule == common.UNKNOWN_FILE


# ------------------------------------------------------- control characters (class 2)
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f"])
def test_control_characters_in_a_csv_value_are_a_row_rule(tmp_path: Path, char: str) -> None:
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities(
            "A1,运动会,文体,2021-05-01,举办,10",
            f"A2,运{char}动会,文体,2021-05-01,举办,10",
            'A3,"two\r\nlines",文体,2021-05-01,举办,10',
            f"A{char}4,x,文体,2021-05-01,举办,10",
        ),
    )
    frame = events.read(only(land, "events", f"events/{DAY}/activities.csv"))["activities"]
    assert frame["_control_chars"].to_list() == [None, "activity_name", None, "activity_id"]
    result = validate(frame, table("events", "activities"), "activities.csv")
    bad = {r["_row_number"]: r for r in result.quarantined.iter_rows(named=True)}
    assert sorted(bad) == [3, 5] and all(
        "row.control_characters" in r["rules"].split(";") for r in bad.values()
    )
    [reason] = [x for x in json.loads(bad[3]["reasons"]) if x["rule"] == "row.control_characters"]
    assert reason["detail"] == "activity_name"  # the column, never the value


def test_nul_in_gb18030_and_bom_csv(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    enterprises = (
        "统一社会信用代码,企业名称,所属片区,行业门类,职工人数,企业标签,注册日期,更新时间\r\n"
        "91120116MA05K8XQ3X,某\x00公司,海港,C,1,,2015-05-01,2021-06-01 08:00:00\r\n"
    ).encode("gb18030")
    put(land, f"registry/{DAY}/enterprises.csv", enterprises)
    f = read_delivery(only(land, "registry", f"registry/{DAY}/enterprises.csv"))["enterprises"]
    assert f["_control_chars"].to_list() == ["enterprise_name"]
    cases = (
        "\ufeff案件编号,类型,受理日期,统一社会信用代码,职工身份证号,调解结果,结案日期,维权金额\r\n"
        f"C1,咨询,2021-03-05,,{ID}\x00,,,\r\n"
    ).encode()
    put(land, f"rights/{DAY}/cases.csv", cases)
    f = rights.read(only(land, "rights", f"rights/{DAY}/cases.csv"))["cases"]
    assert f["_control_chars"].to_list() == ["worker_id_card"]


def test_control_characters_at_the_ends_are_no_whitespace(tmp_path: Path) -> None:
    """Contract v1.1: a C0 control character (tab aside) is an error wherever it stands; only
    real whitespace (spaces, NBSP, U+3000) is stripped at the ends."""
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities(
            "A1,\x01运动会\x1f,文体,2021-05-01,举办,10",
            "A2,运动会\x00,文体,2021-05-01,举办,10",
            "A3,\u3000运动会\t,文体,2021-05-01,举办,10",
        ),
    )
    frame = events.read(only(land, "events", f"events/{DAY}/activities.csv"))["activities"]
    assert frame["_control_chars"].to_list() == ["activity_name", "activity_name", None]
    assert frame["activity_name"].to_list()[2] == "运动会"


def test_control_characters_in_json_and_xlsx(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    put(
        land,
        f"training/{DAY}/sessions.jsonl",
        "\n".join(
            json.dumps(o)
            for o in (
                {
                    "session_id": "S1",
                    "title": "a\u0000b",
                    "mode": "online",
                    "start_date": "2021-05-01",
                    "end_date": "2021-05-01",
                },
                {
                    "session_id": "S2",
                    "title": "two\nlines",
                    "mode": "online",
                    "start_date": "2021-05-01",
                    "end_date": "2021-05-01",
                },
                {
                    "session_id": "S3",
                    "title": "tab\there",
                    "mode": "online",
                    "start_date": "2021-05-01",
                    "end_date": "2021-05-01",
                },
            )
        ).encode(),
    )
    f = training.read(only(land, "training", f"training/{DAY}/sessions.jsonl"))["sessions"]
    assert f["_control_chars"].to_list() == ["title", "title", None]  # a line break is only for CSV fields

    wb = openpyxl.Workbook()
    wb.active.title = "慰问"
    wb.active.append(["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(元)"])
    wb.active.append(["2021-05-01", "两节慰问", "农民工", "PLACEHOLDER", ID, None, "现金", 100])
    for name, header in (
        ("体检", ["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"]),
        ("救助", ["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"]),
    ):
        wb.create_sheet(name).append(header)
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl refuses control characters in cells: write Excel's own escape into the sheet XML
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            data = src.read(item.filename)
            z.writestr(item, data.replace(b"PLACEHOLDER", b"\xe5\xbc\xa0_x0000_\xe4\xb8\x89"))
    put(land, f"welfare/{DAY}/A01_202111.xlsx", out.getvalue())
    frames = welfare.read(only(land, "welfare", f"welfare/{DAY}/A01_202111.xlsx"))
    assert frames["condolence"]["_control_chars"].to_list() == ["name"]


# ---------------------------------------------------------------- structure (class 6, 7)
def test_an_open_quote_that_swallows_rows_rejects_the_file(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    rows = [f"A{i},运动会,文体,2021-05-01,举办,10" for i in range(1, 40)]
    rows[5] = 'A6,"运动会,文体,2021-05-01,举办,10'
    put(land, f"events/{DAY}/activities.csv", activities(*rows))
    with pytest.raises(BatchError) as exc:
        events.read(only(land, "events", f"events/{DAY}/activities.csv"))
    assert exc.value.rule == common.STRUCTURE and "line 7" in exc.value.message


def test_an_open_quote_closed_by_a_later_quoted_field_rejects_the_file(tmp_path: Path) -> None:
    """The stray quote is closed by the next row's quoted amount: two lines become one record of
    the wrong width, which is no memo of two lines."""
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities(
            'A1,运"动会,文体,2021-05-01,举办,10',
            'A2,"运动会,文体,2021-05-01,举办,10',
            'A3,运动会,文体,2021-05-01,"举办",10',
            "A4,运动会,文体,2021-05-01,举办,10",
        ),
    )
    with pytest.raises(BatchError) as exc:
        events.read(only(land, "events", f"events/{DAY}/activities.csv"))
    assert exc.value.rule == common.STRUCTURE and "line 3" in exc.value.message


def test_an_open_quote_on_the_last_line_rejects_the_file(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities("A1,运动会,文体,2021-05-01,举办,10", 'A2,"运动会,文体'),
    )
    with pytest.raises(BatchError) as exc:
        events.read(only(land, "events", f"events/{DAY}/activities.csv"))
    assert exc.value.rule == common.STRUCTURE and "never closed" in exc.value.message


def test_quoted_line_breaks_and_stray_inner_quotes_still_load(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities(
            'A1,"运动会\r\n第二行, 有逗号",文体,2021-05-01,举办,10', 'A2,5"寸屏,文体,2021-05-01,举办,10'
        ),
    )
    f = events.read(only(land, "events", f"events/{DAY}/activities.csv"))["activities"]
    assert (
        f["activity_name"].to_list() == ["运动会\r\n第二行, 有逗号", '5"寸屏']
        and f["_control_chars"].null_count() == 2
    )


def test_rows_that_never_split_into_the_header_columns_reject_the_file(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    put(
        land,
        f"events/{DAY}/activities.csv",
        activities("A1;运动会;文体;2021-05-01;举办;10", "A2;x;文体;2021-05-01;举办;1"),
    )
    with pytest.raises(BatchError) as exc:
        events.read(only(land, "events", f"events/{DAY}/activities.csv"))
    assert exc.value.rule == common.STRUCTURE and "6 comma-separated columns" in exc.value.message


@pytest.mark.parametrize(
    "body",
    [
        '[{"session_id": "S1", "title": "t", "mode": "online", "start_date": "2021-05-01", "end_date": "2021-05-01"}]',
        '[\n  {\n    "session_id": "S1",\n    "title": "t"\n  }\n]\n',
        '{\n  "session_id": "S1",\n  "title": "t"\n}\n',
        "not json at all\nnor this\n",
    ],
)
def test_a_jsonl_file_that_is_no_json_lines_is_rejected(tmp_path: Path, body: str) -> None:
    land = tmp_path / "landing"
    put(land, f"training/{DAY}/sessions.jsonl", body.encode())
    with pytest.raises(BatchError) as exc:
        training.read(only(land, "training", f"training/{DAY}/sessions.jsonl"))
    assert exc.value.rule == common.STRUCTURE


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "OLE2"),
        (b"a,b,c\r\n1,2,3\r\n", "not a zip"),
    ],
)
def test_an_xlsx_that_is_no_workbook_is_rejected(tmp_path: Path, data: bytes, what: str) -> None:
    land = tmp_path / "landing"
    put(land, f"welfare/{DAY}/A01_202111.xlsx", data)
    with pytest.raises(BatchError) as exc:
        welfare.read(only(land, "welfare", f"welfare/{DAY}/A01_202111.xlsx"))
    assert exc.value.rule == common.STRUCTURE and what in exc.value.message


def test_a_workbook_named_csv_is_rejected_as_what_it_is(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    buf = io.BytesIO()
    openpyxl.Workbook().save(buf)
    put(land, f"events/{DAY}/activities.csv", buf.getvalue())
    with pytest.raises(BatchError) as exc:
        events.read(only(land, "events", f"events/{DAY}/activities.csv"))
    assert exc.value.rule == common.STRUCTURE and "zip archive" in exc.value.message


# ------------------------------------------------------------------ JSON types (class 9)
@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("replay_views", "120", "a string where an integer is wanted"),
        ("replay_views", 1e3, "a number with a fraction or exponent where an integer is wanted"),
        ("replay_views", 12.5, "a number with a fraction or exponent where an integer is wanted"),
        ("replay_views", True, "a boolean where an integer is wanted"),
        ("name", {"a": 1}, "an object where a string is wanted"),
        ("name", ["张", "三"], "an array where a string is wanted"),
        ("session_id", 17, "an integer where a string is wanted"),
        ("attended", "true", "a string where true or false is wanted"),
        ("registered", 1, "an integer where true or false is wanted"),
    ],
)
def test_json_values_are_checked_as_json_types(
    tmp_path: Path, field: str, value: object, problem: str
) -> None:
    good = {
        "session_id": "S1",
        "id_card": ID,
        "name": "张三丰",
        "union_code": "GH0000000001",
        "registered": True,
        "attended": False,
        "replay_views": 3,
    }
    land = tmp_path / "landing"
    put(
        land,
        f"training/{DAY}/attendance.jsonl",
        (
            json.dumps(good, ensure_ascii=False)
            + "\n"
            + json.dumps(good | {"session_id": "S2", field: value}, ensure_ascii=False)
            + "\n"
        ).encode(),
    )
    f = training.read(only(land, "training", f"training/{DAY}/attendance.jsonl"))["attendance"]
    assert f["_type_errors"].to_list() == [None, f"{field}: {problem}"]
    result = validate(f, table("training", "attendance"), "attendance.jsonl")
    assert result.passed.height == 1
    [bad] = result.quarantined.iter_rows(named=True)
    assert "row.json_type" in bad["rules"].split(";")


def test_a_delivery_folder_dated_in_the_future_is_held_until_its_day(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    put(land, "events/2099-01-01/activities.csv", activities("A1,运动会,文体,2021-05-01,举办,10"))
    put(land, f"events/{DAY}/activities.csv", activities("A1,运动会,文体,2021-05-01,举办,10"))
    from datetime import date

    held = common.hold_future(common.discover(land, "events"), date(2026, 11, 27))
    assert [(d.rel_name, d.rule if d.problem else None) for d in held] == [
        (f"events/{DAY}/activities.csv", None),
        ("events/2099-01-01/activities.csv", common.FUTURE_DELIVERY),
    ]
    assert held[1].unread  # its identity is its name: once 2099 comes, the file itself loads
    later = common.hold_future(common.discover(land, "events"), date(2099, 1, 1))
    assert all(d.problem is None for d in later)
