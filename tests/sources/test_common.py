"""Shared normalisers, discover(), decode(), header matching and to_typed()."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows import schema
from flows.errors import BatchError
from flows.sources import common

pytestmark = pytest.mark.unit


def canon(
    kind: str, values: list[str | None], *, factor: int = 1, bools: dict[str, str] | None = None
) -> list[str | None]:
    col = schema.Column("v", "v", kind)
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    kwargs = {} if bools is None else {"bools": bools}
    return frame.select(common.canonical_expr(col, factor=factor, **kwargs))["v"].to_list()


# ------------------------------------------------------------------------ text
def test_text_nfkc_strip_and_blank_to_null() -> None:
    assert canon(
        "text",
        [
            "１２３",
            "ＧＨ",
            "（万元）",
            "\u00a0张三\u00a0",
            "\u3000李四\u3000",
            "\u200b王五\ufeff",
            " \t",
            "",
            None,
            "\u00a0\u3000\u200b",
            "a\u00a0b",
        ],
    ) == ["123", "GH", "(万元)", "张三", "李四", "王五", None, None, None, None, "a b"]


def test_identifier_kinds_are_upper_cased() -> None:
    assert canon("uscc", ["91310000ma1k4abc1x", "９１３１ａｂ"]) == ["91310000MA1K4ABC1X", "9131AB"]
    assert canon("resident_id", [" 11010119900307123x "]) == ["11010119900307123X"]
    assert canon("union_code", ["ｇｈ0000000001"]) == ["GH0000000001"]
    assert canon("payee_code", ["gh0000000001"]) == ["GH0000000001"]
    assert canon("code", ["online"]) == ["online"]  # codes keep their case


def test_header_key() -> None:
    assert common.header_key("\ufeff金额（万元）") == "金额(万元)"
    assert common.header_key(" 金额 (元)\u3000") == "金额(元)"
    assert common.normalise_str("\u00a0ＧＨ１\u200b") == "GH1"


# ----------------------------------------------------------------------- dates
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-03-05", "2021-03-05"),
        ("2021-3-5", "2021-03-05"),
        ("2021/3/5", "2021-03-05"),
        ("2021/03/05", "2021-03-05"),
        ("2021年3月5日", "2021-03-05"),
        ("2021年03月05日", "2021-03-05"),
        ("20210305", "2021-03-05"),
        ("2021-03-05 00:00:00", "2021-03-05"),
        ("2021/3/5 00:00:00", "2021-03-05"),
        ("２０２１－０３－０５", "2021-03-05"),
        ("\u00a02021-03-05\u3000", "2021-03-05"),
        ("2024-02-29", "2024-02-29"),
        # not real calendar dates / not accepted forms: stay as (normalised) text
        ("2021-02-30", "2021-02-30"),
        ("2021-02-29", "2021-02-29"),
        ("20211301", "20211301"),
        ("2021年2月30日", "2021年2月30日"),
        ("abc", "abc"),
        ("2021-03/05", "2021-03/05"),
        ("2021-03-05 10:00:00", "2021-03-05 10:00:00"),
        ("0000-01-01", "0000-01-01"),
        ("44260", "44260"),  # serials only count in xlsx numeric cells
        ("", None),
    ],
)
def test_dates(raw: str, expected: str | None) -> None:
    assert canon("date", [raw]) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-03-05 08:09:10", "2021-03-05 08:09:10"),
        ("2021-03-05T08:09:10", "2021-03-05 08:09:10"),
        ("2021/3/5 8:09:10", "2021-03-05 08:09:10"),
        ("2021/3/5 08:09", "2021-03-05 08:09:00"),
        ("2021-03-05 08:09:10.123456", "2021-03-05 08:09:10"),
        ("２０２１-03-05 08:09:10", "2021-03-05 08:09:10"),
        ("2021-03-05 24:00:00", "2021-03-05 24:00:00"),
        ("2021-03-05 23:59:60", "2021-03-05 23:59:60"),
        ("2021-02-30 08:00:00", "2021-02-30 08:00:00"),
        ("2021-03-05", "2021-03-05"),
        ("yesterday", "yesterday"),
    ],
)
def test_timestamps(raw: str, expected: str) -> None:
    assert canon("timestamp", [raw]) == [expected]


# --------------------------------------------------------------------- numbers
def test_ints() -> None:
    assert canon(
        "int", ["12", "-3", "1,234", "1,234,567", "12.0", "１２", " 7 ", "12.5", "abc", "1,23", None]
    ) == [
        "12",
        "-3",
        "1234",
        "1234567",
        "12",
        "12",
        "7",
        "12.5",
        "abc",
        "1,23",
        None,
    ]


def test_amounts_in_yuan() -> None:
    assert canon(
        "amount",
        [
            "1234.5",
            "1,234.50",
            "120000",
            "-3.2",
            "１，２３４．５",
            "0",
            "1.005",
            "-1.005",
            "1.004",
            "12,34",
            "abc",
            "1e5",
            "¥12",
            None,
        ],
    ) == [
        "1234.50",
        "1234.50",
        "120000.00",
        "-3.20",
        "1234.50",
        "0.00",
        "1.01",
        "-1.01",
        "1.00",
        "12,34",
        "abc",
        "1e5",
        "¥12",
        None,
    ]


def test_amounts_in_wan_yuan_are_exact() -> None:
    assert canon(
        "amount", ["1.2345", "12", "0.0000125", "1,000.5", "0.00001", "3.33333333", "-0.5", "x"], factor=10000
    ) == [
        "12345.00",
        "120000.00",
        "0.13",
        "10005000.00",
        "0.10",
        "33333.33",
        "-5000.00",
        "x",
    ]


def test_amount_with_many_decimals_rounds_once() -> None:
    # truncating the fraction beyond 10 places must not round twice
    assert canon("amount", ["0.004999999999999", "0.00500000000001"]) == ["0.00", "0.01"]


def test_bools() -> None:
    assert canon("bool", ["是", "否", " 是 ", "true", "Y", None]) == [
        "true",
        "false",
        "true",
        "true",
        "Y",
        None,
    ]
    assert canon("bool", ["1", "0", "是"], bools=common.DB_BOOLS) == ["true", "false", "是"]
    assert canon("bool", ["是", "true"], bools=common.JSON_BOOLS) == ["是", "true"]


def test_phone_is_normalised_text_only() -> None:
    assert canon("phone", ["１３８ 0013 8000", " 13800138000 "]) == ["138 0013 8000", "13800138000"]


# ----------------------------------------------------------------- xlsx cells
def test_cell_text() -> None:
    assert common.cell_text(datetime(2021, 3, 5), "date") == "2021-03-05"
    assert common.cell_text(datetime(2021, 3, 5, 10, 30), "date") == "2021-03-05"
    assert common.cell_text(date(2021, 3, 5), "date") == "2021-03-05"
    assert common.cell_text(44260, "date") == "2021-03-05"
    assert common.cell_text(44260.0, "date") == "2021-03-05"
    assert common.cell_text(1, "date") == "1899-12-31"
    assert common.cell_text(2958465, "date") == "9999-12-31"
    assert common.cell_text(2958466, "date") == "2958466"
    assert common.cell_text(0, "date") == "0"
    assert common.cell_text(44260.5, "date") == "44260.5"
    assert common.cell_text(20210305, "date") == "20210305"
    assert common.cell_text(datetime(2021, 3, 5, 8, 9, 10), "timestamp") == "2021-03-05 08:09:10"
    assert common.cell_text(110101199003071234, "resident_id") == "110101199003071234"
    assert common.cell_text(12.0, "text") == "12"
    assert common.cell_text(1234.5, "amount") == "1234.5"
    assert common.cell_text(1e-7, "amount") == "0.0000001"
    assert common.cell_text(44260, "text") == "44260"
    assert common.cell_text(None, "date") is None
    assert common.cell_text(" x ", "text") == " x "


def test_excel_serial_date() -> None:
    assert common.excel_serial_date(44197) == "2021-01-01"
    assert common.excel_serial_date(True) is None
    assert common.excel_serial_date(-1) is None


# ------------------------------------------------------------------ discover
def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_discover_sorts_and_flags(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    _touch(land / "registry" / "2021-07-01" / "enterprises.csv")
    _touch(land / "registry" / "2021-06-30" / "unions.csv")
    _touch(land / "registry" / "2021-06-30" / "enterprises.csv")
    _touch(land / "registry" / "2021-06-30" / "members.csv")
    _touch(land / "registry" / "2021-06-30" / "old" / "coverage.csv")
    _touch(land / "registry" / "latest" / "coverage.csv")
    _touch(land / "registry" / "2021-02-30" / "coverage.csv")
    _touch(land / "registry" / "stray.csv")
    _touch(land / "events" / "2021-06-30" / "honours.csv")
    found = common.discover(land, "registry")
    assert [(d.rel_name, d.delivery_date, d.problem is None) for d in found] == [
        ("registry/2021-06-30/enterprises.csv", date(2021, 6, 30), True),
        ("registry/2021-06-30/members.csv", date(2021, 6, 30), False),
        ("registry/2021-06-30/old/coverage.csv", date(2021, 6, 30), False),
        ("registry/2021-06-30/unions.csv", date(2021, 6, 30), True),
        ("registry/2021-07-01/enterprises.csv", date(2021, 7, 1), True),
        ("registry/2021-02-30/coverage.csv", None, False),
        ("registry/latest/coverage.csv", None, False),
        ("registry/stray.csv", None, False),
    ]
    problems = {d.rel_name: d.problem for d in found if d.problem}
    assert problems["registry/2021-06-30/members.csv"].startswith("unknown file name 'members.csv'")
    assert problems["registry/latest/coverage.csv"] == "folder name 'latest' is not a date (YYYY-MM-DD)"
    assert (
        problems["registry/2021-02-30/coverage.csv"] == "folder name '2021-02-30' is not a date (YYYY-MM-DD)"
    )
    assert "sub-folder" in problems["registry/2021-06-30/old/coverage.csv"]
    assert "not inside a delivery-date folder" in problems["registry/stray.csv"]
    assert found[0].source == "registry"
    assert found[0].path == land / "registry" / "2021-06-30" / "enterprises.csv"


def test_discover_known_names_per_source(tmp_path: Path) -> None:
    day = "2022-01-05"
    names = {
        "welfare": [
            "A01_202103.xlsx",
            "ST-9_202112.xlsx",
            "A01_202113.xlsx",
            "A01_2021.xlsx",
            "A_01_202103.xlsx",
            "A01_202103.xls",
        ],
        "training": ["sessions.jsonl", "attendance.jsonl", "competitions.jsonl", "sessions.json"],
        "rights": ["cases.csv", "bargaining.csv", "Cases.csv"],
        "finance": ["vouchers.csv", "budget.csv", "budget.xlsx"],
        "events": ["activities.csv", "honours.csv", "honors.csv"],
    }
    for source, files in names.items():
        for f in files:
            _touch(tmp_path / source / day / f)
    ok = {
        s: sorted(Path(d.rel_name).name for d in common.discover(tmp_path, s) if d.problem is None)
        for s in names
    }
    assert ok == {
        "welfare": ["A01_202103.xlsx", "ST-9_202112.xlsx"],
        "training": ["attendance.jsonl", "competitions.jsonl", "sessions.jsonl"],
        "rights": ["bargaining.csv", "cases.csv"],
        "finance": ["budget.csv", "vouchers.csv"],
        "events": ["activities.csv", "honours.csv"],
    }
    assert common.discover(tmp_path, "registry") == []


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    assert common.sha256_file(p) == hashlib.sha256(b"abc").hexdigest()


# ------------------------------------------------------------------- decoding
def test_decode_gb18030() -> None:
    assert common.decode("工会编码,名称\n".encode("gb18030"), "registry", "f") == "工会编码,名称\n"
    assert common.decode(b"a,b\n", "registry", "f") == "a,b\n"


@pytest.mark.parametrize(
    ("data", "source", "fragment"),
    [
        ("工会编码\n".encode(), "registry", "UTF-8-encoded"),
        (b"\xef\xbb\xbfa,b\n", "finance", "byte-order mark"),
        (b"a,\x81\n", "registry", "undecodable bytes at offset 2"),
        ("工会编码\n".encode("gb18030"), "events", "not valid UTF-8"),
        ("工会编码\n".encode("gb18030"), "rights", "not valid UTF-8 with BOM"),
    ],
)
def test_decode_rejects_wrong_encodings(data: bytes, source: str, fragment: str) -> None:
    with pytest.raises(BatchError) as exc:
        common.decode(data, source, "x/2021-01-01/f.csv")
    assert exc.value.rule == "batch.encoding"
    assert exc.value.file == "x/2021-01-01/f.csv"
    assert fragment in exc.value.message


def test_decode_drops_bom() -> None:
    assert common.decode(b"\xef\xbb\xbfa\n", "rights", "f") == "a\n"
    assert common.decode(b"\xef\xbb\xbfa\n", "events", "f") == "a\n"
    assert common.decode(b"a\n", "rights", "f") == "a\n"


# -------------------------------------------------------------------- headers
def test_match_headers_amount_forms_and_extras() -> None:
    t = schema.table("finance", "budget")
    pos, factors = common.match_headers(["备注", "年度", "项目编码", "项目名称", "预算金额（万元）"], t, "f")
    assert pos == {"year": 1, "project_code": 2, "project_name": 3, "budget_yuan": 4}
    assert factors == {"year": 1, "project_code": 1, "project_name": 1, "budget_yuan": 10000}
    _, factors = common.match_headers(["年度", "项目编码", "项目名称", "预算金额(元)"], t, "f")
    assert factors["budget_yuan"] == 1


def test_match_headers_missing_and_duplicate() -> None:
    t = schema.table("finance", "budget")
    with pytest.raises(BatchError) as exc:
        common.match_headers(["年度", "项目名称"], t, "finance/2021-01-01/budget.csv")
    assert exc.value.rule == "batch.columns"
    assert exc.value.message == "missing column(s) 项目编码, 预算金额(元)/(万元); found: 年度, 项目名称"
    with pytest.raises(BatchError) as exc:
        common.match_headers(["年度", "项目编码", "项目名称", "预算金额(元)", "预算金额(万元)"], t, "f")
    assert exc.value.rule == "batch.columns"
    assert "more than once" in exc.value.message


# ------------------------------------------------------------------- to_typed
def test_to_typed() -> None:
    t = schema.table("registry", "unions")
    frame = pl.DataFrame(
        {
            "union_code": ["GH0000000001", "GH0000000002"],
            "union_name": ["甲", "乙"],
            "union_form": ["独立建会", "联合建会"],
            "uscc": ["91310000MA1K4ABC1X", None],
            "founded_on": ["2020-01-02", "2019-12-31"],
            "has_party_org": ["true", "false"],
            "status": ["正常", "撤销"],
            "revoked_on": [None, "2021-05-06"],
            "updated_at": ["2021-06-30 08:00:00", "2021-06-30 09:10:11"],
            "_source": ["registry"] * 2,
            "_file_name": ["registry/2021-06-30/unions.csv"] * 2,
            "_file_sha256": ["ab"] * 2,
            "_delivery_date": ["2021-06-30"] * 2,
            "_row_number": [2, 3],
            "_parse_error": [None, None],
            "_original": ["{}", "{}"],
        },
        schema_overrides={"_parse_error": pl.String, "_row_number": pl.Int64},
    )
    typed = common.to_typed(frame, t)
    assert typed.columns == [c.name for c in t.all_columns] + list(common.TYPED_META)
    assert typed.schema["founded_on"] == pl.Date
    assert typed.schema["updated_at"] == pl.Datetime("us")
    assert typed.schema["has_party_org"] == pl.Boolean
    assert typed.schema["_delivery_date"] == pl.Date
    assert typed.schema["_row_number"] == pl.Int64
    assert typed.row(1) == (
        "GH0000000002",
        "乙",
        "联合建会",
        None,
        date(2019, 12, 31),
        False,
        "撤销",
        date(2021, 5, 6),
        datetime(2021, 6, 30, 9, 10, 11),
        "registry",
        "registry/2021-06-30/unions.csv",
        "ab",
        date(2021, 6, 30),
        3,
    )


def test_to_typed_numbers_and_strictness() -> None:
    t = schema.table("finance", "budget")
    base = {
        "project_code": ["TJ"],
        "project_name": ["体检"],
        "_source": ["finance"],
        "_file_name": ["finance/2021-01-01/budget.csv"],
        "_file_sha256": ["x"],
        "_delivery_date": ["2021-01-01"],
        "_row_number": [2],
    }
    typed = common.to_typed(pl.DataFrame({"year": ["2021"], "budget_yuan": ["12345.60"], **base}), t)
    assert typed.schema["year"] == pl.Int64
    assert typed.schema["budget_yuan"] == pl.Decimal(18, 2)
    assert typed.row(0)[:4] == (2021, "TJ", "体检", Decimal("12345.60"))
    with pytest.raises(pl.exceptions.PolarsError):
        common.to_typed(pl.DataFrame({"year": ["20x1"], "budget_yuan": ["1"], **base}), t)
    with pytest.raises(pl.exceptions.PolarsError):
        common.to_typed(
            pl.DataFrame(
                {
                    "year": ["2021"],
                    "budget_yuan": ["1"],
                    **base,
                }
            ).with_columns(_delivery_date=pl.lit("2021-02-30")),
            t,
        )


def _condolence_part(file: str, rows: list[dict[str, str | None]], factor: int = 1) -> common.PendingFrame:
    t = schema.table("welfare", "condolence")
    raw = common.RawRows.empty(c.name for c in t.columns)
    for i, row in enumerate(rows, start=2):
        raw.add(i, row, row)
    return common.pending_frame(
        t,
        raw,
        source="welfare",
        file_name=file,
        sha256=hashlib.sha256(file.encode()).hexdigest(),
        delivery_date=date(2021, 5, 2),
        factors={"amount_yuan": factor} if factor != 1 else None,
        constants={"station_code": file[:4], "ledger_month": "202104"},
    )


def test_canonical_frames_together_equal_each_alone() -> None:
    """A slice's files canonicalised in one query per table and header form give, file by file,
    exactly the frames each gives alone: a file whose dates are all canonical beside one whose
    are not, a control character in one file only, an amount header in 万元 (its own group),
    an empty file, and a frame that was canonical already (kept as it is)."""
    row = {"visit_date": "2021-04-01", "program": "春节", "recipient_category": "困难职工", "name": "张三"}
    parts = [
        _condolence_part(
            "CN01_202104.xlsx", [row | {"amount_yuan": "500"}, row | {"amount_yuan": " 1,000 "}]
        ),
        _condolence_part("CN02_202104.xlsx", [row | {"visit_date": "2021/4/3", "name": "李\x07四"}]),
        _condolence_part("CN03_202104.xlsx", [row | {"amount_yuan": "0.05"}], factor=10_000),
        _condolence_part("CN04_202104.xlsx", []),
        _condolence_part("CN05_202104.xlsx", [row | {"visit_date": "2021-04-05", "amount_yuan": "1.5"}]),
    ]
    ready = parts[0].canonical()
    alone = [p.canonical() for p in parts]
    together = common.canonical_frames([*parts, ready])
    assert len(together) == len(parts) + 1 and together[-1] is ready
    for a, b in zip(alone, together, strict=False):
        assert a.equals(b) and a.columns == b.columns
    assert together[1]["visit_date"].to_list() == ["2021-04-03"]
    assert together[1]["_control_chars"].to_list() == ["name"]
    assert together[0]["_control_chars"].to_list() == [None, None]
    assert together[2]["amount_yuan"].to_list() == ["500.00"]
    assert together[3].height == 0
    assert together[0].columns[-len(common.META_OUT) :] == list(common.META_OUT)
