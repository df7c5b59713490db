"""The hostile-delivery corpus of issue 18: what a careless (or hostile) upstream sends.

Each case is a builder that adds its entries to a copy of the small baseline landing zone
(tests/orchestration/faultkit.py::small_landing, whose files are already loaded in the
template warehouse) and returns what the contract (v1.1, "Hostile and broken input") says
the ledger must show for them. Cases are grouped in the ten classes of the issue. Every
case writes into its own delivery folder (or its own odd name), so all cases can also sit
in one landing zone at once for the combined run.

Figures must not move: hostile rows are quarantined or their file is rejected; a file
that has to carry good rows beside a bad one re-delivers baseline rows unchanged (same key
and values: "latest wins" keeps every figure), and rows that load anew (formula-like
finance text) are on project codes no figure reads.

``python -m tests.hostile.corpus DIR`` writes every case into ``DIR/<case>/`` (each a
landing zone holding only that case's entries, plus the baseline files it copies rows
from) for a person to look at. Nothing generated is committed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import openpyxl

from flows.checksums import resident_id_check_char

BASE_DAY = "2021-04-01"
"""The baseline landing zone's delivery folder (registry also has 2022-01-15)."""
FIRST_DAY = date(2021, 10, 2)
"""Case i delivers into the folder FIRST_DAY + i days: after the baseline, in the report year."""
WELFARE_BASE = "HG01_202012.xlsx"
ENCODING = {"registry": "gb18030", "finance": "gb18030", "rights": "utf-8-sig", "events": "utf-8"}
"""The contract's encodings of the CSV sources (rights: UTF-8 with a byte-order mark)."""
WHOLE = "*"
HONOURS_HEADER = ["荣誉编号", "年度", "荣誉", "级别", "获奖对象"]
CONDOLENCE = ["日期", "慰问项目", "对象类别", "姓名", "身份证号", "所属工会编码", "形式", "金额(元)"]
HEALTH = ["日期", "姓名", "身份证号", "对象类别", "体检机构", "费用(元)"]
RELIEF = ["日期", "姓名", "身份证号", "救助类别", "金额(元)", "审批单号"]
WELFARE_TABLES = ("condolence", "health_checks", "relief")

_SURNAMES = "蔺亓隗"
_GIVEN = "翊珣璟琇蕤芃湉玥珂骞"


# ----------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Entry:
    """One ledger row the run must write: ``table`` is ``*`` for a file rejected whole;
    ``quarantined`` lists (rule, rows) for a loaded table (a row counts for a rule when
    the rule is among the rules it broke)."""

    file: str
    table: str
    status: str
    rule: str | None = None
    quarantined: tuple[tuple[str, int], ...] = ()


def rejected(file: str, rule: str) -> Entry:
    return Entry(file, WHOLE, "rejected", rule)


def loaded(file: str, table: str, **quarantined: int) -> Entry:
    """A loaded table; keyword names are rules with dots written as ``__``."""
    return Entry(
        file, table, "loaded", None, tuple(sorted((k.replace("__", "."), v) for k, v in quarantined.items()))
    )


def workbook_loaded(file: str, **per_table: dict[str, int]) -> list[Entry]:
    return [loaded(file, t, **per_table.get(t, {})) for t in WELFARE_TABLES]


@dataclass(frozen=True)
class Person:
    name: str
    id_card: str
    phone: str


