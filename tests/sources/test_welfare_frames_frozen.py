"""The canonical frames of the file readers, frozen byte for byte before the readers were made
columnar (issue 22): welfare workbooks of every shape the reader meets, CSV and JSON Lines files
with duplicate headers, ragged rows and JSON type errors, and a few files of the 2021 demo.

The frozen frames are ``tests/sources/frozen/frames.json``, written by ``write_frozen()``
against the reader as it stood (``.venv/bin/python -m tests.sources.test_welfare_frames_frozen``
writes it again: only do that for a change of behaviour you mean, and say so in the commit).
Each case keeps its schema and every row as ``write_ndjson`` gives it (``_original``,
``_row_number``, ``_control_chars``, ``_type_errors`` included); the demo's larger files keep
the SHA-256 of their rows and the first rows to read. ``_file_sha256`` is checked against the
file's bytes and then frozen as ``<sha256>`` (openpyxl stamps the time into a workbook).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.sources import common, events, finance, training, welfare
from tests.support import workbook_bytes

FROZEN = Path(__file__).parent / "frozen" / "frames.json"
DAY = "2021-04-02"
CONDOLENCE = ["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(万元)"]
HEALTH = ["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"]
RELIEF = ["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"]
READERS: dict[str, Callable[[common.Delivery], dict[str, pl.DataFrame]]] = {
    "welfare": welfare.read,
    "training": training.read,
    "events": events.read,
    "finance": finance.read,
}
DEMO_FILES = (
    "welfare/2021-04-01/HG01_202012.xlsx",
    "welfare/2021-04-01/KG01_202103.xlsx",
    "welfare/2021-07-01/HG01_202106.xlsx",
    "events/2021-04-01/activities.csv",
    "finance/2021-04-01/vouchers.csv",
    "training/2021-04-01/attendance.jsonl",
)


# ------------------------------------------------------------------ the corpus
def patched_workbook(sheets: dict[str, list[list[Any]]], patches: dict[str, str] | None = None) -> bytes:
    """An openpyxl workbook whose XML parts get ``patches`` (regex -> replacement): raw OOXML that
    openpyxl will not write (control-character escapes ``_x0001_``, cached formula values)."""
    data = workbook_bytes(sheets)
    if not patches:
        return data
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info.filename)
            if info.filename.endswith(".xml"):
                text = part.decode()
                for pattern, repl in patches.items():
                    text = re.sub(pattern, repl, text)
                part = text.encode()
            dst.writestr(info, part)
    return out.getvalue()


def _cached(formula: str, value: str, kind: str = "") -> tuple[str, str]:
    """A patch giving formula ``=formula`` the cached ``value`` (``kind`` 'str', 'b', 'e' or number)."""
    t = f' t="{kind}"' if kind else ""
    return (
        rf'<c r="([A-Z]+\d+)"><f>{re.escape(formula)}</f><v></v>',
        rf'<c r="\1"{t}><f>{formula}</f><v>{value}</v>',
    )


def typed_cells() -> bytes:
    long_text = "长" * 3_000 + "尾"
    return workbook_bytes(
        {
            "慰问": [
                CONDOLENCE,
                [date(2021, 3, 5), "两节慰问", "农民工", "张三", "11010119900307123x", "gh1", "现金", 0.05],
                [
                    datetime(2021, 3, 5, 0, 0),
                    "特殊慰问",
                    "退役军人",
                    "李四",
                    110101199003071234,
                    None,
                    "物资",
                    1,
                ],
                [datetime(2021, 3, 5, 13, 45, 7), 1, 2.5, 3.0, -4, 5.25, True, "1,000.5"],
                [datetime(2021, 3, 5, 13, 45, 7, 123456), False, 0.1 + 0.2, 1e20, 1e-7, -0.0, 7, -2.5],
                [44260, "ＡＢＣ１２３", "　全角　", "   ", "\u3000", "\t", " x ", "１２３４"],
                [44260.0, 123456789012345678, 2**53 + 1, 1.5e-10, 9.99e15, 12345678901234567890, "", 0],
                [44260.75, "2021年3月7日", "2021/3/7", "20210307", "2021-02-30", "#N/A", None, 1e16],
                [-1, 0, 2958465, 2958466, 1.0, 3.14159265358979, time(13, 45, 7), 123.456789],
                [None, None, None, None, None, None, None, 5],
                ["#DIV/0!", "#REF!", None, long_text, "a\nb", "tab\there", "x" * 300, "1.234567890123"],
            ],
            "体检": [
                HEALTH,
                [date(2021, 3, 8), "张三", "11010119900307123X", "快递员", "第一医院", 300.5],
                [datetime(1900, 1, 1), "王五", 11010119900307123, "快递员", 12, 300],
                [date(9999, 12, 31), "赵六", None, None, None, "300元"],
            ],
            "救助": [
                RELIEF,
                [date(2021, 3, 9), "李四", "110101199003071234", "大病", 5000, 20210001],
                [date(2021, 3, 9), "李四", "110101199003071234", "大病", 5000.0, 20210001.0],
                [date(2021, 3, 9), "李四", "110101199003071234", "大病", 4999.995, 2.0210001e7],
            ],
        }
    )


def layout() -> bytes:
    return workbook_bytes(
        {
            "慰问": [
                [],
                [None, None, "   "],
                ["\u3000"],
                CONDOLENCE + ["备注", "备注", None, 2021, "备注#"],
                [
                    date(2021, 3, 5),
                    "两节慰问",
                    "农民工",
                    "张三",
                    "id1",
                    "gh1",
                    "现金",
                    0.05,
                    "a",
                    "b",
                    "c",
                    "d",
                    "e",
                ],
                [],
                [None, None, "  "],
                [date(2021, 3, 6), "两节慰问", "农民工", "李四", "id2", "gh2", "现金", 1.5, None, None, None],
                [
                    date(2021, 3, 7),
                    "两节慰问",
                    "农民工",
                    "王五",
                    "id3",
                    "gh3",
                    "现金",
                    2,
                    1,
                    2,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                ],
                [None, None, None, None, None, None, None, None, None, None, "only-extra"],
                [],
                [],
            ],
            "体检": [
                ["日期", "姓名", None, "身份证号", "对象类别", "体检机构", None, "费用(元)"],
                [date(2021, 3, 8), "张三", "x", "id1", "快递员", "第一医院", None, 300],
                [date(2021, 3, 8), "张三", None, "id1", "快递员", "第一医院", 7, 300, "wide", None, "wider"],
                [date(2021, 3, 8), "张三"],
            ],
            "救助": [RELIEF, [], [], [date(2021, 3, 9), "李四", "id", "大病", 5000, "SP1"]],
            "其他": [["not", "a", "contract", "sheet"]],
        }
    )


def col_named_headers() -> bytes:
    """Headers that read like the names ``_original`` gives to columns without a header
    (``_col<N>``): whether such a name is taken depends on the row's empty cells."""
    return workbook_bytes(
        {
            "慰问": [
                CONDOLENCE + [None, "_col9", "_col11", None],
                [date(2021, 3, 5), "两节慰问", "农民工", "张三", "id1", "gh1", "现金", 1, "x", "y", "z", "w"],
                [
                    date(2021, 3, 5),
                    "两节慰问",
                    "农民工",
                    "张三",
                    "id1",
                    "gh1",
                    "现金",
                    1,
                    None,
                    "y",
                    "z",
                    None,
                ],
                [
                    date(2021, 3, 5),
                    "两节慰问",
                    "农民工",
                    "张三",
                    "id1",
                    "gh1",
                    "现金",
                    1,
                    "x",
                    None,
                    None,
                    "w",
                ],
            ],
            "体检": [HEALTH],
            "救助": [RELIEF + ["_col7#"], [date(2021, 3, 9), "李四", "id", "大病", 5000, "SP1", "v", "u"]],
        }
    )


