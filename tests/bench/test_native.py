"""The benchmark's native baseline (flows/bench/native.py) reads and flags rows as the pipeline does.

A small hand-written landing zone of every delivery kind (GB18030 and UTF-8-with-BOM CSV, JSON
Lines, an xlsx workbook with Excel serial dates and a 万元 column, the members SQLite database),
with rows that break the contract's rules: the native readers must give the same canonical rows
as the pipeline's readers, and the native rule flags must drop exactly the rows Great
Expectations quarantines, or the benchmark's figures would differ.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from flows import schema
from flows.bench import native
from flows.checksums import resident_id_check_char, uscc_check_char
from flows.quality.runner import validate
from flows.quality.screen import read_delivery
from flows.sources import common, members

D1, D2 = "2021-04-01", "2021-07-01"


def uscc(n: int) -> str:
    body = f"91120116{n:09d}"
    return body + uscc_check_char(body)


def rid(n: int, born: str = "19800101") -> str:
    body = f"120116{born}{n:03d}"
    return body + resident_id_check_char(body)


def bad_check(code: str) -> str:
    return code[:17] + ("0" if code[17] != "0" else "1")


def csv_file(landing: Path, source: str, day: str, name: str, rows: list[list[str]]) -> None:
    path = landing / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(",".join(f'"{v}"' if "," in v or "\n" in v else v for v in r) + "\r\n" for r in rows)
    path.write_bytes(text.encode(schema.ENCODINGS[source]))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("native") / "landing"
    head = [
        "统一社会信用代码",
        "企业名称",
        "所属片区",
        "行业门类",
        "职工人数",
        "企业标签",
        "注册日期",
        "更新时间",
    ]
    csv_file(
        root,
        "registry",
        D1,
        "enterprises.csv",
        [
            head,
            [uscc(1), "甲公司", "海港", "C", "1,200", "百强", "2019/3/5", "2021-03-01 08:00:00"],
            [uscc(2).lower(), "乙公司\u3000", "空港", "D", "１２", "", "2019年3月5日", "2021-03-01 08:00"],
            [bad_check(uscc(3)), "校验码错误", "海港", "C", "10", "", "20190305", "2021-03-01 08:00:00"],
            [uscc(4), "片区错误", "外港", "C", "10", "", "2019-03-05", "2021-03-01 08:00:00"],
            [uscc(5), "日期晚于交付", "临港", "C", "10", "", "2021-05-01", "2021-03-01 08:00:00"],
            [uscc(6), "标签错误", "临港", "C", "10", "百强,其他", "2019-02-30", "2021-03-01 08:00:00"],
            [uscc(7), "人数为负", "临港", "C", "-3", "科技领军、百强", "1948-12-31", "2021-03-01 08:00:00"],
            [uscc(8), "重复", "海港", "C", "1", "", "2019-03-05", "2021-03-01 08:00:00"],
            [uscc(8), "重复", "海港", "C", "2", "", "2019-03-05", "2021-03-01 08:00:00"],
            [uscc(9), "控制\x01字符", "海港", "C", "2", "", "2019-03-05", "2021-03-01 08:00:00"],
        ]
        + [
            [uscc(100 + i), f"公司{i}", "海港", "A", str(i), "", "2020-01-01", "2021-01-01 00:00:00"]
            for i in range(40)
        ],
    )
    csv_file(
        root,
        "registry",
        D2,
        "unions.csv",
        [
            [
                "工会编码",
                "工会名称",
                "建会形式",
                "统一社会信用代码",
                "成立日期",
                "党组织",
                "状态",
                "撤销日期",
                "更新时间",
            ],
            [
                "GH0000000001",
                "甲工会",
                "独立建会",
                uscc(1),
                "2019-01-01",
                "是",
                "正常",
                "",
                "2021-06-01 00:00:00",
            ],
            [
                "GH0000000002",
                "联合工会",
                "联合建会",
                "",
                "2019-01-01",
                "否",
                "撤销",
                "2021-05-01",
                "2021-06-01 00:00:00",
            ],
            [
                "GH000000003",
                "编码错误",
                "联合建会",
                "",
                "2019-01-01",
                "否",
                "正常",
                "",
                "2021-06-01 00:00:00",
            ],
            ["GH0000000004", "缺企业", "独立建会", "", "2019-01-01", "否", "正常", "", "2021-06-01 00:00:00"],
            [
                "GH0000000005",
                "缺撤销日",
                "联合建会",
                "",
                "2019-01-01",
                "否",
                "撤销",
                "",
                "2021-06-01 00:00:00",
            ],
            ["ＧＨ0000000006", "全角", "联合建会", "", "2019-01-01", "真", "正常", "", "2021-06-01 00:00:00"],
        ],
    )
    csv_file(
        root,
        "rights",
        D1,
        "cases.csv",
        [
            [
                "案件编号",
                "类型",
                "受理日期",
                "统一社会信用代码",
                "职工身份证号",
                "调解结果",
                "结案日期",
                "维权金额(万元)",
            ],
            ["WQ1", "劳动争议", "2021-03-01", uscc(1), rid(1), "成功", "2021-03-09", "1.23456"],
            ["WQ2", "劳动争议", "2021-03-01", "", rid(2).lower(), "成功", "", ""],
            ["WQ3", "咨询", "2021-03-01", "", "", "", "", "0"],
            ["WQ4", "咨询", "2021-03-01", "", bad_check(rid(4)), "", "", ""],
            ["WQ5", "劳动争议", "2021-03-01", "", rid(5, "19800230"), "不成功", "", "5"],
            ["WQ6", "咨询", "2021-03-01", "", "", "成功", "", "1,000.5"],
            ["WQ7", "劳动争议", "2021-03-01", "", "", "调解中", "", "多行\n备注"],
        ],
    )
    path = root / "training" / D1 / "competitions.jsonl"
    path.parent.mkdir(parents=True)
    rows = [
        {
            "competition_id": "C1",
            "name": "技能赛",
            "level": "zone",
            "role": "host",
            "start_date": "2021-03-01",
            "participants": 120,
        },
        {
            "competition_id": "C2",
            "name": "人数为负",
            "level": "city",
            "role": "host",
            "start_date": "2021/3/2",
            "participants": -5,
        },
        {
            "competition_id": "C3",
            "name": "级别错误",
            "level": "nation",
            "role": "co_host",
            "start_date": "2021-03-03",
            "participants": 7,
        },
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    wb = Workbook()
    ws = wb.active
    ws.title = "慰问"
    ws.append(["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(万元)"])
    ws.append([date(2021, 1, 5), "两节慰问", "农民工", "张三", rid(10), "GH0000000001", "现金", 0.05])
    ws.append([44203, "两节慰问", "农民工", "李四", None, None, "物资", 0.0123])
    ws.append(["2021/1/7", "两节慰问", "外星人", "王五", None, None, "现金", 0.02])
    ws.append(["2021-01-08", "特殊慰问", "困难职工", "赵六", bad_check(rid(11)), None, "现金", "0.01"])
    ws = wb.create_sheet("体检")
    ws.append(["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"])
    ws.append([date(2021, 1, 9), "钱七", rid(12), "农民工", "泰达医院", 150.0])
    ws.append([date(2021, 1, 9), "孙八", None, "农民工", "泰达医院", 150.0])
    ws = wb.create_sheet("救助")
    ws.append(["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"])
    ws.append([date(2021, 1, 12), "李琴", rid(13), "大病救助", 1000.0, "JZ20210061"])
    ws.append([date(2022, 1, 12), "晚于交付", rid(14), "大病救助", 1000.0, "JZ20210062"])
    (root / "welfare" / D1).mkdir(parents=True)
    wb.save(root / "welfare" / D1 / "HG01_202101.xlsx")
    conn = sqlite3.connect(root / common.MEMBERS_FILE)
    conn.execute(
        "CREATE TABLE member (member_id INTEGER PRIMARY KEY, id_card TEXT, name TEXT, phone TEXT, union_code TEXT,"
        " employment_form TEXT, is_migrant INTEGER, is_veteran INTEGER, joined_on TEXT, updated_at TEXT,"
        " deleted_at TEXT)"
    )
    conn.executemany(
        "INSERT INTO member VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                1,
                rid(20),
                "甲",
                "13800000000",
                "GH0000000001",
                "courier",
                1,
                0,
                "2020-01-01",
                "2021-01-01 10:00:00",
                None,
            ),
            (
                2,
                bad_check(rid(21)),
                "乙",
                "",
                "GH0000000001",
                "standard",
                0,
                1,
                "2020-01-01",
                "2021-01-01 10:00:00.5",
                None,
            ),
            (
                3,
                rid(22),
                "丙",
                "1380000",
                "GH0000000001",
                "standard",
                0,
                0,
                "2020-01-01",
                "2021-01-02 10:00:00",
                None,
            ),
            (
                4,
                rid(23),
                "丁",
                None,
                "GH0000000001",
                "pilot",
                0,
                0,
                "2020-01-01",
                "2099-01-01 10:00:00",
                None,
            ),
            (
                5,
                rid(24),
                "戊",
                None,
                "GH0000000001",
                "other",
                2,
                0,
                "2020-01-01",
                "2021-01-03 10:00:00",
                "2021-02-01 00:00:00",
            ),
        ],
    )
    conn.execute(
        "CREATE TABLE member_card (card_event_id INTEGER PRIMARY KEY, member_id INTEGER, card_no TEXT,"
        " action TEXT, action_on TEXT, updated_at TEXT)"
    )
    conn.executemany(
        "INSERT INTO member_card VALUES (?,?,?,?,?,?)",
        [
            (1, 1, "K1", "new", "2021-01-01", "2021-01-01 10:00:00"),
            (2, 1, "K2", "lost", "2021-01-01", "2021-01-01 10:00:00"),
        ],
    )
    conn.commit()
    conn.close()
    return root


def pipeline_frames(landing: Path) -> dict[str, pl.DataFrame]:
    """Raw table -> the pipeline readers' canonical frame of all its files."""
    parts: dict[str, list[pl.DataFrame]] = {}
    for source in schema.FILE_SOURCES:
        for delivery in common.discover(landing, source):
            for name, frame in read_delivery(delivery).items():
                parts.setdefault(schema.table(source, name).raw_table, []).append(frame)
    engine = sa.create_engine(f"sqlite:///{landing / common.MEMBERS_FILE}")
    with engine.connect() as conn:
        pulled = members.read(conn, date.today(), {t.name: None for t in schema.tables_of("members")})
    engine.dispose()
    for name, frame in pulled.items():
        parts[schema.table("members", name).raw_table] = [frame]
    return {k: pl.concat(v) for k, v in parts.items()}