@dataclass
class Ctx:
    """Where a case writes: the landing zone ``root``, a folder ``outside`` it (link targets),
    the case's delivery folder name ``day``; what it wrote (``files``: ledger name -> kind
    csv/jsonl/xlsx), the personal values it used (``pii``), the sources it touched, and how
    many member rows a pull must account for (``members``: table -> rows)."""

    root: Path
    outside: Path
    index: int
    files: dict[str, str] = field(default_factory=dict)
    pii: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    members: dict[str, int] = field(default_factory=dict)
    _people: int = 0

    @property
    def day(self) -> str:
        return (FIRST_DAY + timedelta(days=self.index)).isoformat()

    def person(self) -> Person:
        """Fake personal data unique to this case (valid resident ID, 3-character name, phone)."""
        n = self.index * 4 + self._people
        self._people += 1
        name = _SURNAMES[n % 3] + _GIVEN[(n // 3) % 10] + _GIVEN[(n // 30) % 10]
        first17 = f"110108{1960 + n % 40}{1 + n % 12:02d}{1 + n % 28:02d}{700 + n % 300:03d}"
        p = Person(name, first17 + resident_id_check_char(first17), f"1390{7000000 + n:07d}")
        self.pii += [p.name, p.id_card, p.phone]
        return p

    def path(self, source: str, name: str, day: str | None = None) -> Path:
        return self.root / source / (day or self.day) / name

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def put(self, path: Path, data: bytes, kind: str) -> str:
        """Write a delivered file; returns its ledger name."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rel = self.rel(path)
        self.files[rel] = kind
        self.sources.add(rel.split("/")[0])
        return rel


# ------------------------------------------------------------------- CSV helpers
def base_csv(ctx: Ctx, source: str, name: str) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of a baseline CSV file (the rows the template warehouse loaded)."""
    text = (ctx.root / source / BASE_DAY / name).read_bytes().decode(ENCODING[source])
    rows = [r for r in csv.reader(io.StringIO(text)) if any(f.strip() for f in r)]
    return rows[0], rows[1:]


def csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def csv_bytes(source: str, lines: list[str], newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode(ENCODING[source])


def with_value(row: list[str], header: list[str], column: str, value: str) -> list[str]:
    out = list(row)
    out[header.index(column)] = value
    return out


def csv_case(
    ctx: Ctx,
    source: str,
    name: str,
    column: str,
    value: str | Callable[[str], str],
    person_column: str | None = None,
) -> str:
    """Baseline rows 2 and 3 re-delivered unchanged, then row 1 with ``column`` set to
    ``value`` (or ``value(old)``) and, if given, ``person_column`` set to this case's resident ID."""
    header, rows = base_csv(ctx, source, name)
    old = rows[0][header.index(column)]
    bad = with_value(rows[0], header, column, value(old) if callable(value) else value)
    if person_column:
        bad = with_value(bad, header, person_column, ctx.person().id_card)
    lines = [csv_line(header), csv_line(rows[1]), csv_line(rows[2]), csv_line(bad)]
    return ctx.put(ctx.path(source, name), csv_bytes(source, lines), "csv")


def middle(text: str, ch: str) -> str:
    """``ch`` inside the value (not at an end, where control characters are stripped)."""
    text = text.strip() or "值值"
    cut = max(1, len(text) // 2)
    return text[:cut] + ch + text[cut:]


# ----------------------------------------------------------------- JSONL helpers
def base_jsonl(ctx: Ctx, name: str) -> list[dict]:
    text = (ctx.root / "training" / BASE_DAY / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def jsonl_bytes(objects: list[object]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode("utf-8")


def jsonl_case(ctx: Ctx, file: str, **over: object) -> str:
    """Baseline lines 2 and 3 unchanged, then line 1 with ``over`` applied (attendance: with
    this case's person, so that the key is new and the row carries personal data)."""
    rows = base_jsonl(ctx, file)
    bad = dict(rows[0])
    if file == "attendance.jsonl":
        p = ctx.person()
        bad.update(id_card=p.id_card, name=p.name)
    bad.update(over)
    return ctx.put(ctx.path("training", file), jsonl_bytes([rows[1], rows[2], bad]), "jsonl")


# ------------------------------------------------------------------ xlsx helpers
def base_workbook(ctx: Ctx) -> openpyxl.Workbook:
    return openpyxl.load_workbook(ctx.root / "welfare" / BASE_DAY / WELFARE_BASE)


def workbook_bytes(wb: openpyxl.Workbook, escapes: dict[str, str] | None = None) -> bytes:
    """The saved workbook; ``escapes`` replaces placeholder text in its XML parts with raw
    OOXML (``_x0001_``: openpyxl refuses to write control characters into cells)."""
    buf = io.BytesIO()
    wb.save(buf)
    if not escapes:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".xml"):
                for placeholder, raw in escapes.items():
                    data = data.replace(placeholder.encode(), raw.encode())
            dst.writestr(info, data)
    return out.getvalue()


def welfare_file(ctx: Ctx, data: bytes, name: str = WELFARE_BASE) -> str:
    """The baseline station and month again (the workbook replaces it), in the case's folder."""
    return ctx.put(ctx.path("welfare", name), data, "xlsx")


def person_row(ctx: Ctx, sheet: str, **over: object) -> list[object]:
    p = ctx.person()
    from datetime import datetime

    rows = {
        "慰问": [datetime(2020, 12, 9), "两节慰问", "农民工", p.name, p.id_card, None, "现金", 300],
        "体检": [datetime(2020, 12, 9), p.name, p.id_card, "农民工", "第一医院", 200],
        "救助": [datetime(2020, 12, 9), p.name, p.id_card, "大病救助", 1000, "SP202012001"],
    }
    header = {"慰问": CONDOLENCE, "体检": HEALTH, "救助": RELIEF}[sheet]
    row = rows[sheet]
    for k, v in over.items():
        row[header.index(k)] = v
    return row


# ------------------------------------------------------------- members helpers
MEMBER_COLUMNS = (
    "member_id, id_card, name, phone, union_code, employment_form, is_migrant, is_veteran, "
    "joined_on, updated_at, deleted_at"
)


def members_db(ctx: Ctx) -> sqlite3.Connection:
    ctx.sources.add("members")
    return sqlite3.connect(ctx.root / "members.sqlite")


def new_member(ctx: Ctx, member_id: int, updated_at: str, name: str | None = None) -> None:
    """A member row the next pull sees (id beyond the baseline's 300)."""
    p = ctx.person()
    con = members_db(ctx)
    con.execute(
        f"INSERT INTO member ({MEMBER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            member_id,
            p.id_card,
            name if name is not None else p.name,
            p.phone,
            "GH1201000001",
            "standard",
            0,
            0,
            "2021-03-01",
            updated_at,
            None,
        ),
    )
    con.commit()
    con.close()
    ctx.members["member"] = ctx.members.get("member", 0) + 1


# ======================================================================= cases
@dataclass(frozen=True)
class Case:
    """``build`` writes the case into a landing zone and returns the ledger rows the run must
    write; ``again`` (rare) changes the landing zone after that run and returns what a second
    run must write; ``solo`` cases cannot share a landing zone with the others (they replace
    a whole source folder) and stay out of the combined run."""

    name: str
    klass: str
    build: Callable[[Ctx], list[Entry]]
    again: Callable[[Ctx], list[Entry]] | None = None
    solo: bool = False


CASES: list[Case] = []


def case(
    klass: str, *, solo: bool = False, again: Callable[[Ctx], list[Entry]] | None = None
) -> Callable[[Callable[[Ctx], list[Entry]]], Callable[[Ctx], list[Entry]]]:
    def register(fn: Callable[[Ctx], list[Entry]]) -> Callable[[Ctx], list[Entry]]:
        CASES.append(Case(fn.__name__, klass, fn, again, solo))
        return fn

    return register


# --- 1 future-dated member rows ------------------------------------------------
FUTURE = "2099-01-01 00:00:00"


def _later_change(ctx: Ctx) -> list[Entry]:
    """After the run that met the 2099 row: member 7 changes (same values, a valid time
    after the old watermark): the next pull must still fetch it, so the watermark did not
    jump to 2099. The 2099 row may be met (and quarantined) again."""
    con = members_db(ctx)
    con.execute("UPDATE member SET updated_at = '2021-12-20 10:00:00' WHERE member_id = 7")
    con.commit()
    con.close()
    return [loaded("members/member", "member")]


@case("future_members", again=_later_change)
def member_2099_then_later_change(ctx: Ctx) -> list[Entry]:
    new_member(ctx, 9000 + ctx.index, FUTURE)
    return [loaded("members/member", "member", updated_at__after_delivery=1)]


@case("future_members")
def member_existing_row_moved_to_2099(ctx: Ctx) -> list[Entry]:
    con = members_db(ctx)
    con.execute("UPDATE member SET updated_at = ? WHERE member_id = 11", (FUTURE,))
    con.commit()
    con.close()
    ctx.members["member"] = 1
    return [loaded("members/member", "member", updated_at__after_delivery=1)]


@case("future_members")
def member_card_2099(ctx: Ctx) -> list[Entry]:
    con = members_db(ctx)
    con.execute(
        "INSERT INTO member_card (card_event_id, member_id, card_no, action, action_on, updated_at) "
        "VALUES (?, 12, 'K2021009999', 'renew', '2021-06-01', ?)",
        (9000 + ctx.index, FUTURE),
    )
    con.commit()
    con.close()
    ctx.members["member_card"] = 1
    return [loaded("members/member_card", "member_card", updated_at__after_delivery=1)]


# --- 2 NUL and other control characters --------------------------------------------
def _ctrl_csv(
    source: str, name: str, column: str, ch: str, person_column: str | None = None
) -> Callable[[Ctx], list[Entry]]:
    def build(ctx: Ctx) -> list[Entry]:
        rel = csv_case(ctx, source, name, column, lambda old: middle(old, ch), person_column)
        return [loaded(rel, name.removesuffix(".csv"), row__control_characters=1)]

    return build


for _name, _args in {
    "registry_enterprises_nul_gb18030": ("registry", "enterprises.csv", "企业名称", "\x00"),
    "registry_unions_soh_gb18030": ("registry", "unions.csv", "工会名称", "\x01"),
    "finance_vouchers_escape_gb18030": ("finance", "vouchers.csv", "摘要", "\x1b"),
    "finance_budget_backspace_gb18030": ("finance", "budget.csv", "项目名称", "\x08"),
    "events_activities_vertical_tab_utf8": ("events", "activities.csv", "名称", "\x0b"),
    "rights_cases_nul_bom_utf8": ("rights", "cases.csv", "案件编号", "\x00", "职工身份证号"),
    "rights_bargaining_soh_bom_utf8": ("rights", "bargaining.csv", "开展集体协商", "\x01"),
}.items():
    CASES.append(Case(_name, "control_characters", _ctrl_csv(*_args)))


@case("control_characters")
def events_control_at_ends_not_stripped(ctx: Ctx) -> list[Entry]:
    """\\x01 and \\x1f at the ends of a value are control characters, not whitespace (contract
    v1.1: an error wherever they stand; only spaces, NBSP and U+3000 are stripped)."""
    header, rows = base_csv(ctx, "events", "activities.csv")
    row = with_value(rows[0], header, "名称", "\x01" + rows[0][header.index("名称")] + "\x1f")
    rel = ctx.put(
        ctx.path("events", "activities.csv"),
        csv_bytes("events", [csv_line(header), csv_line(rows[1]), csv_line(row)]),
        "csv",
    )
    return [loaded(rel, "activities", row__control_characters=1)]


@case("control_characters")
def events_nul_at_end_not_stripped(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "events", "activities.csv")
    row = with_value(rows[0], header, "名称", rows[0][header.index("名称")] + "\x00")
    rel = ctx.put(
        ctx.path("events", "activities.csv"),
        csv_bytes("events", [csv_line(header), csv_line(rows[1]), csv_line(row)]),
        "csv",
    )
    return [loaded(rel, "activities", row__control_characters=1)]


def _ctrl_xlsx(sheet: str, column: str, escape: str) -> Callable[[Ctx], list[Entry]]:
    """A new row (this case's person) whose ``column`` holds ``escape`` (``_x0001_``: the
    OOXML escape of a control character) in the middle, on the baseline workbook's sheet."""
    table = {"慰问": "condolence", "体检": "health_checks", "救助": "relief"}[sheet]

    def build(ctx: Ctx) -> list[Entry]:
        wb = base_workbook(ctx)
        row = person_row(ctx, sheet)
        header = [c.value for c in wb[sheet][1]]
        value = str(row[header.index(column)])
        placeholder = f"QQCTRL{ctx.index}QQ"
        row[header.index(column)] = placeholder
        wb[sheet].append(row)
        data = workbook_bytes(wb, {placeholder: value[:1] + escape + value[1:]})
        rel = welfare_file(ctx, data)
        return workbook_loaded(rel, **{table: {"row__control_characters": 1}})

    return build


CASES.append(
    Case("welfare_condolence_name_soh_xlsx", "control_characters", _ctrl_xlsx("慰问", "姓名", "_x0001_"))
)
CASES.append(
    Case("welfare_relief_approval_nul_xlsx", "control_characters", _ctrl_xlsx("救助", "审批单号", "_x0000_"))
)


@case("control_characters")
def training_sessions_nul_json_escape(ctx: Ctx) -> list[Entry]:
    rows = base_jsonl(ctx, "sessions.jsonl")
    bad = dict(rows[0], title=middle(rows[0]["title"], "\u0000"))
    rel = ctx.put(ctx.path("training", "sessions.jsonl"), jsonl_bytes([rows[1], rows[2], bad]), "jsonl")
    return [loaded(rel, "sessions", row__control_characters=1)]


@case("control_characters")
def training_attendance_escape_in_name(ctx: Ctx) -> list[Entry]:
    rows = base_jsonl(ctx, "attendance.jsonl")
    p = ctx.person()
    bad = dict(rows[0], id_card=p.id_card, name=p.name[:1] + "\u001b" + p.name[1:])
    rel = ctx.put(ctx.path("training", "attendance.jsonl"), jsonl_bytes([rows[1], rows[2], bad]), "jsonl")
    return [loaded(rel, "attendance", row__control_characters=1)]


@case("control_characters")
def members_name_soh(ctx: Ctx) -> list[Entry]:
    p = ctx.person()
    new_member(ctx, 9000 + ctx.index, "2021-11-30 10:00:00", name=p.name[:1] + "\x01" + p.name[1:])
    return [loaded("members/member", "member", row__control_characters=1)]


# --- 3 header row lost (every source with a personal column) ---------------------------
@case("header_lost")
def rights_cases_header_lost(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "rights", "cases.csv")
    first = with_value(rows[0], header, "职工身份证号", ctx.person().id_card)
    rel = ctx.put(
        ctx.path("rights", "cases.csv"), csv_bytes("rights", [csv_line(first), csv_line(rows[1])]), "csv"
    )
    return [rejected(rel, "batch.columns")]


@case("header_lost")
def events_honours_header_lost(ctx: Ctx) -> list[Entry]:
    p = ctx.person()
    lines = [
        csv_line([f"RY{ctx.index}01", "2021", "优秀志愿者", "区级", p.name]),
        csv_line([f"RY{ctx.index}02", "2021", "志愿者标兵", "区级", ctx.person().name]),
    ]
    rel = ctx.put(ctx.path("events", "honours.csv"), csv_bytes("events", lines), "csv")
    return [rejected(rel, "batch.columns")]


def _xlsx_header_lost(sheet: str) -> Callable[[Ctx], list[Entry]]:
    def build(ctx: Ctx) -> list[Entry]:
        wb = base_workbook(ctx)
        ws = wb[sheet]
        rows = [list(r) for r in ws.iter_rows(values_only=True)][1:]
        wb.remove(ws)
        ws = wb.create_sheet(sheet)
        ws.append(person_row(ctx, sheet))
        for r in rows:
            ws.append(r)
        return [rejected(welfare_file(ctx, workbook_bytes(wb)), "batch.columns")]

    return build


for _sheet, _label in (("慰问", "condolence"), ("体检", "health_checks"), ("救助", "relief")):
    CASES.append(Case(f"welfare_{_label}_header_lost", "header_lost", _xlsx_header_lost(_sheet)))


# --- 4 formula-like text (finance): loads as text ----------------------------------
def _formula(column: str, value: str) -> Callable[[Ctx], list[Entry]]:
    """A new voucher on project JZ (member relief: no figure reads finance's JZ lines) whose
    ``column`` starts like a spreadsheet formula."""

    def build(ctx: Ctx) -> list[Entry]:
        header, rows = base_csv(ctx, "finance", "vouchers.csv")
        row = with_value(rows[0], header, "凭证号", f"JZ2021{8000 + ctx.index}")
        row = with_value(row, header, "项目编码", "JZ")
        row = with_value(row, header, "收款方编码", "")
        row = with_value(row, header, column, value)
        rel = ctx.put(
            ctx.path("finance", "vouchers.csv"),
            csv_bytes("finance", [csv_line(header), csv_line(row)]),
            "csv",
        )
        return [loaded(rel, "vouchers")]

    return build


CASES.append(
    Case(
        "finance_summary_hyperlink_formula",
        "formula_text",
        _formula("摘要", '=HYPERLINK("http://example.invalid/x","点击")'),
    )
)
CASES.append(Case("finance_summary_plus_formula", "formula_text", _formula("摘要", "+1+cmd|' /C calc'!A0")))
CASES.append(Case("finance_voucher_no_minus_formula", "formula_text", _formula("凭证号", "-2+3")))


@case("formula_text")
def finance_budget_name_at_formula(ctx: Ctx) -> list[Entry]:
    """A baseline budget line re-delivered with a formula-like 项目名称 (no figure reads the budget)."""
    header, rows = base_csv(ctx, "finance", "budget.csv")
    row = with_value(rows[-1], header, "项目名称", "@SUM(A1:A9)")
    rel = ctx.put(
        ctx.path("finance", "budget.csv"), csv_bytes("finance", [csv_line(header), csv_line(row)]), "csv"
    )
    return [loaded(rel, "budget")]


# --- 5 symlinks ---------------------------------------------------------------
@case("symlinks")
def link_file_outside(ctx: Ctx) -> list[Entry]:
    target = ctx.outside / f"case{ctx.index}" / "activities.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.root / "events" / BASE_DAY / "activities.csv", target)
    link = ctx.path("events", "activities.csv")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    ctx.sources.add("events")
    return [rejected(ctx.rel(link), "batch.outside_landing")]


@case("symlinks")
def link_delivery_folder_outside(ctx: Ctx) -> list[Entry]:
    target = ctx.outside / f"case{ctx.index}"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.root / "rights" / BASE_DAY / "cases.csv", target / "cases.csv")
    link = ctx.root / "rights" / ctx.day
    link.symlink_to(target, target_is_directory=True)
    ctx.sources.add("rights")
    return [rejected(ctx.rel(link), "batch.outside_landing")]


@case("symlinks", solo=True)
def link_source_folder_outside(ctx: Ctx) -> list[Entry]:
    """The whole training folder is a link out of the landing zone (solo: it takes the
    source away from every other case)."""
    target = ctx.outside / f"case{ctx.index}" / "training"
    shutil.copytree(ctx.root / "training", target)
    shutil.rmtree(ctx.root / "training")
    (ctx.root / "training").symlink_to(target, target_is_directory=True)
    ctx.sources.add("training")
    return [rejected("training", "batch.outside_landing")]


@case("symlinks")
def link_dangling(ctx: Ctx) -> list[Entry]:
    link = ctx.path("finance", "vouchers.csv")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(ctx.outside / f"case{ctx.index}-gone" / "vouchers.csv")
    ctx.sources.add("finance")
    return [rejected(ctx.rel(link), "batch.not_a_file")]


@case("symlinks")
def fifo_as_csv(ctx: Ctx) -> list[Entry]:
    fifo = ctx.path("registry", "enterprises.csv")
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    ctx.sources.add("registry")
    return [rejected(ctx.rel(fifo), "batch.not_a_file")]


@case("symlinks")
def link_file_inside_allowed(ctx: Ctx) -> list[Entry]:
    """A link to a baseline file inside the landing zone is followed: same bytes as a file
    already loaded, so nothing is written and nothing rejected."""
    link = ctx.path("events", "activities.csv")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path("..") / BASE_DAY / "activities.csv")
    ctx.sources.add("events")
    return []


@case("symlinks")
def link_delivery_folder_inside_allowed(ctx: Ctx) -> list[Entry]:
    (ctx.root / "finance" / ctx.day).symlink_to(BASE_DAY, target_is_directory=True)
    ctx.sources.add("finance")
    return []


# --- 6 unbalanced quotes ------------------------------------------------------
def _quote(source: str, name: str, column: str, last: bool) -> Callable[[Ctx], list[Entry]]:
    """A field opened with ``"`` and never closed, in the middle of the file (it would swallow
    the lines after it) or on its last line."""

    def build(ctx: Ctx) -> list[Entry]:
        header, rows = base_csv(ctx, source, name)
        good = [csv_line(r) for r in rows[1:4]]
        parts = [csv_line([f]) for f in rows[0]]
        parts[header.index(column)] = '"' + rows[0][header.index(column)]
        bad = ",".join(parts)
        lines = [csv_line(header), *good, bad] if last else [csv_line(header), good[0], bad, *good[1:]]
        return [rejected(ctx.put(ctx.path(source, name), csv_bytes(source, lines), "csv"), "batch.structure")]

    return build


for _source, _name, _column in (
    ("registry", "enterprises.csv", "企业名称"),
    ("registry", "unions.csv", "工会名称"),
    ("rights", "cases.csv", "类型"),
    ("rights", "bargaining.csv", "年度"),
    ("finance", "vouchers.csv", "摘要"),
    ("finance", "budget.csv", "项目名称"),
    ("events", "activities.csv", "名称"),
):
    _stem = _name.removesuffix(".csv")
    CASES.append(
        Case(f"{_source}_{_stem}_quote_middle", "unbalanced_quotes", _quote(_source, _name, _column, False))
    )
CASES.append(
    Case(
        "events_activities_quote_last_line",
        "unbalanced_quotes",
        _quote("events", "activities.csv", "名称", True),
    )
)
CASES.append(
    Case(
        "finance_vouchers_quote_last_line",
        "unbalanced_quotes",
        _quote("finance", "vouchers.csv", "摘要", True),
    )
)


# --- 7 wrong structure --------------------------------------------------------
def _json_array(name: str, pretty: bool) -> Callable[[Ctx], list[Entry]]:
    def build(ctx: Ctx) -> list[Entry]:
        rows = base_jsonl(ctx, name)[:3]
        if name == "attendance.jsonl":
            p = ctx.person()
            rows[0] = dict(rows[0], id_card=p.id_card, name=p.name)
        text = json.dumps(rows, ensure_ascii=False, indent=2 if pretty else None) + "\n"
        rel = ctx.put(ctx.path("training", name), text.encode("utf-8"), "jsonl")
        return [rejected(rel, "batch.structure")]

    return build


CASES.append(Case("training_sessions_json_array", "wrong_structure", _json_array("sessions.jsonl", False)))
CASES.append(
    Case("training_attendance_pretty_array", "wrong_structure", _json_array("attendance.jsonl", True))
)
CASES.append(
    Case("training_competitions_json_array", "wrong_structure", _json_array("competitions.jsonl", False))
)


@case("wrong_structure")
def training_sessions_no_object_line(ctx: Ctx) -> list[Entry]:
    rel = ctx.put(ctx.path("training", "sessions.jsonl"), b'1\n"S202100"\n[1, 2]\nnull\n', "jsonl")
    return [rejected(rel, "batch.structure")]


@case("wrong_structure")
def welfare_csv_renamed_xlsx(ctx: Ctx) -> list[Entry]:
    data = (",".join(CONDOLENCE) + "\n2020-12-09,两节慰问,农民工,某某,,,现金,300\n").encode("utf-8")
    return [rejected(welfare_file(ctx, data), "batch.structure")]


@case("wrong_structure")
def welfare_random_bytes(ctx: Ctx) -> list[Entry]:
    import random

    data = random.Random(ctx.index).randbytes(4096)
    return [rejected(welfare_file(ctx, data), "batch.structure")]


@case("wrong_structure")
def welfare_empty_zip(ctx: Ctx) -> list[Entry]:
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return [rejected(welfare_file(ctx, buf.getvalue()), "batch.structure")]


@case("wrong_structure")
def events_semicolon_data_under_comma_header(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "events", "activities.csv")
    lines = [",".join(header), *(";".join(r) for r in rows[:3])]
    return [
        rejected(
            ctx.put(ctx.path("events", "activities.csv"), csv_bytes("events", lines), "csv"),
            "batch.structure",
        )
    ]


@case("wrong_structure")
def registry_tab_data_under_comma_header(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "registry", "enterprises.csv")
    lines = [",".join(header), *("\t".join(r) for r in rows[:3])]
    return [
        rejected(
            ctx.put(ctx.path("registry", "enterprises.csv"), csv_bytes("registry", lines), "csv"),
            "batch.structure",
        )
    ]


# --- 8 unknown folders and root files ------------------------------------------
def _unknown_top(entry: str, folder: bool) -> Callable[[Ctx], list[Entry]]:
    def build(ctx: Ctx) -> list[Entry]:
        path = ctx.root / entry
        if folder:
            (path / ctx.day).mkdir(parents=True)
            shutil.copy(ctx.root / "events" / BASE_DAY / "activities.csv", path / ctx.day / "activities.csv")
        else:
            path.write_text("notes of the upstream team\n", encoding="utf-8")
        return [Entry(entry, WHOLE, "rejected", "batch.unknown_source")]

    return build


CASES.append(Case("top_folder_hr", "unknown_entries", _unknown_top("hr", True)))
CASES.append(Case("top_folder_Events_capitalised", "unknown_entries", _unknown_top("Events", True)))
CASES.append(Case("top_folder_REGISTRY_upper", "unknown_entries", _unknown_top("REGISTRY", True)))
CASES.append(Case("top_file_notes_txt", "unknown_entries", _unknown_top("notes.txt", False)))


def _unknown_file(source: str, rel_in_source: str, base: str) -> Callable[[Ctx], list[Entry]]:
    """A baseline file copied to ``<source>/<rel_in_source>`` ({day}: the case's folder) with a
    changed last line, so that its bytes are new."""

    def build(ctx: Ctx) -> list[Entry]:
        path = ctx.root / source / rel_in_source.format(day=ctx.day)
        data = (ctx.root / source / BASE_DAY / base).read_bytes()
        return [rejected(ctx.put(path, data + b"\n", "csv"), "batch.unknown_file")]

    return build


for _name, _args in {
    "folder_month_13": ("events", "2021-13-01/activities.csv", "activities.csv"),
    "folder_february_30": ("rights", "2021-02-30/cases.csv", "cases.csv"),
    "folder_named_latest": ("finance", "latest/budget.csv", "budget.csv"),
    "file_in_sub_folder": ("events", "{day}/extra/activities.csv", "activities.csv"),
    "file_outside_delivery_folder": ("registry", "enterprises.csv", "enterprises.csv"),
    "unknown_file_name": ("rights", "{day}/case.csv", "cases.csv"),
    "welfare_name_without_month": ("welfare", "{day}/HG01_2020-12.xlsx", WELFARE_BASE),
}.items():
    _src, _rel, _base = _args
    CASES.append(Case(_name, "unknown_entries", _unknown_file(_src, _rel, _base)))


@case("unknown_entries")
def empty_folder_not_a_date(ctx: Ctx) -> list[Entry]:
    (ctx.root / "events" / f"tmp{ctx.index}").mkdir(parents=True)
    ctx.sources.add("events")
    return [rejected(f"events/tmp{ctx.index}", "batch.unknown_file")]


# --- 9 JSON types ---------------------------------------------------------------
for _name, (_file, _over) in {
    "sessions_title_number": ("sessions.jsonl", {"title": 123}),
    "sessions_title_object": ("sessions.jsonl", {"title": {"zh": "讲座"}}),
    "sessions_mode_array": ("sessions.jsonl", {"mode": ["online"]}),
    "attendance_name_array": ("attendance.jsonl", {"name": ["某某"]}),
    "competitions_participants_string": ("competitions.jsonl", {"participants": "120"}),
    "competitions_participants_exponent": ("competitions.jsonl", {"participants": 1e3}),
    "competitions_participants_fraction": ("competitions.jsonl", {"participants": 12.5}),
    "competitions_participants_true": ("competitions.jsonl", {"participants": True}),
    "attendance_replay_views_string": ("attendance.jsonl", {"replay_views": "5"}),
    "attendance_registered_string_true": ("attendance.jsonl", {"registered": "true"}),
    "attendance_attended_one": ("attendance.jsonl", {"attended": 1}),
}.items():

    def _build(ctx: Ctx, file: str = _file, over: dict = _over) -> list[Entry]:
        rel = jsonl_case(ctx, file, **over)
        return [loaded(rel, file.removesuffix(".jsonl"), row__json_type=1)]

    CASES.append(Case(f"training_{_name}", "json_types", _build))


# --- 10 what else a careless upstream sends ------------------------------------------
@case("other")
def rights_ragged_rows(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "rights", "cases.csv")
    short = with_value(rows[0], header, "职工身份证号", ctx.person().id_card)[:5]
    long = with_value(rows[3], header, "职工身份证号", ctx.person().id_card) + ["多余"]
    lines = [csv_line(header), csv_line(rows[1]), csv_line(short), csv_line(rows[2]), csv_line(long)]
    rel = ctx.put(ctx.path("rights", "cases.csv"), csv_bytes("rights", lines), "csv")
    return [loaded(rel, "cases", row__parse=2)]


@case("other")
def events_duplicate_header(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "events", "activities.csv")
    lines = [csv_line(header + ["名称"]), *(csv_line(r + ["x"]) for r in rows[:2])]
    return [
        rejected(
            ctx.put(ctx.path("events", "activities.csv"), csv_bytes("events", lines), "csv"), "batch.columns"
        )
    ]


@case("other")
def registry_gb18030_with_utf8_bom(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "registry", "enterprises.csv")
    data = b"\xef\xbb\xbf" + csv_bytes("registry", [csv_line(header), csv_line(rows[1])])
    return [rejected(ctx.put(ctx.path("registry", "enterprises.csv"), data, "csv"), "batch.encoding")]


@case("other")
def finance_crlf_line_ends(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "finance", "vouchers.csv")
    data = csv_bytes("finance", [csv_line(header), *(csv_line(r) for r in rows[:3])], newline="\r\n")
    return [loaded(ctx.put(ctx.path("finance", "vouchers.csv"), data, "csv"), "vouchers")]


@case("other")
def events_cr_only_line_ends(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "events", "activities.csv")
    data = csv_bytes("events", [csv_line(header), *(csv_line(r) for r in rows[:3])], newline="\r")
    return [loaded(ctx.put(ctx.path("events", "activities.csv"), data, "csv"), "activities")]


@case("other")
def rights_blank_lines_between_rows(ctx: Ctx) -> list[Entry]:
    header, rows = base_csv(ctx, "rights", "cases.csv")
    lines = [csv_line(header), "", csv_line(rows[0]), "  ", csv_line(rows[1]), ""]
    return [loaded(ctx.put(ctx.path("rights", "cases.csv"), csv_bytes("rights", lines), "csv"), "cases")]


@case("other")
def training_competitions_zero_bytes(ctx: Ctx) -> list[Entry]:
    return [rejected(ctx.put(ctx.path("training", "competitions.jsonl"), b"", "jsonl"), "batch.empty")]


@case("other")
def welfare_zero_bytes(ctx: Ctx) -> list[Entry]:
    return [rejected(welfare_file(ctx, b""), "batch.empty")]


@case("other")
def finance_huge_field(ctx: Ctx) -> list[Entry]:
    """A 1 MB 摘要 on a new JZ voucher: over the CSV reader's field limit (131,072 characters,
    docs/validation.md "What bad input gets"), the file is rejected with that reason, never cut short."""
    [entry] = _formula("摘要", "长" * 1_000_000)(ctx)
    return [rejected(entry.file, "batch.unreadable")]


@case("other")
def events_header_only(ctx: Ctx) -> list[Entry]:
    header, _ = base_csv(ctx, "events", "activities.csv")
    rel = ctx.put(ctx.path("events", "activities.csv"), csv_bytes("events", [csv_line(header)]), "csv")
    return [loaded(rel, "activities")]


@case("other")
def welfare_sheet_missing(ctx: Ctx) -> list[Entry]:
    wb = base_workbook(ctx)
    wb.remove(wb["救助"])
    return [rejected(welfare_file(ctx, workbook_bytes(wb)), "batch.sheets")]


# ====================================================================== use
def physical_lines(path: Path, kind: str) -> int:
    """Data lines as a person counts them: CSV non-blank lines after the header, JSONL non-blank
    lines, xlsx non-blank rows after each sheet's header (summed)."""
    if kind == "xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            return sum(
                sum(
                    1 for r in list(ws.iter_rows(values_only=True))[1:] if any(v not in (None, "") for v in r)
                )
                for ws in wb.worksheets
            )
        finally:
            wb.close()
    text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = [line for line in text.split(b"\n") if line.strip()]
    return len(lines) - (1 if kind == "csv" and lines else 0)


def build(case_: Case, root: Path, outside: Path, index: int) -> tuple[Ctx, list[Entry]]:
    ctx = Ctx(root, outside, index)
    return ctx, case_.build(ctx)


def counts_by_class() -> dict[str, int]:
    out: dict[str, int] = {}
    for c in CASES:
        out[c.klass] = out.get(c.klass, 0) + 1
    return out


def main(argv: list[str]) -> int:
    """Write each case, with the baseline landing zone it builds on, into ``DIR/<case>/``."""
    from tests.orchestration.faultkit import small_landing

    if len(argv) != 1:
        print("usage: python -m tests.hostile.corpus DIR", file=sys.stderr)
        return 2
    target = Path(argv[0])
    base = small_landing(target / "_baseline")
    for i, c in enumerate(CASES):
        root = target / c.name / "landing"
        shutil.copytree(base, root, symlinks=True)
        _ctx, expected = build(c, root, target / c.name / "outside", i)
        said = ", ".join(f"{e.file} {e.table} {e.status} {e.rule or ''}" for e in expected)
        print(f"{c.klass:<20} {c.name:<45} {said}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