def trailing_used_range() -> bytes:
    """Empty rows after the records that still belong to the sheet's used range (calamine pads
    to it): openpyxl writes ``""`` cells, which are empty cells to calamine."""
    return workbook_bytes(
        {
            "体检": [
                HEALTH,
                [date(2021, 3, 8), "张三", "id1", "快递员", "第一医院", 300],
                ["", "", ""],
                ["", "", ""],
            ],
            "慰问": [["", ""], CONDOLENCE, [None] * 8, ["", "", "", "", "", "", "", "", "", ""]],
            "救助": [RELIEF, *([[None, None, None, None, None, ""]] * 5)],
        }
    )


def formulas_and_controls() -> bytes:
    rows = [
        CONDOLENCE,
        ["=40000+1", "=UPPER(B9)", "=1=1", "=1/0", "=CTRL1", "=NOVALUE()", "现金", "=2*0.5"],
        [date(2021, 3, 5), "CTRLNUL", "CTRLSOH", "name\rcr", "CTRLVT", "line\nbreak", "现金", 1],
        ["=DATE(2021,3,5)+0.5", "a", "b", "c", "d", "e", "f", "=1+2"],
    ]
    patches = dict(
        [
            _cached("40000+1", "40001"),
            _cached("UPPER(B9)", "ABC", "str"),
            _cached("1=1", "1", "b"),
            _cached("1/0", "#DIV/0!", "e"),
            _cached("CTRL1", "a_x0001_b", "str"),
            _cached("2*0.5", "1"),
            _cached("DATE(2021,3,5)+0.5", "44260.5"),
            _cached("1+2", "3"),
            ("CTRLNUL", "nul_x0000_here"),
            ("CTRLSOH", "soh_x0001_here"),
            ("CTRLVT", "id_x000B_"),
        ]
    )
    return patched_workbook(
        {
            "慰问": rows,
            "体检": [HEALTH, ["=44000", "张三", "id", "快递员", "医院", "=10/4"]],
            "救助": [RELIEF],
        },
        patches | dict([_cached("44000", "44000"), _cached("10/4", "2.5")]),
    )


