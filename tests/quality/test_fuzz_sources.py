"""Fuzzing every source through the nightly flow's quality gate (hypothesis).

Complements the hand-written corpus (test_malformed_corpus.py): hypothesis draws
whole deliveries (a list of rows per example, plus one file-level twist) for the
six file sources (CSV: registry, rights, finance, events; JSON Lines: training;
xlsx: welfare) and for the member platform (a real SQLite database). Each
delivery is written to disk in a fresh landing zone and goes through exactly the
code the nightly flow runs: ``common.discover`` -> ``screen_delivery`` (read ->
real Great Expectations validation -> batch gates); the members tables through
``members.read_page`` -> ``runner.validate`` -> ``screen.gate``. No mocks.

A **case** is one generated data row (blank records and headers are not
counted). Every source must see at least ``MIN_CASES`` cases per run; each test
asserts this and prints its count.

Rows are drawn in four classes, mixed in every file:

- *valid*: a contract-conforming row, rendered in any accepted form (full-width
  text, NBSP/U+3000/zero-width padding, every date form, thousands separators,
  lower-case IDs, xlsx date cells and serial numbers, JSON numbers, 0/1 in the
  database ...): it must load (or be quarantined only as a duplicate key, when
  the generator duplicated its key);
- *malign*: one deliberate contract breach whose rule is known (bad USCC/ID check
  character, impossible or future date, negative amount, unknown code, blank
  required value ...): it must be quarantined, with that rule among its rules;
- *garbage*: cells replaced by arbitrary unicode junk, odd JSON types, blobs,
  formulas, merged cells ...: any outcome, as long as it is clean;
- *ragged*: a record that cannot be parsed (wrong field count, invalid JSON, a
  JSON array): quarantined under ``row.parse``.

and one file-level twist per delivery (mostly none): wrong encoding, BOM,
GBK instead of GB18030, missing/duplicated/extra/reordered columns, 万元 and
unknown unit headers, header-only and empty files, leading blank lines, a cell
over the CSV field limit, missing/duplicated/empty sheets, truncated workbooks,
missing key in every JSON record, missing database table or column.

Asserted for every delivery: nothing raises (a file may only be rejected by a
``BatchError`` whose rule is a known ``batch.*`` rule, and only the one the twist
calls for); every data row is either loaded or quarantined, exactly once, compared
by its row identity (the record/line/sheet row number in a file, the primary key
in the database, with the row's ``_original`` checked against what was written);
every quarantine row names only rules of its table's expectation suite, with a
reason in English and Chinese. Beyond that, the generators know what they made:
a *valid* row must pass (or carry exactly ``key.unique_in_delivery`` when its key
was duplicated on purpose), a *malign* row must carry its rule, a *ragged* one
``row.parse``; a file whose certain duplicates exceed the gate's share must be
held back by ``batch.duplicate_keys``, and no other file may be. The members
tables are also pulled in pages (a first page of k rows then the rest; pages of
a few rows), which must read every row exactly once.

Each example is one file (one Great Expectations validation per table), so the
cost is per example, not per row: ``EXAMPLES`` examples of 64-96 rows per CSV and
JSONL source, three sheets of 22-34 rows per workbook, 40-60 + 24-36 rows per
members database. Shrinking is off (it re-runs GE hundreds of times); a failure
prints the ``@reproduce_failure`` blob, and ``FUZZ_SHRINK=1`` turns shrinking on.

Found by these generators and fixed in flows/ (each has a deterministic test at the
end of this file): a JSON Lines line that is valid JSON but that ``json.loads``
refuses with ValueError (an integer over Python's 4,300-digit limit) or
RecursionError (deep nesting) crashed the training reader; a paged members pull
lost every row after a page that ended on a row whose ``updated_at`` is NULL.

The last test runs a real ``unionwh run`` (subprocess, local Prefect server, DuckDB
warehouse; load, dbt build, docs, figures, annual summary) over a landing zone of
fuzzed files and a fuzzed members database: it must end with exit 0 or 1, no
traceback, and a ledger that conserves rows (read = loaded + quarantined; a
rejected file loads nothing), with the raw and quarantine tables holding exactly
the rows the ledger says.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import sqlite3
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from flows import schema
from flows.checksums import USCC_ALPHABET, resident_id_check_char, uscc_check_char
from flows.errors import BatchError
from flows.quality.gates import DUPLICATE_RULE
from flows.quality.runner import validate_files
from flows.quality.screen import WHOLE_FILE, Outcome, gate, screen_delivery
from flows.quality.suites import load_suite_dict
from flows.schema import Column, Table
from flows.settings import QualitySettings
from flows.sources import common, members

MIN_CASES = 1000
MIN_VALIDATED = 100
"""A floor on the rows that reach row validation (not held back in a rejected file): the
generators must not drift into rejecting nearly every file."""
DELIVERY = date(2021, 6, 30)
PULLED_ON = date(2021, 10, 1)
QUALITY = QualitySettings()
KNOWN_BATCH_RULES = frozenset(
    {
        "batch.encoding",
        "batch.empty",
        "batch.columns",
        "batch.unreadable",
        "batch.sheets",
        "batch.duplicate_keys",
        "batch.unknown_file",
        "batch.row_count_drop",
        "batch.structure",
    }
)
CASES: Counter[str] = Counter()
"""Generated data rows per source (a 'case' = one row)."""
VALIDATED: Counter[str] = Counter()
"""Of those, rows that reached row validation (the file was not rejected before or by the gates)."""
OUTCOMES: defaultdict[str, Counter[str]] = defaultdict(Counter)
"""Validated rows per source by class and outcome (to see that every class is exercised)."""
REJECTED: defaultdict[str, Counter[str]] = defaultdict(Counter)
"""Generated rows held back in rejected files, per source and batch rule."""


PHASES = tuple(Phase) if os.environ.get("FUZZ_SHRINK") else (Phase.explicit, Phase.reuse, Phase.generate)
"""Shrinking re-runs Great Expectations hundreds of times (minutes): off unless FUZZ_SHRINK is set;
a failure still prints the seed/blob to reproduce it."""


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        phases=PHASES,
        database=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def report(source: str) -> None:
    print(
        f"\n{source}: {CASES[source]} cases (generated rows), {VALIDATED[source]} through row validation, "
        f"held back in rejected files: {dict(REJECTED[source])}; "
        f"validated rows by class: {dict(sorted(OUTCOMES[source].items()))}"
    )


def suite_rules(t: Table) -> frozenset[str]:
    return frozenset(e["meta"]["rule"] for e in load_suite_dict(t)["expectations"])


# ------------------------------------------------------------ valid values
TEXTS = (
    "某某科技有限公司",
    "职工之家",
    "劳动法讲座",
    "Zhang San",
    "张三",
    "李四",
    "新区第一服务站",
    "R&D 部门",
)
WS_PAD = (" ", "\u00a0", "\u3000", "\t", "\u200b", "\ufeff", "\u2003")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def make_uscc(rnd: random.Random, n: int | None = None) -> str:
    if n is None:
        body = "".join(rnd.choice(USCC_ALPHABET) for _ in range(17))
    else:
        body = "91120116MA" + f"{n:07d}"
    return body + uscc_check_char(body)


def make_id(rnd: random.Random, birth: date | None = None) -> str:
    birth = birth or date(1950, 1, 1) + timedelta(days=rnd.randrange(20000))
    body = f"{rnd.randrange(110000, 660000)}{birth:%Y%m%d}{rnd.randrange(1000):03d}"
    return body + resident_id_check_char(body)


def make_union(rnd: random.Random, n: int | None = None) -> str:
    return "GH" + (f"{n:010d}" if n is not None else f"{rnd.randrange(10**10):010d}")


def rand_date(rnd: random.Random, lo: date = date(1990, 1, 1), hi: date = DELIVERY) -> date:
    return lo + timedelta(days=rnd.randrange((hi - lo).days + 1))


def valid_value(rnd: random.Random, t: Table, c: Column) -> str | None:
    """A canonical value of column ``c`` that breaks no rule (table-specific fix-ups come later)."""
    if not c.required and rnd.random() < 0.25 and (t.source, t.name, c.name) not in CONDITIONAL:
        return None
    k = c.kind
    if k == "text":
        return rnd.choice(TEXTS) + (str(rnd.randrange(100)) if rnd.random() < 0.5 else "")
    if k == "code":
        return rnd.choice(c.allowed)
    if k == "uscc":
        return make_uscc(rnd)
    if k == "resident_id":
        return make_id(rnd)
    if k == "union_code":
        return make_union(rnd)
    if k == "payee_code":
        return make_uscc(rnd) if rnd.random() < 0.5 else make_union(rnd)
    if k == "date":
        hi = PULLED_ON if t.source == "members" else DELIVERY
        return rand_date(rnd, hi=hi).isoformat()
    if k == "timestamp":
        hi = PULLED_ON if t.source == "members" else DELIVERY
        d = rand_date(rnd, date(2015, 1, 1), hi)
        return f"{d.isoformat()} {rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"
    if k == "int":
        if c.min_value is not None and c.min_value >= 1949:
            return str(rnd.randrange(2000, 2022))
        lo = int(c.min_value) if c.min_value is not None else -1000
        return str(rnd.choice([lo, lo + 1, rnd.randrange(lo, lo + 5000), rnd.randrange(lo, lo + 10**7)]))
    if k == "amount":
        cents = rnd.choice([0, 1, 50, rnd.randrange(10**8), rnd.randrange(10**10)])
        if c.min_value is None and rnd.random() < 0.3:
            cents = -cents
        return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    if k == "bool":
        return rnd.choice(["true", "false"])
    if k == "phone":
        return "1" + f"{rnd.randrange(10**10):010d}"
    raise AssertionError(k)


CONDITIONAL = {
    ("registry", "unions", "uscc"),
    ("registry", "unions", "revoked_on"),
    ("rights", "cases", "mediation_result"),
    ("rights", "cases", "recovered_yuan"),
    ("registry", "enterprises", "tags"),
}
"""Optional columns whose blankness another column decides (never blanked as a 'benign' form)."""


def fix_up(t: Table, row: dict[str, str | None], rnd: random.Random, i: int) -> None:
    """Make a row satisfy the table's cross-column rules, and give it a key unique in its file."""
    key = (t.source, t.name)
    if key == ("registry", "enterprises"):
        row["tags"] = rnd.choice([None, "百强", "科技领军", "百强、科技领军"])
    elif key == ("registry", "unions"):
        row["uscc"] = make_uscc(rnd) if row["union_form"] == "独立建会" else None
        row["revoked_on"] = rand_date(rnd).isoformat() if row["status"] == "撤销" else None
    elif key == ("rights", "cases"):
        if row["case_type"] == "咨询":
            row["mediation_result"] = None
            row["recovered_yuan"] = None
        else:
            row["mediation_result"] = rnd.choice(schema.MEDIATION_RESULTS)
            if row["mediation_result"] == "成功":
                row["recovered_yuan"] = f"{rnd.randrange(10**7) / 100:.2f}"
            else:
                row["recovered_yuan"] = rnd.choice([None, "0", "0.00"])
    elif key == ("training", "sessions"):
        a, b = sorted([row["start_date"], row["end_date"]])  # type: ignore[type-var]
        row["start_date"], row["end_date"] = a, b
    # a key unique in the file (the first key part carries the row index)
    if t.source == "welfare":
        return
    first = t.key[0]
    col = t.column(first)
    if key == ("finance", "budget"):
        row["year"] = str(1960 + i // len(schema.PROJECT_CODES))
        row["project_code"] = schema.PROJECT_CODES[i % len(schema.PROJECT_CODES)]
    elif col.kind == "uscc":
        row[first] = make_uscc(rnd, i)
    elif col.kind == "union_code":
        row[first] = make_union(rnd, i)
    elif col.kind == "int":
        row[first] = str(i + 1)
    else:
        row[first] = f"K{i:04d}"


# ------------------------------------------------------------- malformations
def malign_value(
    rnd: random.Random, t: Table, c: Column, canonical: str | None
) -> tuple[str | None, str] | None:
    """A value breaking one known rule of column ``c``, and that rule; None when the kind has none."""
    k = c.kind
    options: list[tuple[str | None, str]] = []
    if c.required:
        options += [(None, "required"), (rnd.choice(WS_PAD) * 2, "required")]
    if k == "uscc" and canonical:
        wrong = rnd.choice([ch for ch in USCC_ALPHABET if ch != canonical[17]])
        options += [
            (canonical[:17] + wrong, "uscc"),
            (canonical[:17], "uscc"),
            (canonical[:15] + "IO" + canonical[17], "uscc"),
            (canonical + "0", "uscc"),
        ]
    elif k == "resident_id" and canonical:
        wrong = rnd.choice([ch for ch in "0123456789X" if ch != canonical[17]])
        bad_day = f"{canonical[:6]}19900230{canonical[14:17]}"
        options += [
            (canonical[:17] + wrong, "resident_id"),
            (canonical[:17], "resident_id"),
            (bad_day + resident_id_check_char(bad_day), "resident_id"),
            ("X" + canonical[1:], "resident_id"),
        ]
    elif k == "union_code":
        options += [
            ("GH123", "union_code"),
            ("HG" + "1" * 10, "union_code"),
            ("GH" + "1" * 11, "union_code"),
            ("GH12345678O0", "union_code"),
        ]
    elif k == "payee_code":
        options += [("GH12", "payee_code"), (make_uscc(rnd)[:17] + "Z", "payee_code"), ("ABC", "payee_code")]
    elif k == "code":
        options += [("其他", "allowed_values"), ("x" + c.allowed[0], "allowed_values")]
        if c.allowed[0].isascii():
            options.append((c.allowed[0].swapcase(), "allowed_values"))
    elif k == "date":
        last = DELIVERY if t.source != "members" else PULLED_ON
        options += [
            ("2021-02-30", "date_format"),
            ("2021-13-01", "date_format"),
            ("明天", "date_format"),
            ("2021-6-31", "date_format"),
            (last + timedelta(days=rnd.randrange(1, 9000)), "after_delivery"),
            (date(1900, 1, 1) + timedelta(days=rnd.randrange(17897)), "before_1949"),
        ]
        if t.source != "welfare":
            options.append(("44317", "date_format"))  # a serial number is a date in xlsx only
    elif k == "timestamp":
        options += [
            ("2021-06-01 25:00:00", "timestamp_format"),
            ("2021-06-01", "timestamp_format"),
            ("昨天 10:00", "timestamp_format"),
            ("2021-02-29 10:00:00", "timestamp_format"),
            ("1948-12-31 23:59:59", "before_1949"),
        ]
        later = (DELIVERY if t.source != "members" else PULLED_ON) + timedelta(days=rnd.randrange(1, 400))
        options.append((f"{later.isoformat()} 08:00:00", "after_delivery"))
    elif k == "int":
        options += [
            ("12.5", "integer"),
            ("abc", "integer"),
            ("1e5", "integer"),
            ("9" * 20, "integer"),
            ("NaN", "integer"),
            ("1,2345", "integer"),
        ]
        if c.min_value is not None:
            options.append((str(int(c.min_value) - rnd.randrange(1, 100)), "integer"))
    elif k == "amount":
        options += [
            ("NaN", "amount"),
            ("inf", "amount"),
            ("1e5", "amount"),
            ("12,34.5", "amount"),
            ("1" + "0" * 17, "amount"),
            ("1.2.3", "amount"),
            ("¥100", "amount"),
        ]
        if c.min_value is not None:
            options.append((f"-{rnd.randrange(1, 10**6) / 100:.2f}", "amount"))
    elif k == "bool":
        options += [("Y", "boolean"), ("对", "boolean"), ("TRUE", "boolean")]
    elif k == "phone":
        options += [("123", "phone"), ("1380013800a", "phone"), ("+8613800138000", "phone")]
    if (t.source, t.name, c.name) == ("registry", "enterprises", "tags"):
        options += [("百强,科技领军", "allowed_values"), ("五百强", "allowed_values")]
    if not options:
        return None
    value, suffix = rnd.choice(options)
    if isinstance(value, date):
        value = value.isoformat()
    return value, f"{c.name}.{suffix}"


def benign_text(rnd: random.Random, c: Column, canonical: str | None, *, dates_as_text: bool = True) -> str:
    """Any accepted text form of a canonical value (the reader must canonicalise it back)."""
    if canonical is None:
        return rnd.choice(["", "", " ", "\u3000", "\u00a0\u200b"])
    v = canonical
    k = c.kind
    if k == "date" and dates_as_text:
        d = date.fromisoformat(v)
        v = rnd.choice(
            [
                v,
                f"{d.year}/{d.month}/{d.day}",
                f"{d.year}年{d.month}月{d.day}日",
                d.strftime("%Y%m%d"),
                f"{d.year}-{d.month}-{d.day}",
                f"{v} 00:00:00",
                f"{d.year}/{d.month:02d}/{d.day:02d}",
            ]
        )
    elif k == "timestamp":
        ts = datetime.fromisoformat(v)
        v = rnd.choice(
            [
                v,
                v.replace(" ", "T"),
                ts.strftime("%Y/%m/%d %H:%M:%S"),
                f"{ts.year}/{ts.month}/{ts.day} {ts.hour}:{ts.minute:02d}:{ts.second:02d}",
                v + ".123456",
                f"{v[:16]}" if ts.second == 0 else v,
            ]
        )
    elif k == "int":
        n = int(v)
        v = rnd.choice([v, f"{n:,}", f"{n}.0", f"{n}.00"])
    elif k == "amount":
        from decimal import Decimal

        d = Decimal(v)
        v = rnd.choice([v, f"{d:,.2f}", format(d.normalize(), "f")])  # 1,234.50 / 1234.5 / 100
    elif k in ("uscc", "resident_id", "union_code", "payee_code"):
        v = rnd.choice([v, v.lower()])
    elif k == "bool":
        v = {"true": "是", "false": "否"}[v]
    if rnd.random() < 0.15:
        v = fullwidth(v)
    if rnd.random() < 0.2:
        v = rnd.choice(WS_PAD) + v + rnd.choice(WS_PAD)
    return v


JUNK = st.text(st.characters(codec="utf-8"), max_size=16) | st.sampled_from(
    [
        "",
        "NULL",
        "null",
        "None",
        "NaN",
        "-0",
        "1e309",
        '"',
        "'",
        ",",
        "\r\n",
        '\n"x"\n',
        "=1+1",
        "@SUM(A1)",
        "\u202e反转",
        "👷‍♀️",
        "0000-01-01",
        "2021-02-29 00:00:00",
        "\x00",
        "\ufffd",
        "𠀀𪚥",
        "0" * 40,
        "-" + "9" * 30,
        "Ｇ Ｈ",
        "１２３",
    ]
)


# ------------------------------------------------------------------ row plans
@dataclass
class Row:
    """One generated data row: its canonical values, what it was made into, and what must happen."""

    cls: str  # valid | malign | garbage | ragged
    canonical: dict[str, str | None]
    rules: set[str] = field(default_factory=set)
    """malign: rules that must be among its quarantine rules."""
    key_mutated: bool = False
    seed: int = 0
    junk: list[Any] = field(default_factory=list)
    number: int = 0
    """Its identity: record / line / sheet row number (files) or primary key (database)."""
    original: Any = None
    """What was written, to check ``_original`` against."""


@dataclass
class Plan:
    rows: list[Row]
    blanks: list[int]
    """Positions (in the list of records) of blank records between the rows."""
    twist: str
    seed: int


@st.composite
def row_plans(
    draw: Any,
    t: Table,
    min_rows: int,
    max_rows: int,
    twists: tuple[str, ...],
    junk: st.SearchStrategy[Any] = JUNK,
) -> Plan:
    n = draw(st.integers(min_rows, max_rows))
    rows = []
    for _ in range(n):
        roll = draw(st.integers(0, 99))
        cls = "valid" if roll < 47 else "malign" if roll < 81 else "garbage" if roll < 97 else "ragged"
        seed = draw(st.integers(0, 2**32 - 1))
        junk_values = draw(st.lists(junk, min_size=1, max_size=3)) if cls == "garbage" else []
        rows.append(Row(cls, {}, seed=seed, junk=junk_values))
    blanks = draw(st.lists(st.integers(0, n), max_size=4))
    twist = draw(st.sampled_from(twists))
    return Plan(rows, sorted(blanks), twist, draw(st.integers(0, 2**32 - 1)))


def plan_values(t: Table, plan: Plan) -> None:
    """Fill in each row's canonical values, inject duplicate keys, choose the mutated columns."""
    for i, r in enumerate(plan.rows):
        rnd = random.Random(r.seed)
        row = {c.name: valid_value(rnd, t, c) for c in t.columns}
        fix_up(t, row, rnd, i)
        r.canonical = row
    rnd = random.Random(plan.seed)
    # (welfare rows have no key; the members database's primary key cannot repeat)
    if t.source not in ("welfare", "members") and len(plan.rows) > 2 and rnd.random() < 0.35:
        for _ in range(rnd.choice([1, 1, 1, 1, 2, 4])):  # a key delivered twice in one file
            a, b = rnd.sample(range(len(plan.rows)), 2)
            for k in t.key:
                plan.rows[b].canonical[k] = plan.rows[a].canonical[k]


def breach(
    rnd: random.Random, t: Table, r: Row, malign: Callable[..., tuple[Any, str] | None]
) -> tuple[Column, tuple[Any, str] | None]:
    """A random column of a malign row and the (bad value, rule) ``malign`` makes of it; when it
    can make none (None), the row is valid after all."""
    target = rnd.choice(list(t.columns))
    bad = malign(rnd, t, target, r.canonical[target.name])
    if bad is None:
        r.cls = "valid"
    return target, bad


def screen_file(source: str, rel_name: str, data: bytes) -> list[Outcome]:
    """Deliver ``data`` as ``<source>/<delivery date>/<rel_name>`` in a fresh landing zone and
    screen it as the nightly run does."""
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        path = landing / source / DELIVERY.isoformat() / rel_name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        [delivery] = common.discover(landing, source)
        return screen_delivery(delivery, QUALITY)


# ------------------------------------------------------------------ the oracle
def key_of(t: Table, r: Row) -> tuple[str | None, ...] | None:
    """The row's canonical key as the suite compares it (None: not counted).

    As the suite has it (flows/quality/suites.py ``_key_uniqueness``), a compound key's blank
    parts are values, but a row whose every key part is blank (an unparseable row, say) has no
    key and is not compared; a single blank key is ignored too (it breaks ``required``)."""
    if r.cls == "ragged":
        values: tuple[str | None, ...] = tuple(None for _ in t.key)
    else:
        values = tuple(r.canonical.get(k) for k in t.key)
    if all(v is None for v in values):
        return None
    return values


def expected_duplicates(t: Table, rows: list[Row]) -> tuple[set[int], int]:
    """Row numbers that certainly share a key, and how many rows have an uncertain key."""
    if t.source == "welfare" or not t.key:
        return set(), 0
    certain = [r for r in rows if not r.key_mutated]
    counts = Counter(key_of(t, r) for r in certain)
    dup = {r.number for r in certain if key_of(t, r) is not None and counts[key_of(t, r)] > 1}
    return dup, sum(1 for r in rows if r.key_mutated)


def check_loaded(
    t: Table,
    outcome: Outcome,
    rows: list[Row],
    where: str,
    original_check: Callable[[Row, dict[str, Any]], None] | None = None,
    identity: str = "_row_number",
) -> None:
    """The table loaded: each generated row passed or was quarantined, once, as its class demands."""
    assert outcome.error is None, f"{where}: {outcome.error}"
    result = outcome.result
    assert result is not None
    by_number = {r.number: r for r in rows}
    passed = [int(x) for x in result.passed[identity].to_list()]
    quarantined = {int(q[identity]): q for q in result.quarantined.iter_rows(named=True)}
    assert len(passed) == len(set(passed)), f"{where}: a row passed twice"
    assert len(quarantined) == result.quarantined.height, f"{where}: a row quarantined twice"
    assert not set(passed) & set(quarantined), f"{where}: rows both passed and quarantined"
    assert set(passed) | set(quarantined) == set(by_number), (
        f"{where}: rows lost {sorted(set(by_number) - set(passed) - set(quarantined))}, "
        f"rows invented {sorted((set(passed) | set(quarantined)) - set(by_number))}"
    )
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined == len(rows)
    known = suite_rules(t)
    dup, _ = expected_duplicates(t, rows)
    for number, q in quarantined.items():
        rules = q["rules"].split(";")
        assert rules and all(rules), f"{where} row {number}: empty rule in {q['rules']!r}"
        assert set(rules) <= known, f"{where} row {number}: unknown rules {set(rules) - known}"
        reasons = json.loads(q["reasons"])
        assert [x["rule"] for x in reasons] == rules
        assert all(x["en"] and x["zh"] for x in reasons), f"{where} row {number}: a reason is empty"
        assert q["_original"], f"{where} row {number}: no original"
    frame_rows = {int(x[identity]): x for x in result.passed.iter_rows(named=True)} | quarantined
    for number, r in by_number.items():
        got = set(quarantined[number]["rules"].split(";")) if number in quarantined else set()
        what = (
            f"{where} row {number} ({r.cls}, written {r.original!r}, canonical {r.canonical!r}): rules {got}"
        )
        OUTCOMES[t.source][f"{r.cls} {'quarantined' if got else 'passed'}"] += 1
        if r.cls == "valid":
            assert got == ({DUPLICATE_RULE} if number in dup else set()), what
        elif r.cls == "malign":
            assert r.rules <= got, what
            if number in dup:
                assert DUPLICATE_RULE in got, what
        elif r.cls == "ragged":
            assert "row.parse" in got, what
        if original_check is not None:
            original_check(r, json.loads(frame_rows[number]["_original"]))


def check_rejected(outcome: Outcome, allowed: set[str], where: str, rows: int = 0) -> None:
    assert outcome.error is not None, f"{where}: expected a rejection by {allowed}, the file loaded"
    REJECTED[where.split("/")[0]][outcome.error.rule] += rows
    assert outcome.error.rule in KNOWN_BATCH_RULES, f"{where}: {outcome.error}"
    assert outcome.error.rule in allowed, (
        f"{where}: rejected by {outcome.error.rule}, expected {allowed}: {outcome.error.message}"
    )
    assert outcome.error.message, where
    assert outcome.rows_loaded == 0 and outcome.rows_quarantined == 0 and outcome.result is None


def dup_gate_expectation(t: Table, rows: list[Row]) -> tuple[bool, bool]:
    """(must the duplicate gate reject, may it reject) the file."""
    dup, uncertain = expected_duplicates(t, rows)
    n = len(rows)
    if not n:
        return False, False
    must = len(dup) / n > QUALITY.max_duplicate_key_share
    may = (len(dup) + uncertain) / n > QUALITY.max_duplicate_key_share
    return must, may


def check_table(
    t: Table,
    outcome: Outcome,
    rows: list[Row],
    where: str,
    original_check: Callable[[Row, dict[str, Any]], None] | None = None,
    identity: str = "_row_number",
) -> int:
    """One table of a delivery that was readable: the gate decision, then the rows. Rows validated."""
    must, may = dup_gate_expectation(t, rows)
    if outcome.error is not None and outcome.error.rule == "batch.duplicate_keys":
        assert may, f"{where}: rejected for duplicate keys the generator did not make: {outcome.error}"
        check_rejected(outcome, {"batch.duplicate_keys"}, where, len(rows))
        return 0
    assert not must, (
        f"{where}: {len(expected_duplicates(t, rows)[0])} of {len(rows)} rows share a key, "
        "the file should have been held back"
    )
    check_loaded(t, outcome, rows, where, original_check, identity)
    return len(rows)


# ====================================================================== CSV
CSV_TWISTS = ("none",) * 12 + (
    "header_only",
    "empty",
    "blank_only",
    "missing_column",
    "duplicate_column",
    "extra_column",
    "reorder",
    "header_noise",
    "wrong_encoding",
    "other_encoding",
    "unit_wan",
    "unit_bad",
    "leading_blank",
    "huge_cell",
)


def csv_cells(rnd: random.Random, t: Table, r: Row) -> list[str]:
    """The row's cells (contract column order) as raw text."""
    cells: dict[str, str] = {}
    mutable = [c for c in t.columns]
    target = rnd.choice(mutable)
    for c in t.columns:
        cells[c.name] = benign_text(rnd, c, r.canonical[c.name])
    if r.cls == "malign":
        others = [c for c in mutable if c is not target]
        for c in [target] + rnd.sample(others, k=min(len(others), rnd.choice([0, 0, 1]))):
            bad = malign_value(rnd, t, c, r.canonical[c.name])
            if bad is None:
                continue
            value, rule = bad
            cells[c.name] = value if value is not None else ""
            r.rules.add(rule)
            r.key_mutated |= c.name in t.key
            r.canonical[c.name] = None if value is None or not common.normalise_str(value) else value
        if not r.rules:
            r.cls = "valid"
    elif r.cls == "garbage":
        for junk in r.junk:
            c = rnd.choice(mutable)
            cells[c.name] = str(junk)
            r.key_mutated |= c.name in t.key
    return [cells[c.name] for c in t.columns]


def swallows(cells: list[str], width: int) -> bool:
    """A cell with a line break and a row's worth of commas: the contract (v1.1) takes that for
    a quote left open that folded rows into one value, a structural error of the file."""
    return any(("\n" in c or "\r" in c) and c.count(",") >= max(1, width - 1) for c in cells)


def csv_delivery(t: Table, plan: Plan, rnd: random.Random) -> tuple[bytes, list[Row], set[str] | None]:
    """The file's bytes, its data rows (numbered), and the batch rules that must reject it (None:
    it loads)."""
    twist = plan.twist
    header = [c.header for c in t.columns]
    rows_cells = [csv_cells(random.Random(r.seed + 1), t, r) for r in plan.rows]
    {c.name: c.header for c in t.columns}
    expect: set[str] | None = None
    amount_cols = [i for i, c in enumerate(t.columns) if c.kind == "amount"]
    if twist in ("unit_wan", "unit_bad") and not amount_cols:
        twist = "none"
    if twist == "unit_wan":
        i = rnd.choice(amount_cols)
        header[i] += rnd.choice(["(万元)", "（万元）", " (万元)"])
    elif twist == "unit_bad":
        header[rnd.choice(amount_cols)] += "(千元)"
        expect = {"batch.columns"}
    elif twist == "header_noise":
        header = [rnd.choice(["", " ", "\u3000"]) + h + rnd.choice(["", " ", "\u00a0"]) for h in header]
        if amount_cols and rnd.random() < 0.5:
            header[amount_cols[0]] += "(元)"
    order = list(range(len(header)))
    if twist == "reorder":
        rnd.shuffle(order)
    elif twist == "extra_column":
        header.append(rnd.choice(["备注", "", "Unnamed: 9", "统一社会信用代码2"]))
        order.append(-1)
    elif twist == "missing_column":
        drop = rnd.randrange(len(header))
        order.remove(drop)
        expect = {"batch.columns"}
    elif twist == "duplicate_column":
        order.append(rnd.randrange(len(header)))
        expect = {"batch.columns"}
    width = len(order)  # the header's field count
    for r, cells in zip(plan.rows, rows_cells, strict=True):
        if r.cls == "ragged":  # fewer or more fields than the header
            k = rnd.choice([1, width - 1, width + 1, width + 3])
            cells[:] = (cells + ["多余"] * k)[:k]
            if all(not common.normalise_str(x) for x in cells):
                cells[0] = "残缺行"

    def arrange(cells: list[str], ragged: bool) -> list[str]:
        if ragged:
            return cells
        return [cells[i] if i >= 0 else "附加" for i in order]

    records: list[tuple[Row | None, list[str]]] = []
    blank_at = Counter(plan.blanks)
    for pos in range(len(plan.rows) + 1):
        for _ in range(blank_at[pos]):
            records.append((None, rnd.choice([[], [""] * len(order), [" "] * 2, ["\u3000", "\t", ""]])))
        if pos < len(plan.rows):
            r = plan.rows[pos]
            records.append((r, arrange(rows_cells[pos], r.cls == "ragged")))
    if twist == "header_only":
        records = []
    data_rows = [r for r, _ in records if r is not None]
    if expect is None and data_rows and all(r.cls == "ragged" for r in data_rows):
        expect = {"batch.structure"}  # not one row splits into the header's columns
    if expect is None and any(swallows(cells, width) for _, cells in records):
        expect = {"batch.structure"}  # a quoted cell holding lines that look like rows of their own
    rows: list[Row] = []
    for number, (r, cells) in enumerate(records, start=2):
        if r is not None:
            r.number = number
            r.original = cells
            rows.append(r)
    out = io.StringIO()
    # csv quotes a cell holding \r or \n only when the line ends in both; other line ends need QUOTE_ALL
    ending = rnd.choice(["\r\n", "\n", "\r\n", "\r"])
    writer = csv.writer(
        out, lineterminator=ending, quoting=csv.QUOTE_MINIMAL if ending == "\r\n" else csv.QUOTE_ALL
    )
    if twist == "leading_blank":
        out.write("\r\n" * rnd.randrange(1, 4) + ",,\r\n")
    writer.writerow([header[i] for i in order])
    for _, cells in records:
        writer.writerow(cells)
    text = out.getvalue()
    if twist == "huge_cell" and rows:
        # a cell over csv's field size limit (131,072 characters)
        text += "\r\n" + ",".join(["x" * 140_000] * len(order)) + "\r\n"
        expect = {"batch.unreadable"}
    encoding = schema.ENCODINGS[t.source]
    if twist == "empty":
        return b"", rows, {"batch.empty"}
    if twist == "blank_only":
        bom = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
        return bom + b"\r\n \r\n,,\r\n", rows, {"batch.empty"}
    if encoding == "gb18030":
        if twist == "wrong_encoding":
            data = rnd.choice([b"", b"\xef\xbb\xbf"]) + text.encode("utf-8")
            return data, rows, (expect or set()) | {"batch.encoding"}
        if twist == "other_encoding":
            try:
                return text.encode("gbk"), rows, expect
            except UnicodeEncodeError:
                pass
        return text.encode("gb18030"), rows, expect
    bom = b"\xef\xbb\xbf" if (encoding == "utf-8-sig") != (twist == "other_encoding") else b""
    if twist == "wrong_encoding":
        data = text.encode("gb18030")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return data, rows, (expect or set()) | {"batch.encoding"}
        return data, rows, expect
    return bom + text.encode("utf-8"), rows, expect


def csv_original_check(header_twist: str) -> Callable[[Row, dict[str, Any]], None]:
    def check(r: Row, original: dict[str, Any]) -> None:
        if r.cls == "ragged":
            assert "_line" in original, original
            return
        if header_twist in ("header_noise", "unit_wan", "extra_column", "duplicate_column"):
            return
        assert list(original.values()) == r.original, (original, r.original)

    return check


def fuzz_until_enough(run: Callable[[], None], source: str, rounds: int = 4) -> None:
    """Run the hypothesis test ``run`` until ``source`` has seen ``MIN_CASES`` cases and
    ``MIN_VALIDATED`` validated rows (a round's deliveries are drawn at random, and an empty or
    rejected file brings few rows), at most ``rounds`` times; then assert both."""
    for _ in range(rounds):
        run()
        if CASES[source] >= MIN_CASES and VALIDATED[source] >= MIN_VALIDATED:
            break
    report(source)
    assert CASES[source] >= MIN_CASES and VALIDATED[source] >= MIN_VALIDATED, (
        CASES[source],
        VALIDATED[source],
    )


def check_file(
    source: str,
    t: Table,
    twist: str,
    data: bytes,
    rows: list[Row],
    expect: set[str] | None,
    original_check: Callable[[Row, dict[str, Any]], None],
) -> None:
    """Screen a one-table file as ``t.file_pattern``: rejected under ``expect`` (a set of rules),
    or, when that is None, loaded with every row checked (:func:`check_table`)."""
    outcomes = screen_file(source, t.file_pattern, data)
    where = f"{source}/{t.file_pattern} [{twist}]"
    assert len(outcomes) == 1, outcomes
    [outcome] = outcomes
    if expect is not None:
        check_rejected(outcome, expect, where, len(rows))
        return
    if outcome.error is not None and outcome.table_name == WHOLE_FILE:
        raise AssertionError(f"{where}: rejected as a whole: {outcome.error}")
    assert outcome.table_name == t.name
    VALIDATED[source] += check_table(t, outcome, rows, where, original_check)


def run_csv_source(source: str, plan: Plan, table_index: int) -> None:
    tables = schema.tables_of(source)
    t = tables[table_index % len(tables)]
    plan_values(t, plan)
    rnd = random.Random(plan.seed)
    data, rows, expect = csv_delivery(t, plan, rnd)
    CASES[source] += len(rows)
    check_file(source, t, plan.twist, data, rows, expect, csv_original_check(plan.twist))


def csv_test(source: str, examples: int) -> None:
    @fuzz_settings(examples)
    @given(plan=row_plans(schema.tables_of(source)[0], 64, 96, CSV_TWISTS), table_index=st.integers(0, 2))
    def run(plan: Plan, table_index: int) -> None:
        run_csv_source(source, plan, table_index)

    fuzz_until_enough(run, source)


EXAMPLES = 16


def test_fuzz_registry() -> None:
    csv_test("registry", EXAMPLES)


def test_fuzz_rights() -> None:
    csv_test("rights", EXAMPLES)


def test_fuzz_finance() -> None:
    csv_test("finance", EXAMPLES)


def test_fuzz_events() -> None:
    csv_test("events", EXAMPLES)


# ==================================================================== JSONL
JSON_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | JUNK,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
JSONL_TWISTS = ("none",) * 10 + (
    "empty",
    "blank_only",
    "missing_key",
    "bom",
    "crlf",
    "wrong_encoding",
    "key_noise",
    "extra_keys",
)
RAGGED_LINES = (
    '{"session_id": "S1", "title": "x"',
    "[1, 2]",
    '"只是一个字符串"',
    "null",
    "42",
    "NaN",
    "{bad json}",
    "{'session_id': 'S1'}",
    '{"a": 1}}',
    "\x00",
    "\ufeff{}x",
    '{"session_id": ' + "1" * 5000 + "}",  # over Python's int-conversion limit: ValueError
    "[" * 50_000 + "]" * 50_000,  # deeper than the recursion limit: RecursionError
)


def json_value(rnd: random.Random, c: Column, canonical: str | None) -> Any:
    """Any accepted JSON form of a canonical value (contract v1.1: an integer column takes a JSON
    integer only, not ``"120"``, ``1e3`` or ``12.0``)."""
    if canonical is None:
        return None
    if c.kind == "int":
        return int(canonical)
    if c.kind == "bool":
        return canonical == "true"
    return benign_text(rnd, c, canonical)


def json_malign(rnd: random.Random, t: Table, c: Column, canonical: str | None) -> tuple[Any, str] | None:
    if c.kind == "int" and rnd.random() < 0.6:
        value = rnd.choice(
            [12.5, -1, 1e20, 10**25, float("nan"), float("inf"), [1], {"n": 1}, True, "120", 1e3]
        )
        if value == -1 and c.min_value is None:
            value = 12.5
        # a JSON integer out of range breaks the column's rule; any other JSON type its type
        return value, (f"{c.name}.integer" if type(value) is int else "row.json_type")
    if c.kind == "bool" and rnd.random() < 0.6:
        value = rnd.choice([1, 0, "是", "yes", [True], "true"])
        return value, "row.json_type"
    bad = malign_value(rnd, t, c, canonical)
    return bad


def json_line(rnd: random.Random, t: Table, r: Row, twist: str) -> str:
    if r.cls == "ragged":
        return rnd.choice(RAGGED_LINES)
    obj: dict[str, Any] = {}
    drop: set[str] = set()
    for c in t.columns:
        value = json_value(rnd, c, r.canonical[c.name])
        if value is None and not c.required and rnd.random() < 0.5:
            drop.add(c.name)
        obj[c.name] = value
    cols = list(t.columns)
    if r.cls == "malign":
        target, bad = breach(rnd, t, r, json_malign)
        if bad is not None:
            value, rule = bad
            if value is None and rnd.random() < 0.5:
                drop.add(target.name)  # a required key missing in this record only
            obj[target.name] = value
            if value is None and rule.endswith(".boolean"):
                rule = f"{target.name}.required"
            r.rules.add(rule)
            r.key_mutated |= target.name in t.key
            r.canonical[target.name] = None if value is None else str(value)
    elif r.cls == "garbage":
        for junk in r.junk:
            c = rnd.choice(cols)
            obj[c.name] = junk
            drop.discard(c.name)
            r.key_mutated |= c.name in t.key
    out = {}
    for c in t.columns:
        if c.name in drop:
            continue
        name = c.header
        if twist == "key_noise":
            name = rnd.choice([name, f" {name}", f"{name}\u3000", fullwidth(name)])
        out[name] = obj[c.name]
    if twist == "extra_keys" or rnd.random() < 0.1:
        out[rnd.choice(["comment", "备注", "_id", ""])] = rnd.choice([None, 1, "x", {"nested": [1]}])
    items = list(out.items())
    rnd.shuffle(items)
    return json.dumps(dict(items), ensure_ascii=rnd.random() < 0.3)


def jsonl_delivery(t: Table, plan: Plan, rnd: random.Random) -> tuple[bytes, list[Row], set[str] | None]:
    twist = plan.twist
    lines: list[tuple[Row | None, str]] = []
    blank_at = Counter(plan.blanks)
    for pos in range(len(plan.rows) + 1):
        for _ in range(blank_at[pos]):
            lines.append((None, rnd.choice(["", "   ", "\t", "\u3000"])))
        if pos < len(plan.rows):
            r = plan.rows[pos]
            lines.append((r, json_line(random.Random(r.seed + 1), t, r, twist)))
    expect: set[str] | None = None
    if twist == "missing_key":
        gone = rnd.choice([c for c in t.columns if c.required])
        names = {gone.header}
        for i, (r, line) in enumerate(lines):
            if r is not None and r.cls != "ragged":
                obj = json.loads(line)
                lines[i] = (
                    r,
                    json.dumps(
                        {k: v for k, v in obj.items() if common.header_key(k) not in names},
                        ensure_ascii=False,
                    ),
                )
        if any(r is not None and r.cls != "ragged" for r, _ in lines):
            expect = {"batch.columns"}
    rows = []
    for number, (r, line) in enumerate(lines, start=1):
        if r is not None:
            r.number, r.original = number, line
            rows.append(r)
    end = "\r\n" if twist == "crlf" else "\n"
    text = end.join(line for _, line in lines) + (end if rnd.random() < 0.8 else "")
    if twist == "empty":
        return b"", rows, {"batch.empty"}
    if twist == "blank_only":
        return b"\n  \n\t\n", rows, {"batch.empty"}
    if twist == "wrong_encoding":
        data = text.encode("gb18030")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return data, rows, {"batch.encoding"}
        return data, rows, expect
    if not rows and expect is None:
        expect = {"batch.empty"}
    if rows and expect is None and all(r.cls == "ragged" for r in rows):
        expect = {"batch.structure"}  # not one line is a JSON object: no JSON Lines at all
    return (b"\xef\xbb\xbf" if twist == "bom" else b"") + text.encode("utf-8"), rows, expect


def json_original_check(r: Row, original: dict[str, Any]) -> None:
    if r.cls == "ragged":
        assert original == {"_line": r.original}, (original, r.original)
        return
    assert set(original) == set(json.loads(r.original)), (original, r.original)


def run_jsonl(plan: Plan, table_index: int) -> None:
    source = "training"
    t = schema.tables_of(source)[table_index % 3]
    plan_values(t, plan)
    data, rows, expect = jsonl_delivery(t, plan, random.Random(plan.seed))
    CASES[source] += len(rows)
    check_file(source, t, plan.twist, data, rows, expect, json_original_check)


def test_fuzz_training() -> None:
    @fuzz_settings(EXAMPLES)
    @given(
        plan=row_plans(schema.tables_of("training")[0], 64, 96, JSONL_TWISTS), table_index=st.integers(0, 2)
    )
    def run(plan: Plan, table_index: int) -> None:
        run_jsonl(plan, table_index)

    fuzz_until_enough(run, "training")


# ===================================================================== xlsx
XLSX_TWISTS = ("none",) * 9 + (
    "missing_sheet",
    "dup_sheet",
    "extra_sheet",
    "empty_sheet",
    "header_only",
    "truncated",
    "not_xlsx",
    "missing_column",
    "wan",
    "leading_blank_rows",
    "sheet_order",
    "sheet_name_noise",
)
HEADERS_XLSX = {
    "condolence": ("金额(元)", "金额(万元)", "金额"),
    "health_checks": ("费用(元)", "费用"),
    "relief": ("金额(元)", "金额"),
}
EXCEL_EPOCH = date(1899, 12, 30)


def clean_xml(value: Any) -> Any:
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def xlsx_value(rnd: random.Random, c: Column, canonical: str | None, wan: bool) -> Any:
    """Any accepted cell form of a canonical value: date cells, serial numbers, numbers, text."""
    if canonical is None:
        return rnd.choice([None, None, "", " "])
    if c.kind == "date":
        d = date.fromisoformat(canonical)
        serial = (d - EXCEL_EPOCH).days
        return rnd.choice(
            [
                datetime(d.year, d.month, d.day),
                datetime(d.year, d.month, d.day, rnd.randrange(24)),
                serial,
                float(serial),
                benign_text(rnd, c, canonical),
            ]
        )
    if c.kind == "amount":
        from decimal import Decimal

        value = Decimal(canonical) / (10000 if wan else 1)
        if wan:
            return rnd.choice([float(value), format(value, "f")])
        whole = int(value) if value == int(value) else float(value)
        return rnd.choice([float(value), format(value, "f"), whole])
    return benign_text(rnd, c, canonical)


def xlsx_malign(rnd: random.Random, t: Table, c: Column, canonical: str | None) -> tuple[Any, str] | None:
    if c.kind == "date" and rnd.random() < 0.5:
        later = DELIVERY + timedelta(days=rnd.randrange(1, 3000))
        early = date(1900, 3, 1) + timedelta(days=rnd.randrange(17000))
        return rnd.choice(
            [
                (datetime(later.year, later.month, later.day), f"{c.name}.after_delivery"),
                ((later - EXCEL_EPOCH).days, f"{c.name}.after_delivery"),
                ((early - EXCEL_EPOCH).days, f"{c.name}.before_1949"),
                (0, f"{c.name}.date_format"),
                (44317.5, f"{c.name}.date_format"),
                (3_000_000, f"{c.name}.date_format"),
                (-5, f"{c.name}.date_format"),
            ]
        )
    if c.kind == "amount" and rnd.random() < 0.5:
        return rnd.choice([-1, -0.01, -1e6, 1e17, 12345678901234567]), f"{c.name}.amount"
    return malign_value(rnd, t, c, canonical)


def xlsx_row(rnd: random.Random, t: Table, r: Row, wan: bool) -> tuple[list[Any], bool]:
    """The row's cells in contract column order, and whether cells of it are to be merged."""
    cols = list(t.columns)
    cells = {c.name: xlsx_value(rnd, c, r.canonical[c.name], wan and c.kind == "amount") for c in cols}
    merge = False
    if r.cls == "ragged":  # no field count in a sheet: a row of junk in every cell instead
        r.cls = "garbage"
    if r.cls == "malign":
        target, bad = breach(rnd, t, r, xlsx_malign)
        if bad is not None:
            value, rule = bad
            if wan and target.kind == "amount" and isinstance(value, int | float) and value > 0:
                value = value / 10000 * 10  # still too large once converted
            cells[target.name] = value
            r.rules.add(rule)
    elif r.cls == "garbage":
        for junk in r.junk:
            c = rnd.choice(cols)
            cells[c.name] = rnd.choice(
                [
                    clean_xml(str(junk)),
                    "=1+1",
                    "=A1*2",
                    True,
                    False,
                    float("nan"),
                    float("inf"),
                    1e300,
                    -0.0,
                    10**20,
                    datetime(1900, 1, 1),
                    datetime(9999, 12, 31, 23, 59, 59),
                    0.1 + 0.2,
                ]
            )
        merge = rnd.random() < 0.3
    return [clean_xml(cells[c.name]) for c in cols], merge


def sheet_rows(
    t: Table, plan: Plan, rnd: random.Random, wan: bool, top: int
) -> tuple[list[str], list[tuple[Row | None, list[Any], bool]]]:
    header = [c.header for c in t.columns]
    for i, c in enumerate(t.columns):
        if c.kind == "amount":
            wan_here = wan and t.name == "condolence"
            header[i] = c.header + "(万元)" if wan_here else rnd.choice(HEADERS_XLSX[t.name])
    records: list[tuple[Row | None, list[Any], bool]] = []
    blank_at = Counter(plan.blanks)
    for pos in range(len(plan.rows) + 1):
        for _ in range(blank_at[pos]):
            records.append((None, rnd.choice([[], [None, None], ["", " ", "\u3000"]]), False))
        if pos < len(plan.rows):
            r = plan.rows[pos]
            cells, merge = xlsx_row(random.Random(r.seed + 1), t, r, wan and t.name == "condolence")
            records.append((r, cells, merge))
    for number, (r, cells, _) in enumerate(records, start=top + 2):
        if r is not None:
            r.number, r.original = number, cells
    return header, records


Sheet = tuple[str, list[str] | None, list[tuple[Row | None, list[Any], bool]], int]
"""A sheet to write: name, header (None: an empty sheet), records (row, cells, merge), blank rows on top."""


def workbook_bytes(sheets: list[Sheet]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, header, records, top in sheets:
        ws = wb.create_sheet(name)
        if header is None:
            continue
        for _ in range(top):
            ws.append([])
        ws.append(header)
        for r, cells, merge in records:
            ws.append(cells)
            if merge and r is not None and len(cells) > 2:
                first = 1 + random.Random(r.seed).randrange(len(cells) - 1)
                ws.merge_cells(
                    start_row=ws.max_row,
                    start_column=first,
                    end_row=ws.max_row,
                    end_column=min(len(cells), first + 2),
                )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def run_xlsx(plans: list[Plan], twist: str, seed: int) -> None:
    source = "welfare"
    rnd = random.Random(seed)
    tables = [schema.table(source, name) for name in schema.WELFARE_SHEETS.values()]
    wan = twist == "wan"
    top = rnd.randrange(1, 4) if twist == "leading_blank_rows" else 0
    sheets = []
    rows: dict[str, list[Row]] = {}
    for (sheet, _), t, plan in zip(schema.WELFARE_SHEETS.items(), tables, plans, strict=True):
        plan_values(t, plan)
        if twist == "header_only":
            plan.rows = []
        header, records = sheet_rows(t, plan, rnd, wan, top)
        rows[t.name] = [r for r, _, _ in records if r is not None]
        sheets.append((sheet, header, records, top))
    expect: set[str] | None = None
    if twist == "missing_sheet":
        del sheets[rnd.randrange(3)]
        expect = {"batch.sheets"}
    elif twist == "dup_sheet":
        name, header, records, top_ = sheets[rnd.randrange(3)]
        sheets.append((f" {name}", header, records, top_))
        expect = {"batch.sheets"}
    elif twist == "extra_sheet":
        sheets.insert(rnd.randrange(4), ("说明", ["填表说明"], [(None, ["金额单位：元"], False)], 0))
    elif twist == "empty_sheet":
        i = rnd.randrange(3)
        sheets[i] = (sheets[i][0], None, [], 0)
        expect = {"batch.empty"}
    elif twist == "missing_column":
        i = rnd.randrange(3)
        name, header, records, top_ = sheets[i]
        drop = rnd.randrange(len(header))  # type: ignore[arg-type]
        sheets[i] = (
            name,
            [h for j, h in enumerate(header) if j != drop],  # type: ignore[union-attr]
            [(r, [v for j, v in enumerate(cells) if j != drop], m) for r, cells, m in records],
            top_,
        )
        expect = {"batch.columns"}
    elif twist == "sheet_order":
        rnd.shuffle(sheets)
    elif twist == "sheet_name_noise":
        sheets = [(rnd.choice([f" {n}", f"{n}\u3000", n]), h, rec, tp) for n, h, rec, tp in sheets]
    data = workbook_bytes(sheets)
    if twist == "truncated":
        data = data[: rnd.randrange(1, len(data) - 1)]
        # a damaged zip is unreadable; cut before its 4-byte signature it is no zip at all
        expect = {"batch.unreadable"} if data.startswith(b"PK\x03\x04") else {"batch.structure"}
    elif twist == "not_xlsx":
        data = rnd.choice(
            [
                b"PK\x03\x04" + b"\x00" * 40,
                "日期,姓名\r\n".encode("gb18030"),
                b"\xd0\xcf\x11\xe0" + b"x" * 100,
            ]
        )  # a zip that is no workbook, a CSV, an old .xls
        # a damaged zip is unreadable; anything that is no zip is not what its name says
        expect = {"batch.unreadable"} if data.startswith(b"PK\x03\x04") else {"batch.structure"}
    n_rows = sum(len(v) for v in rows.values())
    CASES[source] += n_rows
    station = rnd.choice(["HG01", "kg-02", "LG3"])
    name = f"{station}_2021{rnd.randrange(1, 7):02d}.xlsx"
    outcomes = screen_file(source, name, data)
    where = f"{source}/{name} [{twist}]"
    if expect is not None:
        assert len(outcomes) == 1 and outcomes[0].table_name == WHOLE_FILE, (
            f"{where}: expected {expect}, got {[(o.table_name, o.error) for o in outcomes]}"
        )
        check_rejected(outcomes[0], expect, where, n_rows)
        return
    by_table = {o.table_name: o for o in outcomes}
    assert set(by_table) == set(rows), f"{where}: {[(o.table_name, o.error) for o in outcomes]}"
    for t in tables:
        VALIDATED[source] += check_table(t, by_table[t.name], rows[t.name], f"{where} {t.name}")


def test_fuzz_welfare() -> None:
    plan = row_plans(schema.table("welfare", "condolence"), 22, 34, ("none",))

    @fuzz_settings(EXAMPLES)
    @given(
        plans=st.tuples(plan, plan, plan), twist=st.sampled_from(XLSX_TWISTS), seed=st.integers(0, 2**32 - 1)
    )
    def run(plans: tuple[Plan, Plan, Plan], twist: str, seed: int) -> None:
        run_xlsx(list(plans), twist, seed)

    fuzz_until_enough(run, "welfare")


# ================================================================= members
MEMBERS_DDL = {
    "member": (
        "create table member (member_id integer primary key, id_card text, name text, phone text,"
        " union_code text, employment_form text, is_migrant integer, is_veteran integer,"
        " joined_on text, updated_at text, deleted_at text)"
    ),
    "member_card": (
        "create table member_card (card_event_id integer primary key, member_id integer,"
        " card_no text, action text, action_on text, updated_at text)"
    ),
}
"""The member platform's two tables (as tests/support.py MEMBERS_DDL), one statement each."""
DB_TWISTS = ("none",) * 8 + ("missing_column", "missing_table")
DB_JUNK = JUNK | st.binary(max_size=12) | st.floats() | st.integers(-(2**63), 2**63 - 1)


def db_value(rnd: random.Random, c: Column, canonical: str | None, is_key: bool) -> Any:
    """Any accepted database form of a canonical value (SQLite keeps whatever type it is given)."""
    if is_key:
        return int(canonical)  # type: ignore[arg-type]
    if canonical is None:
        return None
    if c.kind == "int":
        return rnd.choice([int(canonical), canonical, float(canonical)])
    if c.kind == "bool":
        one = canonical == "true"
        return rnd.choice([int(one), str(int(one)), float(one), canonical])
    if c.kind == "phone":
        return rnd.choice([canonical, int(canonical)])
    if c.kind == "text":
        return rnd.choice([benign_text(rnd, c, canonical), canonical.encode("utf-8")])
    if c.kind == "date":
        d = date.fromisoformat(canonical)
        return rnd.choice(
            [canonical, f"{d.year}/{d.month}/{d.day}", d.strftime("%Y%m%d"), f"{canonical} 00:00:00"]
        )
    return benign_text(rnd, c, canonical)


def db_row(rnd: random.Random, t: Table, r: Row) -> list[Any]:
    key = t.key[0]
    cells = {c.name: db_value(rnd, c, r.canonical[c.name], c.name == key) for c in t.columns}
    others = [c for c in t.columns if c.name != key]
    if r.cls == "ragged":  # no such thing in a database: junk in every column instead
        r.cls = "garbage"
    if r.cls == "malign":
        if rnd.random() < 0.1:
            cells[key] = -cells[key]  # a negative primary key: still the row's identity
            r.rules.add(f"{key}.integer")
        else:
            target = rnd.choice(others)
            if target.kind == "bool" and rnd.random() < 0.5:
                value, rule = rnd.choice([2, -1, "yes", "是", 0.5]), f"{target.name}.boolean"
            else:
                bad = malign_value(rnd, t, target, r.canonical[target.name])
                if bad is None:
                    r.cls = "valid"
                    return [cells[c.name] for c in t.columns]
                value, rule = bad
            cells[target.name] = value
            r.rules.add(rule)
    elif r.cls == "garbage":
        for junk in r.junk:
            c = rnd.choice(others)
            if isinstance(junk, int) and not -(2**63) <= junk < 2**63:
                junk = str(junk)
            cells[c.name] = junk
    return [cells[c.name] for c in t.columns]


def pull_all(url: str, t: Table, limit: int | None) -> list[Any]:
    """Every page of a full pull (the nightly flow's loop over members.read_page)."""
    engine = sa.create_engine(url)
    frames = []
    try:
        with engine.connect() as conn:
            cursor = None
            while True:
                frame, cursor = members.read_page(conn, t, PULLED_ON, None, cursor, limit)
                frames.append(frame)
                if cursor is None:
                    return frames
    finally:
        engine.dispose()


def screen_members(url: str, t: Table) -> Outcome:
    """One members table as the nightly flow screens it: read_page -> validate -> gate."""
    try:
        [frame] = pull_all(url, t, None)
    except BatchError as err:
        return Outcome(err.file, WHOLE_FILE, 0, error=err)
    [result], _ = validate_files([frame], t, frame["_file_name"][0] if frame.height else f"members/{t.name}")
    error = gate(result, f"members/{t.name}", QUALITY)
    return Outcome(f"members/{t.name}", t.name, frame.height, result=None if error else result, error=error)


def run_members(plans: list[Plan], twist: str, seed: int) -> None:
    source = "members"
    rnd = random.Random(seed)
    tables = list(schema.tables_of(source))
    broken = rnd.choice(tables)
    paged_table = rnd.choice(tables)
    rows: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "members.sqlite"
        con = sqlite3.connect(db)
        for t, plan in zip(tables, plans, strict=True):
            plan_values(t, plan)
            ddl = MEMBERS_DDL[t.name]
            if t is broken and twist == "missing_table":
                continue
            if t is broken and twist == "missing_column":
                gone = rnd.choice([c.name for c in t.columns if c.name not in (t.key[0], "updated_at")])
                ddl = re.sub(rf",\s*{gone} \w+", "", ddl)
                assert not re.search(rf"\b{gone}\b", ddl.split("(", 1)[1]), ddl
            con.execute(ddl)
            # (by whole word: member_card has both action and action_on)
            names = [c.name for c in t.columns if re.search(rf"\b{c.name}\b", ddl.split("(", 1)[1])]
            for r in plan.rows:
                cells = db_row(random.Random(r.seed + 1), t, r)
                r.number = cells[0]
                r.original = cells
                values = dict(zip([c.name for c in t.columns], cells, strict=True))
                marks = ", ".join("?" * len(names))
                con.execute(
                    f"insert into {t.name} ({', '.join(names)}) values ({marks})", [values[n] for n in names]
                )
                if r.cls == "malign":
                    # SQLite's type affinity may turn what was written into something else ('1e5' in an
                    # integer column is stored as 100000): the row's expected rule is then unknown
                    stored = con.execute(
                        f"select {', '.join(names)} from {t.name} where {t.key[0]} = ?", [values[t.key[0]]]
                    ).fetchone()
                    if [members.db_text(v) for v in stored] != [members.db_text(values[n]) for n in names]:
                        r.cls = "garbage"
            rows[t.name] = plan.rows
        con.commit()
        con.close()
        url = f"sqlite:///{db}"
        for t in tables:
            n = len(rows.get(t.name, plans[tables.index(t)].rows))
            CASES[source] += n
            where = f"members/{t.name} [{twist}]"
            outcome = screen_members(url, t)
            if t is broken and twist != "none":
                check_rejected(outcome, {"batch.columns"}, where, n)
                assert outcome.table_name == WHOLE_FILE
                continue
            assert outcome.table_name == t.name, f"{where}: {outcome.error}"
            VALIDATED[source] += check_table(t, outcome, rows[t.name], where, identity=t.key[0])
            # a paged pull (as the nightly flow streams it) reads every row exactly once, too: a first
            # page of k rows (often ending among the rows without updated_at, which come first), the rest
            # from its cursor; and, for one table, pages of a few rows all the way
            every = sorted(r.number for r in rows[t.name])
            engine = sa.create_engine(url)
            try:
                with engine.connect() as conn:
                    nulls = conn.execute(
                        sa.text(f"select count(*) from {t.name} where updated_at is null")
                    ).scalar_one()
                    k = rnd.randint(1, nulls) if nulls and rnd.random() < 0.7 else rnd.randint(1, len(every))
                    first, cursor = members.read_page(conn, t, PULLED_ON, None, None, k)
                    rest = (
                        members.read_page(conn, t, PULLED_ON, None, cursor, None)[0]
                        if cursor
                        else first.clear()
                    )
            finally:
                engine.dispose()
            split = [int(x) for f in (first, rest) for x in f[t.key[0]].to_list()]
            assert sorted(split) == every, (
                f"{where}: a first page of {k} rows, then the rest: rows lost or repeated"
            )
            if t is paged_table:
                limit = rnd.choice([3, 7])
                paged = [int(x) for f in pull_all(url, t, limit) for x in f[t.key[0]].to_list()]
                assert sorted(paged) == every, f"{where}: pages of {limit} rows lost or repeated rows"


def test_fuzz_members() -> None:
    member = row_plans(schema.table("members", "member"), 40, 60, ("none",))
    card = row_plans(schema.table("members", "member_card"), 24, 36, ("none",))

    @fuzz_settings(EXAMPLES)
    @given(plans=st.tuples(member, card), twist=st.sampled_from(DB_TWISTS), seed=st.integers(0, 2**32 - 1))
    def run(plans: tuple[Plan, Plan], twist: str, seed: int) -> None:
        run_members(list(plans), twist, seed)

    fuzz_until_enough(run, "members")


# ========================================================= found by fuzzing
def test_paged_pull_goes_past_rows_without_updated_at(tmp_path: Path) -> None:
    """A page ending on a row whose updated_at is NULL lost every row after it (`updated > NULL`)."""
    db = tmp_path / "m.sqlite"
    con = sqlite3.connect(db)
    con.execute(MEMBERS_DDL["member_card"])
    con.executemany(
        "insert into member_card values (?,?,?,?,?,?)",
        [
            (1, 1, "K1", "new", "2021-03-01", None),
            (2, 1, "K1", "renew", "2021-04-01", None),
            (3, 2, "K2", "new", "2021-03-01", "2021-03-01 09:00:00"),
            (4, 2, "K2", "renew", "2021-05-01", "2021-05-01 09:00:00"),
        ],
    )
    con.commit()
    con.close()
    t = schema.table("members", "member_card")
    for limit in (1, 2, 3):
        pages = pull_all(f"sqlite:///{db}", t, limit)
        assert [x for f in pages for x in f["card_event_id"].to_list()] == ["1", "2", "3", "4"], limit


@pytest.mark.parametrize(
    "line", [RAGGED_LINES[-2], RAGGED_LINES[-1]], ids=["int_over_digit_limit", "deep_nesting"]
)
def test_json_python_refuses_is_a_parse_error_row(line: str, tmp_path: Path) -> None:
    """Valid JSON syntax that json.loads still refuses (ValueError, RecursionError) crashed the reader."""
    path = tmp_path / "training" / DELIVERY.isoformat() / "sessions.jsonl"
    path.parent.mkdir(parents=True)
    good = json.dumps(
        {
            "session_id": "S1",
            "title": "讲座",
            "mode": "online",
            "start_date": "2021-05-01",
            "end_date": "2021-05-01",
        }
    )
    path.write_text(f"{good}\n{line}\n", encoding="utf-8")
    [delivery] = common.discover(tmp_path, "training")
    [outcome] = screen_delivery(delivery, QUALITY)
    assert outcome.error is None and outcome.result is not None
    assert outcome.result.passed["_row_number"].to_list() == [1]
    [bad] = outcome.result.quarantined.iter_rows(named=True)
    assert bad["_row_number"] == 2 and "row.parse" in bad["rules"].split(";")


# ================================================ a real `unionwh run` over fuzzed files
def random_plan(rnd: random.Random, n: int, twist: str = "none") -> Plan:
    """A plan like ``row_plans`` draws, from a seeded Random (one landing zone, not a search)."""
    rows = []
    for _ in range(n):
        roll = rnd.randrange(100)
        cls = "valid" if roll < 47 else "malign" if roll < 81 else "garbage" if roll < 97 else "ragged"
        junk = (
            [
                rnd.choice(
                    [
                        "",
                        "NULL",
                        "\u202e反转",
                        "👷\u200d♀️",
                        "=1+1",
                        "-0",
                        "1e309",
                        "\r\n",
                        "\x00",
                        "𠀀",
                        "Ｇ Ｈ",
                        '"',
                        "0" * 40,
                    ]
                )
                for _ in range(rnd.randint(1, 3))
            ]
            if cls == "garbage"
            else []
        )
        rows.append(Row(cls, {}, seed=rnd.randrange(2**32), junk=junk))
    blanks = sorted(rnd.randrange(n + 1) for _ in range(rnd.randrange(3)))
    return Plan(rows, blanks, twist, rnd.randrange(2**32))


def fuzzed_landing(root: Path, seed: int) -> dict[str, int]:
    """Every file source (two deliveries, every table, a few file-level twists) and a members
    database, all fuzzed; the number of generated rows per delivered file (rel name)."""
    rnd = random.Random(seed)
    written: dict[str, int] = {}
    later = (
        "none",
        "none",
        "reorder",
        "extra_column",
        "wrong_encoding",
        "missing_column",
        "unit_wan",
        "header_only",
    )
    for day, twist_pool in ((date(2021, 5, 31), ("none",)), (DELIVERY, later)):
        for source in ("registry", "rights", "finance", "events", "training"):
            for t in schema.tables_of(source):
                plan = random_plan(rnd, rnd.randint(15, 30), rnd.choice(twist_pool))
                plan_values(t, plan)
                if source == "training":
                    data, rows, _ = jsonl_delivery(t, plan, random.Random(plan.seed))
                else:
                    data, rows, _ = csv_delivery(t, plan, random.Random(plan.seed))
                path = root / source / day.isoformat() / t.file_pattern
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                written[path.relative_to(root).as_posix()] = len(rows)
        tables = [schema.table("welfare", n) for n in schema.WELFARE_SHEETS.values()]
        sheets = []
        n_rows = 0
        for (sheet, _), t in zip(schema.WELFARE_SHEETS.items(), tables, strict=True):
            plan = random_plan(rnd, rnd.randint(8, 15))
            plan_values(t, plan)
            header, records = sheet_rows(t, plan, rnd, False, 0)
            n_rows += sum(1 for r, _, _ in records if r is not None)
            sheets.append((sheet, header, records, 0))
        path = root / "welfare" / day.isoformat() / f"HG01_2021{day.month:02d}.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(workbook_bytes(sheets))
        written[path.relative_to(root).as_posix()] = n_rows
    con = sqlite3.connect(root / "members.sqlite")
    for t in schema.tables_of("members"):
        con.execute(MEMBERS_DDL[t.name])
        plan = random_plan(rnd, 40)
        plan_values(t, plan)
        for r in plan.rows:
            cells = db_row(random.Random(r.seed + 1), t, r)
            con.execute(f"insert into {t.name} values ({', '.join('?' * len(cells))})", cells)
        written[f"members/{t.name}"] = len(plan.rows)
    con.commit()
    con.close()
    return written


@pytest.mark.e2e
def test_a_real_run_over_fuzzed_deliveries_ends_cleanly_and_conserves_rows(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import clean_env, local_prefect_server

    # a new landing zone every run; UNIONWH_FUZZ_SEED=<seed> replays one a failure printed
    seed = int(os.environ.get("UNIONWH_FUZZ_SEED") or random.SystemRandom().randrange(1_000_000))
    landing = tmp_path / "landing"
    written = fuzzed_landing(landing, seed)
    warehouse = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    with local_prefect_server(tmp_path / "prefect") as (api_url, _):
        env = dict(
            clean_env(),
            PREFECT_API_URL=api_url,
            PREFECT_HOME=str(tmp_path / "prefect-client"),
            UNIONWH_HOME=str(tmp_path),
            UNIONWH_LANDING=str(landing),
            UNIONWH_WAREHOUSE=warehouse,
            UNIONWH_OUTPUT=str(tmp_path / "runs"),
            UNIONWH_PII_KEY="fuzz-test-key-0123456789abcdef",
            UNIONWH_REPORT_YEAR="2021",
        )
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    where = f"landing seed {seed} (fuzzed_landing(<dir>, {seed}) rebuilds it)"
    tail = f"\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert done.returncode in (0, 1), f"{where}: exit {done.returncode}{tail}"
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, f"{where}{tail}"
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            ledger = conn.execute(
                sa.text(
                    "select source, table_name, file_name, rows_read, rows_loaded, rows_quarantined, status, "
                    "error_rule from ops.load_ledger"
                )
            ).all()
            quarantine = dict(
                conn.execute(
                    sa.text(
                        "select file_name || '|' || table_name, count(*) from ops.quarantine "
                        "where rules <> '' and reasons like '%zh%' group by 1"
                    )
                ).all()
            )
            raw = {}
            for t in schema.TABLES:
                raw.update(
                    {
                        f"{f}|{t.name}": n
                        for f, n in conn.execute(
                            sa.text(f"select _file_name, count(*) from raw.{t.raw_table} group by 1")
                        ).all()
                    }
                )
    finally:
        engine.dispose()
    assert ledger, f"{where}: nothing in the ledger{tail}"
    by_file: defaultdict[str, int] = defaultdict(int)
    for source, table, file, read, loaded, quarantined, status, rule in ledger:
        what = (
            f"{where}: {file} ({table}) {status} {rule}: read {read}, loaded {loaded}, "
            f"quarantined {quarantined}"
        )
        if status == "loaded":
            assert read == loaded + quarantined, what
            assert raw.get(f"{file}|{table}", 0) == loaded, what
            assert quarantine.get(f"{file}|{table}", 0) == quarantined, what
        else:
            assert status == "rejected" and rule in KNOWN_BATCH_RULES, what
            assert loaded == quarantined == 0, what
        by_file[file] += read
    print(
        f"\nreal run ({where}): exit {done.returncode}, {len(ledger)} ledger rows, "
        f"{sum(r[3] for r in ledger)} rows read, {sum(r[4] for r in ledger)} loaded, "
        f"{sum(r[5] for r in ledger)} quarantined, "
        f"rejected: {Counter(r[7] for r in ledger if r[6] == 'rejected')}"
    )
    # every delivered file was looked at, and read all of its rows (a rejected file may hold its rows back
    # before counting them: read is then 0 or all)
    missing = set(written) - set(by_file)
    assert not missing, f"{where}: files not in the ledger: {sorted(missing)}{tail}"
    statuses = {f: {s for _, _, f2, _, _, _, s, _ in ledger if f2 == f} for f in written}
    for file, n in written.items():
        if statuses[file] == {"loaded"}:
            assert by_file[file] == n, f"{where}: {file}: {n} rows written, {by_file[file]} read"
        else:
            assert by_file[file] in (0, n), f"{where}: {file}: {n} rows written, {by_file[file]} read"