def columns(t: schema.Table) -> list[str]:
    return [c.name for c in t.all_columns] + ["_file_name", "_row_number", "_delivery_date"]


def test_native_readers_and_flags_match_the_pipeline(landing: Path) -> None:
    ours, register = native.read_tables(landing)
    theirs = pipeline_frames(landing)
    assert set(ours) == set(theirs) and len(ours) == 9
    assert [(r["station_code"], r["ledger_month"]) for r in register] == [("HG01", "202101")]
    dropped_total = 0
    for raw_table, frame in theirs.items():
        t = next(t for t in schema.TABLES if t.raw_table == raw_table)
        cols = columns(t)
        mine = ours[raw_table].select(cols).sort("_file_name", "_row_number")
        assert mine.to_dicts() == frame.select(cols).sort("_file_name", "_row_number").to_dicts(), raw_table
        kept, dropped = native.flag_rows(ours[raw_table], t)
        passed = pl.concat(
            [validate(f, t, f["_file_name"][0]).passed for f in frame.partition_by("_file_name")]
        )
        keys = ["_file_name", "_row_number"]
        assert kept.select(keys).sort(keys).to_dicts() == passed.select(keys).sort(keys).to_dicts(), raw_table
        dropped_total += dropped
    assert dropped_total >= 20  # every planted bad row is dropped: the test can fail