def text_files() -> dict[str, bytes]:
    """CSV and JSON Lines cases: duplicate headers (``#2``), ragged rows (``_line``), blank and
    invalid lines, JSON type errors and extra keys, control characters."""
    activities = (
        "活动编号,名称,类别,日期,参与方式,参与人次,备注,备注,备注\n"
        "A1,春游,文体,2021-03-05,线下,12,x,y,z\n"
        "\n"
        ",,,,,,,,\n"
        "A2,ragged,文体,2021-03-05\n"
        'A3,"two\nlines",文体,2021/3/5,线上,"1,200",,,\n'
        "A4,ctrl\x01,文体,2021年3月5日,线上,12.0,,,\n"
        "A5,too,many,fields,2021-03-05,线下,1,2,3,4\n"
        "ＡＢ６,全角，,文体, 2021-3-5 ,线下, 7 ,,,\n"
    )
    vouchers = (
        "凭证号,行号,记账日期,科目编码,科目名称,摘要,借方金额,贷方金额,项目编码,收款方编码,审批单号,附件,附件\n"
        'V1,1,2021-03-05,5001,慰问,摘要,"1,234.5",0,P1,pay1,SP1,dup,\n'
        "V1,2,20210305,5001,慰问,=1+2,0.005,-0.005,P1,pay1,SP1,,\n"
        "V2,x\n"
    )
    attendance = "\n".join(
        [
            json.dumps(
                {
                    "session_id": "S1",
                    "id_card": "id",
                    "name": "张三",
                    "union_code": "gh1",
                    "registered": True,
                    "attended": False,
                    "replay_views": 3,
                },
                ensure_ascii=False,
            ),
            json.dumps(
                {
                    "session_id": 1,
                    "id_card": None,
                    "name": ["a"],
                    "union_code": {"k": "v"},
                    "registered": "是",
                    "attended": 1,
                    "replay_views": "3",
                    "extra": 1.5,
                },
                ensure_ascii=False,
            ),
            json.dumps(
                {
                    "session_id": "S2",
                    "id_card": "id",
                    "name": "x\u0001y",
                    "union_code": "gh1",
                    "registered": False,
                    "attended": True,
                    "replay_views": 1e3,
                }
            ),
            "",
            "{not json",
            "[1, 2]",
            (
                '{"session_id": "S3", "id_card": "id", "name": "A", "name": "B", "union_code": "gh1",'
                ' "registered": true, "attended": true, "replay_views": 12.5, "备注": "中文\\n"}'
            ),
            (
                '{"session_id": "S4", "id_card": "id", "name": "ＡＢ", "union_code": "gh1", "registered": null,'
                ' "attended": true, "replay_views": 12345678901234567890}'
            ),
            "",
        ]
    )
    return {
        f"events/{DAY}/activities.csv": activities.encode("utf-8"),
        f"finance/{DAY}/vouchers.csv": vouchers.encode("gb18030"),
        f"training/{DAY}/attendance.jsonl": attendance.encode("utf-8"),
    }


def hand_made() -> dict[str, bytes]:
    """rel_name -> bytes of every hand-made case."""
    files = {
        f"welfare/{DAY}/TC01_202103.xlsx": typed_cells(),
        f"welfare/{DAY}/LY01_202103.xlsx": layout(),
        f"welfare/{DAY}/TR01_202103.xlsx": trailing_used_range(),
        f"welfare/{DAY}/CN01_202103.xlsx": col_named_headers(),
        f"welfare/{DAY}/FC01_202103.xlsx": formulas_and_controls(),
    }
    return files | text_files()


