"""The demo landing zone: a synthetic, deterministic federation year in the contract's formats.

``generate(landing, year, seed)`` writes ``<landing>/<source>/<YYYY-MM-DD>/<files>`` for the six
file sources and ``<landing>/members.sqlite``. The data is built so that, once the contract's
rules are applied (latest wins, workbook replaces, quarantined rows out), every figure of
config/figures.yaml lands inside its seed_range; the pipeline computes them, this module only
aims. It carries the mess the contract allows: mixed date forms, full-width characters,
padding, thousands separators, 万元 headers, a resubmitted workbook, corrected case outcomes,
a revoked union, reversing vouchers, a byte-identical re-delivery, rows that must be
quarantined, and one planted problem of each kind for the fund audit. Names and IDs are fake
(Faker zh_CN), with valid check characters.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import tempfile
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from faker import Faker
from openpyxl import Workbook

from flows.checksums import USCC_ALPHABET, resident_id_check_char, uscc_check_char
from flows.schema import ENCODINGS

FULL = str.maketrans("0123456789GH", "０１２３４５６７８９ＧＨ")
STATIONS = ("HG01", "KG01", "LG01", "LG02")
WAN_STATIONS = ("LG02",)
"""Stations whose 慰问 sheet states amounts in 万元."""
FIXED_TIME = datetime(2022, 1, 1, 0, 0, 0)


@dataclass
class Manifest:
    landing: Path
    year: int
    files: list[Path] = field(default_factory=list)
    targets: dict[str, float] = field(default_factory=dict)
    quarantine: list[tuple[str, str]] = field(default_factory=list)
    """(source table, expected rule) of every row planted for the quarantine."""
    audit: dict[str, str] = field(default_factory=dict)
    planted: list[tuple[str, str, Decimal]] = field(default_factory=list)
    """(audit rule, project code, amount) of every fund problem planted for the audit of ``year``."""


class _Gen:
    def __init__(self, landing: Path, year: int, seed: int, replica: int = 0) -> None:
        self.landing = landing
        self.y = year
        self.replica = replica
        """0: the zone itself; k > 0: the k-th copy of a scaled demo, whose identifiers differ."""
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.m = Manifest(landing, year)
        self.deliveries = [date(year, 4, 1), date(year, 7, 1), date(year, 10, 1), date(year + 1, 1, 15)]
        self._uscc_seen: set[str] = set()

    # ------------------------------------------------------------- primitives
    def station(self, code: str) -> str:
        """A welfare station of this replica (its code is in the workbook's file name)."""
        return code if self.replica == 0 else f"{code}-{self.replica}"

    def tag(self, ident: str) -> str:
        """An identifier of this replica (unchanged in the zone itself)."""
        return ident if self.replica == 0 else f"{ident}R{self.replica}"

    @property
    def union_base(self) -> int:
        """Union codes are GH + 10 digits: each replica has its own million."""
        return 1201000000 + self.replica * 1_000_000

    @property
    def id_base(self) -> int:
        """Member and card-event ids: each replica has its own million."""
        return self.replica * 1_000_000

    def folder(self, d: date) -> date:
        """The first delivery on or after ``d``."""
        for f in self.deliveries:
            if d <= f:
                return f
        raise ValueError(d)

    def day_in(self, year: int, start_month: int = 1, end_month: int = 12) -> date:
        start = date(year, start_month, 1)
        end = date(year, end_month, 28)
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def uscc(self) -> str:
        while True:
            body = "91120116" + "".join(self.rng.choice(USCC_ALPHABET) for _ in range(9))
            code = body + uscc_check_char(body)
            if code not in self._uscc_seen:
                self._uscc_seen.add(code)
                return code

    def rid(self) -> str:
        born = date(1965, 1, 1) + timedelta(days=self.rng.randrange(12000))
        first = (
            f"{self.rng.choice(['120116', '120101', '130102', '410105', '370202'])}{born:%Y%m%d}"
            f"{self.rng.randrange(1000):03d}"
        )
        return first + resident_id_check_char(first)

    def name(self) -> str:
        return str(self.fake.name())

    def fmt(self, d: date, i: int) -> str:
        """The contract's date forms, in turn."""
        return (
            d.isoformat(),
            f"{d.year}/{d.month}/{d.day}",
            f"{d.year}年{d.month}月{d.day}日",
            d.strftime("%Y%m%d"),
        )[i % 4]

    def money(self, v: Decimal, i: int) -> str:
        return f"{v:,.2f}" if i % 7 == 0 else f"{v:.2f}"

    def split(self, total: Decimal, n: int) -> list[Decimal]:
        """n positive amounts (in fen) summing exactly to total, each near total / n."""
        mean = int(total * 100 / n)
        while True:
            vals = [Decimal(self.rng.randrange(mean * 8 // 10, mean * 12 // 10)) / 100 for _ in range(n - 1)]
            last = total - sum(vals)
            if mean / 200 < last * 100 < mean * 2:
                return [*vals, last]

    def ints(self, total: int, n: int) -> list[int]:
        cuts = sorted(self.rng.sample(range(1, total), n - 1))
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]

    # ------------------------------------------------------------------ files
    def path(self, source: str, d: date, name: str) -> Path:
        p = self.landing / source / d.isoformat() / name
        p.parent.mkdir(parents=True, exist_ok=True)
        self.m.files.append(p)
        return p

    def csv_file(
        self, source: str, d: date, name: str, header: list[str], rows: list[list[Any]], encoding: str
    ) -> Path:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
        p = self.path(source, d, name)
        p.write_bytes(buf.getvalue().encode(encoding))
        return p

    def by_folder(self, rows: list[tuple[date, list[Any]]]) -> dict[date, list[list[Any]]]:
        out: dict[date, list[list[Any]]] = {}
        for d, row in rows:
            out.setdefault(self.folder(d), []).append(row)
        return out


def _ts(d: date, i: int) -> str:
    return f"{d.isoformat()} {8 + i % 10:02d}:{i % 60:02d}:{(i * 7) % 60:02d}"


# ====================================================================== registry
def _registry(g: _Gen) -> dict[str, Any]:
    y = g.y
    enterprises = [g.uscc() for _ in range(3600)]
    ent_rows: list[tuple[date, list[Any]]] = []
    for i, code in enumerate(enterprises):
        reg = date(y - 1 - i % 15, 1 + i % 12, 1 + i % 28)
        shown = code.lower() if i % 97 == 0 else code
        name = f"天津{g.fake.company_prefix()}{['科技', '物流', '贸易', '制造'][i % 4]}有限公司"
        if i % 53 == 0:
            name = f"\u00a0{name} "
        tags = ["", "", "", "百强", "科技领军", "百强、科技领军"][i % 6]
        ent_rows.append(
            (
                reg,
                [
                    shown,
                    name,
                    ("海港", "空港", "临港")[i % 3],
                    "ABCFGHIL"[i % 8],
                    20 + i % 300,
                    tags,
                    g.fmt(reg, i),
                    _ts(reg, i),
                ],
            )
        )
    # an enterprise re-sent with a later 更新时间 (renamed), and one sent later with an older time
    ent_rows.append(
        (
            date(y, 5, 1),
            [
                enterprises[0],
                "天津更名后科技有限公司",
                "海港",
                "C",
                88,
                "百强",
                ent_rows[0][1][6],
                _ts(date(y, 5, 1), 0),
            ],
        )
    )
    # quarantine: bad check character, unknown zone
    bad = enterprises[1][:17] + ("0" if enterprises[1][17] != "0" else "1")
    ent_rows.append(
        (date(y, 2, 1), [bad, "校验码错误公司", "海港", "C", 10, "", f"{y - 2}-01-01", _ts(date(y, 2, 1), 1)])
    )
    ent_rows.append(
        (
            date(y, 2, 1),
            [g.uscc(), "片区错误公司", "东港", "C", 10, "", f"{y - 2}-01-01", _ts(date(y, 2, 1), 2)],
        )
    )
    g.m.quarantine += [("registry.enterprises", "uscc.uscc"), ("registry.enterprises", "zone.allowed_values")]
    header = [
        "统一社会信用代码",
        "企业名称",
        "所属片区",
        "行业门类",
        "职工人数",
        "企业标签",
        "注册日期",
        "更新时间",
    ]
    for d, rows in sorted(g.by_folder(ent_rows).items()):
        g.csv_file("registry", d, "enterprises.csv", header, rows, "gb18030")

    # --- unions
    ucode = iter(f"GH{g.union_base + i:010d}" for i in range(100000))
    ent = iter(enterprises)
    unions: list[dict[str, Any]] = []

    def union(
        form: str, founded: date, revoked: date | None, sent_revoked_later: bool = False
    ) -> dict[str, Any]:
        u = {
            "code": next(ucode),
            "form": form,
            "uscc": next(ent) if form == "独立建会" else "",
            "founded": founded,
            "revoked": revoked,
            "later": sent_revoked_later,
            "party": False,
        }
        unions.append(u)
        return u

    for i in range(548):
        union("独立建会", date(y - 1 - i % 10, 1 + i % 12, 1 + i % 28), None)
    for i in range(107):
        union("独立建会", date(y, 1 + i % 12, 1 + i % 28), None)
    for i in range(6):  # founded in Y, revoked in Q4 of Y: re-sent as 撤销 in the January delivery
        union("独立建会", date(y, 2 + i, 10), date(y, 11, 1 + i), sent_revoked_later=True)
    for i in range(10):  # revoked before Y
        union("独立建会", date(y - 5, 1 + i, 5), date(y - 1, 1 + i, 20))
    for i in range(5):  # revoked during Y
        union("独立建会", date(y - 3, 1 + i, 5), date(y, 3 + i, 15))
    joint = [union("联合建会", date(y - 2 - i % 5, 1 + i % 12, 3), None) for i in range(48)]
    joint_revoked = [union("联合建会", date(y - 4, 6, 1 + i), date(y, 6, 1 + i)) for i in range(2)]
    active = [u for u in unions if u["revoked"] is None]
    for u in active[:263]:
        u["party"] = True
    for u in unions[-10:]:
        u["party"] = u["revoked"] is not None  # revoked unions with 是 must not count
    u_rows: list[tuple[date, list[Any]]] = []
    for i, u in enumerate(unions):
        f = u["founded"]
        revoked_now = u["revoked"] is not None and not u["later"]
        status_date = u["revoked"] if revoked_now else f
        code = u["code"].translate(FULL) if i % 89 == 0 else u["code"]
        u_rows.append(
            (
                status_date,
                [
                    code,
                    f"{g.fake.company_prefix()}工会",
                    u["form"],
                    u["uscc"],
                    g.fmt(f, i),
                    "是" if u["party"] else "否",
                    "撤销" if revoked_now else "正常",
                    g.fmt(u["revoked"], i) if revoked_now else "",
                    _ts(status_date, i),
                ],
            )
        )
        if u["later"]:
            u_rows.append(
                (
                    g.deliveries[3],
                    [
                        u["code"],
                        "新设后撤销工会",
                        u["form"],
                        u["uscc"],
                        g.fmt(f, i),
                        "否",
                        "撤销",
                        g.fmt(u["revoked"], i),
                        _ts(u["revoked"], i),
                    ],
                )
            )
    # quarantine: malformed union code; 独立建会 without its enterprise
    u_rows.append(
        (
            date(y, 3, 1),
            [
                g.tag("GH12345"),
                "编码错误工会",
                "独立建会",
                g.uscc(),
                f"{y}-03-01",
                "是",
                "正常",
                "",
                _ts(date(y, 3, 1), 5),
            ],
        )
    )
    u_rows.append(
        (
            date(y, 3, 2),
            [
                next(ucode),
                "缺少信用代码工会",
                "独立建会",
                "",
                f"{y}-03-02",
                "是",
                "正常",
                "",
                _ts(date(y, 3, 2), 6),
            ],
        )
    )
    g.m.quarantine += [
        ("registry.unions", "union_code.union_code"),
        ("registry.unions", "uscc.required_for_independent"),
    ]
    header = [
        "工会编码",
        "工会名称",
        "建会形式",
        "统一社会信用代码",
        "成立日期",
        "党组织",
        "状态",
        "撤销日期",
        "更新时间",
    ]
    for d, rows in sorted(g.by_folder(u_rows).items()):
        g.csv_file("registry", d, "unions.csv", header, rows, "gb18030")

    # --- coverage: own enterprise for independent unions; 2089 enterprises under joint unions
    c_rows: list[tuple[date, list[Any]]] = []
    for i, u in enumerate(unions):
        if u["form"] == "独立建会":
            c_rows.append((u["founded"], [u["code"], u["uscc"], g.fmt(u["founded"], i), ""]))
    rest = list(ent)
    for i, code in enumerate(rest[:2089]):
        u = joint[i % len(joint)]
        start = max(u["founded"], date(y, 1 + i % 12, 1) if i % 5 == 0 else u["founded"])
        c_rows.append((start, [u["code"], code, g.fmt(start, i), ""]))
    ended = rest[2089:2099]
    for i, code in enumerate(ended):  # open in the first delivery, closed in Y by a later one
        u = joint[i]
        c_rows.append((g.deliveries[0], [u["code"], code, g.fmt(u["founded"], i), ""]))
        c_rows.append(
            (g.deliveries[3], [u["code"], code, g.fmt(u["founded"], i), g.fmt(date(y, 12, 1 + i), i)])
        )
    for i, code in enumerate(rest[2099:2129]):  # under joint unions revoked in Y
        u = joint_revoked[i % 2]
        c_rows.append((u["revoked"], [u["code"], code, g.fmt(u["founded"], i), ""]))
    for i, code in enumerate(rest[2129:2134]):  # starting next year
        c_rows.append((g.deliveries[3], [joint[i]["code"], code, f"{y + 1}-01-0{1 + i}", ""]))
    header = ["工会编码", "统一社会信用代码", "起始日期", "终止日期"]
    for d, rows in sorted(g.by_folder(c_rows).items()):
        g.csv_file("registry", d, "coverage.csv", header, rows, "gb18030")
    revoked_before = next(u for u in unions if u["revoked"] and u["revoked"].year == y - 1)
    return {
        "enterprises": enterprises[:3450],
        "payees": rest[200:700],
        "revoked_union": revoked_before,
        "union_codes": [u["code"] for u in active],
        "bargaining": enterprises,
    }


# ======================================================================= members
def _members(g: _Gen, union_codes: list[str]) -> None:
    y = g.y
    p = g.landing / "members.sqlite"
    if p.exists():
        p.unlink()
    con = sqlite3.connect(p)
    con.executescript(
        "CREATE TABLE member (member_id INTEGER PRIMARY KEY, id_card TEXT, name TEXT, phone TEXT, union_code TEXT,"
        " employment_form TEXT, is_migrant INTEGER, is_veteran INTEGER, joined_on TEXT, updated_at TEXT,"
        " deleted_at TEXT);"
        "CREATE TABLE member_card (card_event_id INTEGER PRIMARY KEY, member_id INTEGER, card_no TEXT,"
        " action TEXT, action_on TEXT, updated_at TEXT);"
        # what the pull pages by (a platform that is pulled incrementally keeps such an index)
        "CREATE INDEX member_updated ON member (updated_at, member_id);"
        "CREATE INDEX member_card_updated ON member_card (updated_at, card_event_id);"
    )
    forms = ("standard",) * 6 + ("courier", "food_delivery", "truck_driver", "ride_hailing", "other")
    members = []
    for i in range(1, 40001):
        joined = date(y - 1 - i % 6, 1 + i % 12, 1 + i % 28)
        deleted = f"{y}-08-01 10:00:00" if i % 200 == 0 else None
        members.append(
            (
                g.id_base + i,
                g.rid(),
                g.name(),
                f"13{g.rng.randrange(10**9):09d}" if i % 9 else "",
                union_codes[i % len(union_codes)],
                forms[i % len(forms)],
                int(i % 4 == 0),
                int(i % 50 == 0),
                joined.isoformat(),
                f"{y}-0{1 + i % 9}-15 09:00:00",
                deleted,
            )
        )
    members.append(
        (
            g.id_base + 40001,
            "120116199002301234",
            "生日错误",
            "",
            union_codes[0],
            "standard",
            0,
            0,
            f"{y}-01-01",
            f"{y}-01-02 09:00:00",
            None,
        )
    )
    g.m.quarantine.append(("members.member", "id_card.resident_id"))
    con.executemany("INSERT INTO member VALUES (?,?,?,?,?,?,?,?,?,?,?)", members)
    cards = []
    for i in range(1, 36001):
        d = date(y, 1, 1) + timedelta(days=i % 365)
        cards.append(
            (
                g.id_base + i,
                g.id_base + 1 + i % 40000,
                g.tag(f"K{y}{i:06d}"),
                "new" if i % 3 else "renew",
                d.isoformat(),
                f"{d.isoformat()} 12:00:00",
            )
        )
    for i in range(36001, 39001):
        d = date(y - 1, 1, 1) + timedelta(days=i % 365)
        cards.append(
            (
                g.id_base + i,
                g.id_base + 1 + i % 40000,
                g.tag(f"K{y - 1}{i:06d}"),
                "new",
                d.isoformat(),
                f"{d.isoformat()} 12:00:00",
            )
        )
    cards += [
        (g.id_base + 39001, g.id_base + 5, g.tag("K-LOST-1"), "lost", f"{y}-05-01", f"{y}-05-01 12:00:00"),
        (g.id_base + 39002, g.id_base + 6, g.tag("K-LOST-2"), "new", f"{y}-02-30", f"{y}-05-01 12:00:00"),
    ]
    g.m.quarantine += [
        ("members.member_card", "action.allowed_values"),
        ("members.member_card", "action_on.date_format"),
    ]
    con.executemany("INSERT INTO member_card VALUES (?,?,?,?,?,?)", cards)
    con.commit()
    con.close()
    g.m.files.append(p)


# ======================================================================= welfare
@dataclass
class _Ledger:
    condolence: list[list[Any]] = field(default_factory=list)
    checks: list[list[Any]] = field(default_factory=list)
    relief: list[list[Any]] = field(default_factory=list)


def _welfare(g: _Gen) -> dict[str, Any]:
    y = g.y
    books: dict[tuple[str, int, int], _Ledger] = {}

    def book(d: date, station: str) -> _Ledger:
        return books.setdefault((station, d.year, d.month), _Ledger())

    totals = {"LJWW": Decimal(0), "XJYW": Decimal(0), "YQWZ": Decimal(0), "TJ": Decimal(0), "JZ": Decimal(0)}
    festival_programs = ("两节慰问", "外来建设者慰问", "特殊慰问")
    festival_cats = ("不返乡职工", "农民工", "退役军人", "志愿者", "医护人员", "社区工作者", "困难职工")

    def visit(i: int, program: str, cat: str, amount: Decimal, form: str, d: date | None = None) -> None:
        d = d or g.day_in(y)
        station = STATIONS[i % 4]
        rid = g.rid() if i % 3 == 0 else ""
        book(d, station).condolence.append([d, program, cat, g.name(), rid, "", form, amount])
        if d.year == y:
            totals[{"新就业形态慰问": "XJYW", "疫情防控慰问": "YQWZ"}.get(program, "LJWW")] += amount

    for i in range(39212):
        visit(i, festival_programs[i % 3], festival_cats[i % 7], Decimal(200 + 100 * (i % 4)), "现金")
    for i in range(10000):
        visit(
            i, "新就业形态慰问", ("快递员", "外卖员", "货车司机")[i % 3], Decimal(100 + 50 * (i % 3)), "物资"
        )
    for i, amount in enumerate(g.split(Decimal("986543.21"), 3912)):
        visit(i, "疫情防控慰问", ("医护人员", "一线防控人员", "社区工作者", "志愿者")[i % 4], amount, "物资")
    for i in range(40):  # the year before: outside every figure of Y
        visit(i, "两节慰问", "农民工", Decimal(300), "现金", date(y - 1, 12, 1 + i % 28))

    migrants = [g.rid() for _ in range(721)]
    for i, rid in enumerate(migrants + migrants[:40]):  # 40 people checked twice
        d = g.day_in(y)
        book(d, STATIONS[i % 4]).checks.append([d, g.name(), rid, "农民工", "泰达医院", Decimal(150)])
        totals["TJ"] += Decimal(150)
    for i in range(100):
        d = g.day_in(y)
        book(d, STATIONS[i % 4]).checks.append([d, g.name(), g.rid(), "困难职工", "港口医院", Decimal(180)])
        totals["TJ"] += Decimal(180)

    approvals: list[tuple[date, str, Decimal]] = []
    dup_id = g.rid()
    for i in range(74):
        d = g.day_in(y, 1, 11)
        rid = g.rid()
        if i in (10, 11):  # the planted duplicate relief: one person twice within 30 days
            rid, d = dup_id, date(y, 5, 3) if i == 10 else date(y, 5, 20)
        amount = Decimal(1000 + 500 * (i % 5))
        no = g.tag(f"JZ{y}{i + 1:04d}")
        book(d, STATIONS[i % 4]).relief.append(
            [d, g.name(), rid, ("大病救助", "意外救助", "困难救助")[i % 3], amount, no]
        )
        approvals.append((d, no, amount))
        totals["JZ"] += amount
    g.m.audit["duplicate_relief"] = "one 身份证号 given 救助 on the 3rd and the 20th of May"
    g.m.planted.append(("duplicate_relief", "JZ", Decimal(1000 + 500 * (11 % 5))))

    # quarantine rows (each would change a figure if it were counted)
    bad_rid = migrants[0][:17] + ("0" if migrants[0][17] != "0" else "1")
    book(date(y, 5, 10), "HG01").checks.append(
        [date(y, 5, 10), "校验错误", bad_rid, "农民工", "泰达医院", Decimal(150)]
    )
    book(date(y, 5, 11), "HG01").condolence.append(
        [date(y, 5, 11), "两节慰问问", "农民工", "项目错误", "", "", "现金", Decimal(300)]
    )
    book(date(y, 5, 12), "KG01").condolence.append(
        [date(y, 5, 12), "疫情防控慰问", "医护人员", "负数金额", "", "", "物资", Decimal(-50)]
    )
    book(date(y, 6, 13), "KG01").condolence.append(
        [f"{y}-02-30", "新就业形态慰问", "快递员", "日期错误", "", "", "物资", Decimal(100)]
    )
    book(date(y, 12, 14), "LG01").relief.append(
        [date(y + 1, 2, 1), "日期超前", g.rid(), "大病救助", Decimal(1000), g.tag(f"JZ{y}9999")]
    )
    g.m.quarantine += [
        ("welfare.health_checks", "id_card.resident_id"),
        ("welfare.condolence", "program.allowed_values"),
        ("welfare.condolence", "amount_yuan.amount"),
        ("welfare.condolence", "visit_date.date_format"),
        ("welfare.relief", "relief_date.after_delivery"),
    ]

    header_c = ["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式"]
    for (station, yy, mm), led in sorted(books.items()):
        d = g.folder(date(yy, mm, 28)) if yy == y else g.deliveries[0]
        _workbook(g, g.path("welfare", d, f"{g.station(station)}_{yy}{mm:02d}.xlsx"), station, led, header_c)
    # the resubmitted workbook: a first version with 1000 extra festival rows, corrected a quarter later
    first = _Ledger(
        [*books[("HG01", y, 3)].condolence], [*books[("HG01", y, 3)].checks], [*books[("HG01", y, 3)].relief]
    )
    for i in range(1000):
        d = date(y, 3, 1 + i % 28)
        first.condolence.append([d, "两节慰问", "不返乡职工", g.name(), "", "", "现金", Decimal(500)])
    wrong = g.path("welfare", g.deliveries[0], f"{g.station('HG01')}_{y}03.xlsx")
    _workbook(g, wrong, "HG01", first, header_c)
    right = g.m.files.index(wrong)
    g.m.files.pop(right)
    corrected = g.path("welfare", g.deliveries[1], f"{g.station('HG01')}_{y}03.xlsx")
    _workbook(g, corrected, "HG01", books[("HG01", y, 3)], header_c)
    return {"totals": totals, "approvals": approvals}


def _workbook(g: _Gen, path: Path, station: str, led: _Ledger, header_c: list[str]) -> None:
    wan = station in WAN_STATIONS
    wb = Workbook()
    ws = wb.active
    ws.title = "慰问"
    ws.append([*header_c, "金额(万元)" if wan else "金额(元)"])
    for i, row in enumerate(led.condolence):
        d, amount = row[0], row[7]
        cell_date: Any = d
        if isinstance(d, date) and i % 11 == 5:
            cell_date = (d - date(1899, 12, 30)).days  # an Excel serial number
        value: Any = float(amount / 10000) if wan else float(amount)
        if not wan and i % 13 == 0:
            value = f"{amount:,.2f}"
        ws.append([cell_date, *row[1:7], value])
    ws = wb.create_sheet("体检")
    ws.append(["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"])
    for row in led.checks:
        ws.append([*row[:5], float(row[5])])
    ws = wb.create_sheet("救助")
    ws.append(["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"])
    for row in led.relief:
        ws.append([*row[:4], float(row[4]), row[5]])
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_fixed_zip_times(buf.getvalue()))


def _fixed_zip_times(data: bytes) -> bytes:
    """Rewrite an xlsx with fixed member timestamps, so the same seed gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2022-01-01T00:00:00Z", content)
            dst.writestr(fixed, content)
    return out.getvalue()


# ====================================================================== training
def _training(g: _Gen) -> None:
    y = g.y
    sessions, attendance, competitions = [], [], []
    online = [(g.tag(f"S{y}{i:02d}"), date(y, 1 + i, 10)) for i in range(10)]
    offline = [(g.tag(f"S{y}F1"), date(y, 5, 12)), (g.tag(f"S{y}F2"), date(y, 9, 18))]
    for sid, d in online:
        sessions.append(
            (
                d,
                {
                    "session_id": sid,
                    "title": f"线上工会业务直播课{sid[-2:]}",
                    "mode": "online",
                    "start_date": d.isoformat(),
                    "end_date": d.isoformat(),
                },
            )
        )
    for sid, d in offline:
        sessions.append(
            (
                d,
                {
                    "session_id": sid,
                    "title": "工会干部线下培训班",
                    "mode": "offline",
                    "start_date": d.isoformat(),
                    "end_date": (d + timedelta(days=2)).isoformat(),
                },
            )
        )
    sessions.append(
        (
            date(y - 1, 10, 1),
            {
                "session_id": g.tag(f"S{y - 1}F1"),
                "title": "上年培训班",
                "mode": "offline",
                "start_date": f"{y - 1}-10-01",
                "end_date": f"{y - 1}-10-02",
            },
        )
    )
    replays = g.ints(5680, 1200)
    seen: set[str] = set()

    def unique_name() -> str:  # (session, id_card, name) is the key, and id_card may be null
        while (name := g.name()) in seen:
            pass
        seen.add(name)
        return name

    for i in range(1200):
        sid, d = online[i % 10]
        attendance.append(
            (
                d,
                {
                    "session_id": sid,
                    "id_card": g.rid() if i % 4 else None,
                    "name": unique_name(),
                    "union_code": f"GH{g.union_base + i % 600:010d}",
                    "registered": True,
                    "attended": i < 800,
                    "replay_views": replays[i],
                },
            )
        )
    for i in range(372):
        sid, d = offline[i % 2]
        attendance.append(
            (
                d + timedelta(days=2),
                {
                    "session_id": sid,
                    "id_card": g.rid(),
                    "name": g.name(),
                    "union_code": f"GH{g.union_base + i % 600:010d}",
                    "registered": i < 352,
                    "attended": i < 300,
                    "replay_views": 0,
                },
            )
        )
    parts = g.ints(20480, 14)
    for i in range(14):
        d = date(y, 3 + i % 9, 5 + i)
        competitions.append(
            (
                d,
                {
                    "competition_id": g.tag(f"C{y}{i:02d}"),
                    "name": f"技能大赛{i + 1}",
                    "level": ("city", "new_area", "zone")[i % 3],
                    "role": ("host", "co_host")[i % 2],
                    "start_date": d.isoformat(),
                    "participants": parts[i],
                },
            )
        )
    for i in range(2):
        competitions.append(
            (
                date(y - 1, 10, 1),
                {
                    "competition_id": g.tag(f"C{y - 1}{i:02d}"),
                    "name": "上年比赛",
                    "level": "zone",
                    "role": "host",
                    "start_date": f"{y - 1}-10-0{i + 1}",
                    "participants": 500,
                },
            )
        )
    competitions.append(
        (
            date(y, 8, 1),
            {
                "competition_id": g.tag(f"C{y}99"),
                "name": "人数为负",
                "level": "zone",
                "role": "host",
                "start_date": f"{y}-08-01",
                "participants": -5,
            },
        )
    )
    g.m.quarantine.append(("training.competitions", "participants.integer"))
    for name, rows in (
        ("sessions.jsonl", sessions),
        ("attendance.jsonl", attendance),
        ("competitions.jsonl", competitions),
    ):
        for d, objs in sorted(g.by_folder([(d, [o]) for d, o in rows]).items()):
            text = "".join(json.dumps(o[0], ensure_ascii=False) + "\n" for o in objs)
            g.path("training", d, name).write_text(text, encoding="utf-8")


# ======================================================================== rights
def _rights(g: _Gen, enterprises: list[str]) -> None:
    y = g.y
    rows: list[tuple[date, list[Any]]] = []
    n = 0

    def case(
        d: date,
        kind: str,
        result: str = "",
        closed: date | None = None,
        amount: Decimal | None = None,
        folder: date | None = None,
        no: str | None = None,
    ) -> str:
        nonlocal n
        n += 1
        no = no or g.tag(f"WQ{d.year}{n:05d}")
        uscc = enterprises[n % len(enterprises)] if n % 3 else ""
        rid = g.rid() if n % 2 else ""
        rows.append(
            (
                folder or max(d, closed or d),
                [
                    no,
                    kind,
                    g.fmt(d, n),
                    uscc,
                    rid,
                    result,
                    g.fmt(closed, n) if closed else "",
                    g.money(amount, n) if amount is not None else "",
                ],
            )
        )
        return no

    for _ in range(1131):
        case(g.day_in(y), "咨询")
    for _ in range(50):
        case(g.day_in(y - 1), "咨询")
    amounts = g.split(Decimal("3498856.37"), 226)
    for i, amount in enumerate(amounts):
        d = g.day_in(y, 1, 9 if i < 30 else 10)  # a correction arrives in a later delivery than its case
        if i < 30:  # first delivered while mediation was going on, corrected in January
            no = case(d, "劳动争议", "调解中")
            case(d, "劳动争议", "成功", date(y, 12, 20), amount, folder=g.deliveries[3], no=no)
        else:
            case(d, "劳动争议", "成功", d + timedelta(days=20), amount)
    for i in range(57):
        d = g.day_in(y, 1, 10)
        result = ("不成功", "调解中", "撤回")[i % 3]
        case(
            d,
            "劳动争议",
            result,
            d + timedelta(days=30) if result != "调解中" else None,
            Decimal(0) if i % 2 else None,
        )
    # quarantine: bad USCC, a date after its folder, an impossible date
    bad = enterprises[5][:17] + ("0" if enterprises[5][17] != "0" else "1")
    rows.append((date(y, 3, 1), [g.tag(f"WQ{y}90001"), "咨询", f"{y}-03-01", bad, "", "", "", ""]))
    rows.append((date(y, 3, 1), [g.tag(f"WQ{y}90002"), "咨询", f"{y}-05-01", "", "", "", "", ""]))
    rows.append((date(y, 3, 1), [g.tag(f"WQ{y}90003"), "咨询", f"{y}-02-30", "", "", "", "", ""]))
    g.m.quarantine += [
        ("rights.cases", "uscc.uscc"),
        ("rights.cases", "received_on.after_delivery"),
        ("rights.cases", "received_on.date_format"),
    ]
    header = [
        "案件编号",
        "类型",
        "受理日期",
        "统一社会信用代码",
        "职工身份证号",
        "调解结果",
        "结案日期",
        "维权金额(元)",
    ]
    for d, rs in sorted(g.by_folder(rows).items()):
        g.csv_file("rights", d, "cases.csv", header, rs, "utf-8-sig")

    b_rows: list[tuple[date, list[Any]]] = []
    for i, code in enumerate(enterprises[:3450]):
        entered = g.day_in(y, 1, 11)
        bargained = i < 900
        b_rows.append(
            (
                entered,
                [
                    code,
                    y,
                    "是" if bargained else "否",
                    "是" if i < 761 else "否",
                    "是" if i < 500 else "否",
                    "是" if i < 443 else "否",
                    g.fmt(entered, i) if i < 443 else "",
                    g.fmt(entered, i + 1),
                ],
            )
        )
    for i, code in enumerate(enterprises[3450:3600]):
        entered = g.day_in(y - 1)
        b_rows.append(
            (g.deliveries[0], [code, y - 1, "是", "是", "是", "是", g.fmt(entered, i), g.fmt(entered, i)])
        )
    header = [
        "统一社会信用代码",
        "年度",
        "开展集体协商",
        "质效评估",
        "建立协商机制",
        "签订工资协议",
        "协议签订日期",
        "录入日期",
    ]
    for d, rs in sorted(g.by_folder(b_rows).items()):
        g.csv_file("rights", d, "bargaining.csv", header, rs, "utf-8-sig")


# ======================================================================= finance
def _finance(g: _Gen, payees: list[str], revoked_union: dict[str, Any], welfare: dict[str, Any]) -> None:
    y = g.y
    lines: list[tuple[date, list[Any]]] = []
    n = 0

    def line(
        d: date,
        project: str,
        debit: Decimal,
        credit: Decimal,
        payee: str = "",
        approval: str = "A",
        summary: str = "",
    ) -> None:
        nonlocal n
        n += 1
        if approval == "A":
            approval = g.tag(f"SP{y}{n:05d}")
        names = {
            "XMBZ": "项目化补助",
            "LZJT": "干部履职津贴",
            "YQWZ": "疫情慰问物资",
            "LJWW": "两节慰问",
            "XJYW": "新就业形态慰问",
            "TJ": "体检费",
            "JZ": "会员救助",
        }
        lines.append(
            (
                d,
                [
                    g.tag(f"JZ{d.year}{n:05d}"),
                    1,
                    g.fmt(d, n),
                    "5011",
                    "工会业务支出",
                    summary or names[project],
                    g.money(debit, n),
                    g.money(credit, n),
                    project,
                    payee,
                    approval,
                ],
            )
        )

    xmbz = g.split(Decimal("121600.00"), 28)
    for i, amount in enumerate(xmbz):
        d = g.day_in(y, 2, 11)
        if i == 0:  # wrong amount, reversed by a credit line, then the right one
            line(d, "XMBZ", Decimal("9999.00"), Decimal(0), payees[i], summary="项目化补助（金额有误）")
            line(d + timedelta(days=1), "XMBZ", Decimal(0), Decimal("9999.00"), payees[i], summary="冲销")
        line(
            d + timedelta(days=2), "XMBZ", amount, Decimal(0), payees[i], approval="" if i == 5 else "A"
        )  # i == 5: the planted unapproved payment
        if i == 5:
            g.m.planted.append(("unapproved_payment", "XMBZ", amount))
    d = date(y, 6, 1)  # a payee that nets to zero: paid, then fully reversed
    line(d, "XMBZ", Decimal("3000.00"), Decimal(0), payees[40])
    line(d + timedelta(days=3), "XMBZ", Decimal(0), Decimal("3000.00"), payees[40], summary="冲销")
    g.m.audit["unapproved_payment"] = "one XMBZ line without 审批单号"

    lzjt = g.split(Decimal("705432.10"), 265)
    lzjt_payees = payees[41 : 41 + 264] + [revoked_union["code"]]
    for amount, payee in zip(lzjt, lzjt_payees, strict=True):
        line(g.day_in(y, 2, 11), "LZJT", amount, Decimal(0), payee)
    g.m.planted.append(("unknown_or_revoked_payee", "LZJT", lzjt[-1]))
    g.m.audit["revoked_payee"] = (
        f"LZJT paid to union {revoked_union['code']}, revoked {revoked_union['revoked']}"
    )

    totals = welfare["totals"]
    gap = Decimal(
        "180.00"
    )  # the planted reconciliation gap: one more health check posted than in the ledgers
    for project in ("LJWW", "XJYW", "YQWZ", "TJ"):
        amount = totals[project] + (gap if project == "TJ" else 0)
        for i, part in enumerate(g.split(amount, 12)):
            line(date(y, 1 + i, 25), project, part, Decimal(0), approval="A")
    g.m.audit["reconciliation_gap"] = f"TJ postings exceed the 体检 ledgers by {gap}"
    g.m.planted.append(("reconciliation_gap", "TJ", gap))
    for d, no, amount in welfare["approvals"]:
        line(d + timedelta(days=1), "JZ", amount, Decimal(0), approval=no)
    # the year before
    for i in range(5):
        line(date(y - 1, 11, 1 + i), "XMBZ", Decimal("2000.00"), Decimal(0), payees[i])
    # quarantine: a negative debit, a malformed payee
    lines.append(
        (
            date(y, 4, 1),
            [
                g.tag(f"JZ{y}99991"),
                1,
                f"{y}-04-01",
                "5011",
                "x",
                "负数借方",
                "-500.00",
                "0",
                "XMBZ",
                payees[1],
                "SP1",
            ],
        )
    )
    lines.append(
        (
            date(y, 4, 2),
            [
                g.tag(f"JZ{y}99992"),
                1,
                f"{y}-04-02",
                "5011",
                "x",
                "收款方错误",
                "500.00",
                "0",
                "XMBZ",
                "XYZ123",
                "SP2",
            ],
        )
    )
    g.m.quarantine += [
        ("finance.vouchers", "debit_yuan.amount"),
        ("finance.vouchers", "payee_code.payee_code"),
    ]
    header = [
        "凭证号",
        "行号",
        "记账日期",
        "科目编码",
        "科目名称",
        "摘要",
        "借方金额",
        "贷方金额",
        "项目编码",
        "收款方编码",
        "审批单号",
    ]
    for d, rs in sorted(g.by_folder(lines).items()):
        g.csv_file("finance", d, "vouchers.csv", header, rs, "gb18030")

    actual = {
        "XMBZ": Decimal("121600.00"),
        "LZJT": Decimal("705432.10"),
        "JZ": totals["JZ"],
        **{p: totals[p] for p in ("LJWW", "XJYW", "YQWZ")},
        "TJ": totals["TJ"] + gap,
    }
    names = {
        "XMBZ": "项目化补助",
        "LZJT": "干部履职津贴",
        "YQWZ": "疫情慰问物资",
        "LJWW": "节日慰问",
        "XJYW": "新就业形态慰问",
        "TJ": "职工体检",
        "JZ": "会员救助",
    }
    budget = []
    for p, amount in actual.items():
        planned = Decimal("120000.00") if p == "XMBZ" else (amount * Decimal("1.2")).quantize(Decimal(1))
        budget.append([y, p, names[p], f"{planned:.2f}"])
    g.m.audit["budget_overrun"] = "XMBZ: 121600.00 posted against a budget of 120000.00"
    g.m.planted.append(("budget_overrun", "XMBZ", actual["XMBZ"] - Decimal("120000.00")))
    header = ["年度", "项目编码", "项目名称", "预算金额"]
    g.csv_file("finance", g.deliveries[0], "budget.csv", header, budget, "gb18030")
    # a byte-identical re-delivery
    g.csv_file("finance", g.deliveries[2], "budget.csv", header, budget, "gb18030")


# ======================================================================== events
def _events(g: _Gen) -> None:
    y = g.y
    acts: list[tuple[date, list[Any]]] = []
    n = 0

    def act(d: date, cat: str, people: int, mode: str = "举办") -> None:
        nonlocal n
        n += 1
        acts.append((d, [g.tag(f"HD{d.year}{n:04d}"), f"{cat}活动{n}", cat, g.fmt(d, n), mode, people]))

    for i in range(63):
        act(g.day_in(y), ("文体", "宣传")[i % 2], 50 + i, ("举办", "参与")[i % 2])
    for i in range(5):
        act(g.day_in(y - 1), "文体", 40)
    for people in g.ints(2350, 5):
        act(g.day_in(y), "安全", people)
    for people in g.ints(436, 4):
        act(g.day_in(y, 1, 6), "疫情防控", people, "参与")
    acts.append((date(y, 3, 1), [g.tag(f"HD{y}9001"), "类别错误", "体育", f"{y}-03-01", "举办", 100]))
    g.m.quarantine.append(("events.activities", "category.allowed_values"))
    for d, rs in sorted(g.by_folder(acts).items()):
        g.csv_file(
            "events",
            d,
            "activities.csv",
            ["活动编号", "名称", "类别", "日期", "参与方式", "参与人次"],
            rs,
            "utf-8",
        )

    counts = [
        ("五一劳动奖状", "区级", 10),
        ("五一劳动奖章", "区级", 30),
        ("工人先锋号", "区级", 20),
        ("市级先进个人", "市级", 6),
        ("市级先进集体", "市级", 3),
        ("优秀志愿者", "区级", 30),
        ("志愿者标兵", "区级", 20),
        ("优秀志愿服务团队", "区级", 10),
        ("安康杯优胜单位", "新区级", 4),
        ("安康杯优胜班组", "新区级", 3),
        ("安康杯优秀组织单位", "新区级", 1),
        ("安康杯优秀组织个人", "新区级", 8),
        ("五一劳动奖状", "新区级", 2),
    ]
    rows = []
    k = 0
    for honour, level, count in counts:
        for _ in range(count):
            k += 1
            rows.append(
                [
                    g.tag(f"RY{y}{k:04d}"),
                    y,
                    honour,
                    level,
                    g.name()
                    if "个人" in honour or "者" in honour or "奖章" in honour
                    else f"{g.fake.company_prefix()}公司",
                ]
            )
    for i in range(6):
        rows.append([g.tag(f"RY{y - 1}{i:04d}"), y - 1, "五一劳动奖章", "区级", g.name()])
    rows.append([g.tag(f"RY{y}9999"), y, "优秀志愿者", "国家级", g.name()])
    g.m.quarantine.append(("events.honours", "level.allowed_values"))
    g.csv_file(
        "events",
        g.deliveries[3],
        "honours.csv",
        ["荣誉编号", "年度", "荣誉", "级别", "获奖对象"],
        rows,
        "utf-8",
    )


TARGETS = {
    "org.new_independent_unions": 107,
    "org.independent_unions_total": 655,
    "org.union_units_total": 2744,
    "org.unions_with_party_org": 263,
    "rights.consultations": 1131,
    "rights.disputes_mediated": 283,
    "rights.disputes_resolved": 226,
    "rights.amount_recovered_yuan": 3498856.37,
    "bargain.evaluated_enterprises": 761,
    "bargain.wage_agreements": 443,
    "bargain.records_entered": 3450,
    "comp.competitions": 14,
    "comp.participants": 20480,
    "welfare.festival_condolence": 39212,
    "welfare.new_form_condolence": 10000,
    "welfare.migrant_health_checks": 721,
    "welfare.relief_cases": 74,
    "welfare.pandemic_supply_recipients": 3912,
    "welfare.pandemic_supply_value_yuan": 986543.21,
    "members.cards_issued_or_renewed": 36000,
    "funds.project_subsidy_enterprises": 28,
    "funds.project_subsidy_yuan": 121600.00,
    "funds.cadre_allowance_yuan": 705432.10,
    "funds.cadre_allowance_enterprises": 265,
    "training.online_views": 6480,
    "training.offline_sessions": 2,
    "training.offline_registrations": 352,
    "events.culture_activities": 63,
    "events.safety_participants": 2350,
    "events.vaccination_volunteers": 436,
    "honours.mayday_certificates": 10,
    "honours.mayday_medals": 30,
    "honours.worker_pioneers": 20,
    "honours.city_individuals": 6,
    "honours.city_collectives": 3,
    "honours.excellent_volunteers": 30,
    "honours.volunteer_models": 20,
    "honours.volunteer_teams": 10,
    "honours.ankang_units": 4,
    "honours.ankang_teams": 3,
    "honours.ankang_org_units": 1,
    "honours.ankang_org_individuals": 8,
}
"""What the demo aims at for the report year (every value inside its seed_range)."""


def generate(
    landing: Path, year: int = 2021, seed: int = 2021, scale: int = 1, workers: int | None = None
) -> Manifest:
    """Write the demo landing zone for ``year`` into ``landing`` (its source folders are replaced).

    ``scale`` N > 1 writes N copies of the zone side by side in the same files, each from its own
    seed and with its own identifiers (union codes, member ids, case, voucher, session… numbers,
    welfare stations), so rows, distinct keys, quarantined rows and planted audit problems are
    N times the zone's; budgets are summed per project. The figures then no longer land in
    their seed ranges: a scaled demo is for benchmarks. The copies are generated by ``workers``
    processes (default: one per CPU) and added to the zone in their order, so the files are the
    same byte for byte whatever the number of workers.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    landing = Path(landing)
    if scale == 1:
        return _generate_one(landing, year, seed, 0)
    landing.mkdir(parents=True, exist_ok=True)
    for source in ("registry", "welfare", "training", "rights", "finance", "events"):
        shutil.rmtree(landing / source, ignore_errors=True)
    (landing / "members.sqlite").unlink(missing_ok=True)
    budgets: dict[Path, dict[tuple[str, str], list[Any]]] = {}
    first: Manifest | None = None
    with tempfile.TemporaryDirectory(dir=landing.parent, prefix=".demo-replica-") as tmp:
        jobs = [(Path(tmp) / f"r{r}", year, seed + r, r) for r in range(scale)]
        for (part, *_), m in zip(jobs, _in_order(jobs, workers), strict=True):
            first = first or m
            _merge_replica(part, landing, budgets)
            if m is not first:
                first.quarantine += m.quarantine
                first.planted += m.planted
            shutil.rmtree(part)
    for path, rows in budgets.items():  # one budget per project: the copies' budgets summed
        _write_csv(
            path,
            ["年度", "项目编码", "项目名称", "预算金额"],
            [[y, code, name, f"{amount:.2f}"] for (y, code), (name, amount) in sorted(rows.items())],
            "gb18030",
            append=False,
        )
    assert first is not None
    first.landing = landing
    first.files = sorted(p for p in landing.rglob("*") if p.is_file())
    first.targets = {}
    return first


def _in_order(jobs: list[tuple[Path, int, int, int]], workers: int | None) -> Iterator[Manifest]:
    """``_generate_one(*job)`` of each job, yielded in the jobs' order, by ``workers`` processes
    with at most two copies per worker written ahead of the one the caller is merging (the
    temporary folder holds a few copies, not all N)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        for job in jobs:
            yield _generate_one(*job)
        return
    # spawned, not forked: the caller may hold threads (Prefect's, a test's) that a fork would copy mid-step
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        ahead: deque[Future[Manifest]] = deque()
        pending = iter(jobs)
        for job in itertools.islice(pending, 2 * workers):
            ahead.append(pool.submit(_generate_one, *job))
        while ahead:
            manifest = ahead.popleft().result()
            for job in itertools.islice(pending, 1):
                ahead.append(pool.submit(_generate_one, *job))
            yield manifest


def _generate_one(landing: Path, year: int, seed: int, replica: int) -> Manifest:
    g = _Gen(landing, year, seed, replica)
    g.landing.mkdir(parents=True, exist_ok=True)
    for source in ("registry", "welfare", "training", "rights", "finance", "events"):
        shutil.rmtree(g.landing / source, ignore_errors=True)
    reg = _registry(g)
    _members(g, reg["union_codes"])
    welfare = _welfare(g)
    _training(g)
    _rights(g, reg["bargaining"])
    _finance(g, reg["payees"], reg["revoked_union"], welfare)
    _events(g)
    g.m.targets = dict(TARGETS)
    return g.m


def _write_csv(
    path: Path, header: list[str] | None, rows: list[list[Any]], encoding: str, append: bool
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode("utf-8" if append and encoding == "utf-8-sig" else encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab" if append else "wb") as fh:
        fh.write(data)


def _merge_replica(part: Path, landing: Path, budgets: dict[Path, dict[tuple[str, str], list[Any]]]) -> None:
    """Add one copy's files to the landing zone: CSV and JSONL rows appended under one header,
    workbooks (their station codes differ) copied, member rows inserted."""
    for src in sorted(p for p in part.rglob("*") if p.is_file()):
        rel = src.relative_to(part)
        dst = landing / rel
        if src.name == "members.sqlite":
            if not dst.exists():
                shutil.copyfile(src, dst)
                continue
            con = sqlite3.connect(dst)
            con.execute("ATTACH DATABASE ? AS part", (str(src),))
            con.execute("INSERT INTO member SELECT * FROM part.member")
            con.execute("INSERT INTO member_card SELECT * FROM part.member_card")
            con.commit()
            con.close()
        elif src.suffix == ".csv":
            encoding = ENCODINGS[rel.parts[0]]
            rows = list(csv.reader(io.StringIO(src.read_bytes().decode(encoding), newline="")))
            if src.name == "budget.csv":
                sums = budgets.setdefault(dst, {})
                for y, code, name, amount in rows[1:]:
                    entry = sums.setdefault((y, code), [name, Decimal(0)])
                    entry[1] += Decimal(amount)
                continue
            _write_csv(dst, None if dst.exists() else rows[0], rows[1:], encoding, append=dst.exists())
        elif src.suffix == ".jsonl":
            dst.parent.mkdir(parents=True, exist_ok=True)
            with dst.open("ab") as fh:
                data = src.read_bytes()
                fh.write(data if data.endswith(b"\n") else data + b"\n")
        else:
            if dst.exists():
                raise AssertionError(f"two copies of the demo both wrote {rel}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