@pytest.mark.parametrize("source", [*schema.FILE_SOURCES, "members"])
def test_chunks_hold_whole_files_and_add_up_to_the_source(landing: Path, source: str) -> None:
    """The script reads a chunk of about ``rows`` rows at a time (whole files; members in pages):
    the chunks together are the source read at once, row for row, and no file is split."""
    everything: dict[str, list[pl.DataFrame]] = {}
    register: list[dict] = []
    for raw, rows in native.read_raw(landing, source):  # (members: a chunk per table)
        register += rows
        for raw_table, parts in raw.items():
            assert raw_table not in everything
            everything[raw_table] = parts
    chunks = list(native.read_raw(landing, source, rows=2))
    assert sum(len(r) for _, r in chunks) == len(register)
    assert {t for c, _ in chunks for t in c} == set(everything)
    for raw_table, parts in everything.items():
        theirs = pl.concat(parts, how="diagonal_relaxed")
        ours = pl.concat([p for c, _ in chunks for p in c.get(raw_table, [])], how="diagonal_relaxed")
        assert ours.select(theirs.columns).equals(theirs), raw_table
        files = [set(p["_file_name"]) for c, _ in chunks for p in c.get(raw_table, [])]
        if source != "members":
            assert all(len(f) == 1 for f in files)  # (each part is one file's)
    if source == "members":  # pages of 2 rows, numbered on
        assert len(chunks) > 2 and all(sum(p.height for p in c[t]) <= 2 for c, _ in chunks for t in c)