# ----------------------------------------------------------------- freezing
def frozen_case(delivery: common.Delivery, data: bytes, full: bool) -> dict[str, Any]:
    """Table -> schema and rows (``full``) or their SHA-256 and first rows, of one file's frames."""
    out: dict[str, Any] = {}
    for table, frame in READERS[delivery.source](delivery).items():
        assert frame.get_column("_file_sha256").unique().to_list() in ([], [hashlib.sha256(data).hexdigest()])
        frame = frame.with_columns(pl.lit("<sha256>").alias("_file_sha256"))
        lines = frame.write_ndjson().splitlines()
        entry: dict[str, Any] = {
            "schema": [[n, str(t)] for n, t in frame.schema.items()],
            "height": frame.height,
        }
        if full:
            entry["rows"] = lines
        else:
            entry["sha256"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
            entry["head"] = lines[:3]
        out[table] = entry
    return out


def deliveries(landing: Path, files: dict[str, bytes]) -> dict[str, common.Delivery]:
    for rel, data in files.items():
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    found = {}
    for source in READERS:
        for d in common.discover(landing, source):
            if d.rel_name in files:
                assert d.problem is None, d.problem
                found[d.rel_name] = d
    assert sorted(found) == sorted(files)
    return found


def demo_files(root: Path) -> dict[str, bytes]:
    # deferred: the demo generator is only needed by the demo cases
    from flows.demo import synth

    synth.generate(root / "demo", 2021, 2021)
    return {rel: (root / "demo" / rel).read_bytes() for rel in DEMO_FILES}


def freeze(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, files in (("hand", hand_made()), ("demo", demo_files(root))):
        landing = root / kind
        for rel, d in deliveries(landing, files).items():
            out[rel] = frozen_case(d, files[rel], full=kind == "hand")
    return out


def write_frozen() -> None:
    """(Re)write tests/sources/frozen/frames.json from the readers as they are now."""
    with tempfile.TemporaryDirectory() as tmp:
        frozen = freeze(Path(tmp))
    FROZEN.parent.mkdir(parents=True, exist_ok=True)
    FROZEN.write_text(json.dumps(frozen, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


# -------------------------------------------------------------------- tests
def _load() -> dict[str, Any]:
    return json.loads(FROZEN.read_text(encoding="utf-8"))


def _compare(rel: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(want), rel
    for table, w in want.items():
        g = got[table]
        assert g["schema"] == w["schema"], (rel, table)
        assert g["height"] == w["height"], (rel, table)
        if "rows" in w:
            for i, (a, b) in enumerate(zip(g["rows"], w["rows"], strict=True)):
                assert a == b, f"{rel} {table} row {i}"
        else:
            assert g["head"] == w["head"], (rel, table)
            assert g["sha256"] == w["sha256"], (rel, table)


@pytest.mark.unit
@pytest.mark.parametrize("rel", sorted(hand_made()))
def test_hand_made_frames_are_as_frozen(rel: str, tmp_path: Path) -> None:
    files = hand_made()
    [d] = deliveries(tmp_path, {rel: files[rel]}).values()
    _compare(rel, frozen_case(d, files[rel], full=True), _load()[rel])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("frozen-demo")
    files = demo_files(root)
    yield root / "landing", files
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("rel", DEMO_FILES)
def test_demo_frames_are_as_frozen(rel: str, demo: tuple[Path, dict[str, bytes]]) -> None:
    landing, files = demo
    d = deliveries(landing, files)[rel]
    _compare(rel, frozen_case(d, files[rel], full=False), _load()[rel])


@pytest.mark.unit
def test_the_comparison_sees_a_one_character_change(tmp_path: Path) -> None:
    rel = f"welfare/{DAY}/LY01_202103.xlsx"
    files = hand_made()
    [d] = deliveries(tmp_path, {rel: files[rel]}).values()
    got = frozen_case(d, files[rel], full=True)
    want = _load()[rel]
    row = want["condolence"]["rows"][0]
    changed = json.loads(json.dumps(want))
    changed["condolence"]["rows"][0] = row.replace("张三", "张四", 1)
    assert changed["condolence"]["rows"][0] != row
    with pytest.raises(AssertionError):
        _compare(rel, got, changed)
    _compare(rel, got, want)


@pytest.mark.unit
def test_json_objects_are_what_json_dumps_gives() -> None:
    """``_original`` built from columns: the same text as ``json.dumps`` of each row's dict, for
    texts with every character JSON escapes (and some it does not), keys left out where empty."""
    texts = [
        "plain",
        'q"uote',
        "back\\slash",
        "\x00\x01\x1f\x7f",
        "\u2028\u2029",
        "中文😀",
        "",
        "a\nb\tc\r",
        None,
    ]
    for with_escapes in (True, False):
        column = texts if with_escapes else [t for t in texts if t is None or t.isalnum() or t == ""]
        n = len(column)
        fields = [("k", column, False), ("_col2", column[::-1], True), ('"键"\\', ["x"] * n, False)]
        want = [
            json.dumps(
                {k: col[i] for k, col, optional in fields if not (optional and col[i] is None)},
                ensure_ascii=False,
            )
            for i in range(n)
        ]
        assert common.json_objects(fields, n) == want


if __name__ == "__main__":  # pragma: no cover - the generator of the frozen frames
    write_frozen()
    sys.exit(0)
