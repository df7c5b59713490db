"""members: the canonical frames of a pull, frozen byte for byte (issue 22, item 2).

Tables of every kind of value the contract's columns can get from a database, in a real SQLite
file (untyped columns hand back ints, floats, text, blobs and NULLs as stored; TEXT timestamps in
several forms) and in a real PostgreSQL schema (bigint, numeric/Decimal, double precision, bytea,
boolean, smallint 0/1, date, timestamp with and without microseconds), pulled through
``members.read_page`` (full pulls, pages past a cursor, a ``since``). Every column of every frame
(``_original``, ``_file_sha256``, ``_control_chars`` included), its dtypes and the pages' cursors
are compared with what the reader gave before it was made columnar, stored under
``tests/sources/frozen/members-*``.

Those files were written once, against the per-cell reader, by :func:`regenerate`::

    .venv/bin/python -c 'from tests.sources.test_members_frames_frozen import regenerate; regenerate()'

Regenerate only for an intended change of the frames, and say so in the commit.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flows import schema
from flows.errors import BatchError
from flows.sources import members
from tests.support import PG_SERVER, postgres_or_skip

FROZEN = Path(__file__).parent / "frozen"
PULLED_ON = date(2021, 10, 1)
SINCE = datetime(2021, 3, 5, 9, 0)
CASES: tuple[tuple[str, str, datetime | None, int | None], ...] = (
    # (case, table, since, page size: None = one full pull)
    ("member-full", "member", None, None),
    ("member-pages", "member", None, 3),
    ("member-since", "member", SINCE, None),
    ("card-full", "member_card", None, None),
    ("card-pages", "member_card", None, 2),
)

# SQLite: columns without a type keep every value as stored (int, float, text, blob, NULL).
SQLITE_DDL = (
    "create table member (member_id integer primary key, id_card text, name, phone, union_code,"
    " employment_form text, is_migrant, is_veteran, joined_on, updated_at, deleted_at);"
    "create table member_card (card_event_id integer primary key, member_id, card_no, action text,"
    " action_on, updated_at text);"
)
CONTROL = 'a\x00b\x01c\x1fd\ne\rf\tg"h\\i\x7fj\u2028k'
SQLITE_MEMBERS: list[tuple[Any, ...]] = [
    (
        1,
        "110101199003071234",
        " 张三 ",
        "13800138000",
        "GH0000000001",
        "standard",
        1,
        0,
        "2021-01-02",
        "2021-03-05 09:00:00",
        None,
    ),
    (
        2,
        "11010119900307123x",
        "ＡＢＣ\u3000全角",
        13900139000,
        "gh0000000002",
        " courier ",
        0,
        1,
        "2021/3/5",
        "2021-03-05 09:00:00.250000",
        "2021-06-01T10:00:00",
    ),
    (
        3,
        "110101199003071234",
        CONTROL,
        1.0,
        b"GH0000000003",
        "other",
        1.0,
        0.0,
        20210305,
        "2021-03-05T09:00:00",
        "",
    ),
    (
        4,
        "",
        12.5,
        0.1,
        "ＧＨ００００００００４",
        "food_delivery",
        "true",
        "否",
        "2021年3月5日",
        "2021-04-01 10:00",
        "   ",
    ),
    (5, "   ", -0.0, 1e20, b"\xff\xfeGH", "standard", 2, -1, 44000, 1614934800, 1614934800.5),
    (6, None, None, None, None, None, None, None, None, None, None),
    (
        7,
        "x" * 3000,
        "😀 emoji",
        float("inf"),
        "GH0000000007",
        "standard\x00",
        1,
        1,
        44000.0,
        "2021-12-31 23:59:59.999999",
        "2021/6/1 10:00",
    ),
    (
        8,
        "110101199003071234",
        b"\xe5\xbc\xa0\xe4\xb8\x89",
        123456789012345678,
        "GH0000000008",
        "courier",
        0,
        0,
        "2021-02-30",
        "2021-03-05 09:00:01",
        1.5e-7,
    ),
    (
        9,
        "110101199003071234",
        "tail\u3000",
        -7,
        "GH0000000009",
        "Standard",
        1,
        0,
        "2021-03-05",
        "2021-03-05 09:00:00",
        "2021-03-05 09:00:00.000001",
    ),
]
SQLITE_CARDS: list[tuple[Any, ...]] = [
    (1, 3, "K1", "new", "2021-03-01", "2021-03-01 09:00:00"),
    (2, 3.0, 12345, "renew", "2021/9/1", "2021-09-01 09:00:00"),
    (3, "3", 1.25, " lost ", 20210901, "2021-09-01 09:00:00.5"),
    (4, None, None, None, None, None),
    (5, 9, b"K\x00\xff", "new", "2021-09-01", "2021-09-01 08:00"),
]

PG_DDL = (
    "create table member (member_id bigint primary key, id_card text, name varchar(40), phone numeric(20,4),"
    " union_code bytea, employment_form text, is_migrant boolean, is_veteran smallint, joined_on date,"
    " updated_at timestamp(6), deleted_at timestamp);"
    "create table member_card (card_event_id integer primary key, member_id double precision, card_no numeric,"
    " action text, action_on date, updated_at timestamp)"
)
PG_CONTROL = CONTROL.replace("\x00", "")  # PostgreSQL cannot store NUL in text
PG_MEMBERS: list[tuple[Any, ...]] = [
    (
        1,
        "110101199003071234",
        " 张三 ",
        Decimal(13800138000),
        b"GH0000000001",
        "standard",
        True,
        0,
        date(2021, 1, 2),
        datetime(2021, 3, 5, 9),
        None,
    ),
    (
        2,
        "11010119900307123x",
        "ＡＢＣ\u3000全角",
        Decimal("13900139000.5000"),
        b"gh0000000002",
        " courier ",
        False,
        1,
        date(2021, 3, 5),
        datetime(2021, 3, 5, 9, 0, 0, 250000),
        datetime(2021, 6, 1, 10),
    ),
    (
        3,
        "110101199003071234",
        PG_CONTROL,
        Decimal("-0.0001"),
        b"\xff\xfe",
        "other",
        None,
        2,
        date(1948, 12, 31),
        datetime(2021, 3, 5, 9),
        datetime(2021, 3, 5, 9, 0, 0, 1),
    ),
    (4, "", "", Decimal(0), b"", "", True, None, None, datetime(2021, 4, 1, 10), None),
    (5, None, None, None, None, None, None, None, None, None, None),
    (
        6,
        "   ",
        "😀",
        Decimal("1E+3"),
        "张三".encode(),
        "standard",
        False,
        0,
        date(2021, 12, 31),
        datetime(2021, 12, 31, 23, 59, 59, 999999),
        datetime(9999, 12, 31, 23, 59, 59),
    ),
]
PG_CARDS: list[tuple[Any, ...]] = [
    (1, 3.0, Decimal(12345), "new", date(2021, 3, 1), datetime(2021, 3, 1, 9)),
    (2, 3.5, Decimal("1.50"), "renew", date(2021, 9, 1), datetime(2021, 9, 1, 9, 0, 0, 500000)),
    (3, 1e20, Decimal("-1E-10"), " lost ", date(2021, 9, 1), datetime(2021, 9, 1, 9)),
    (4, None, None, None, None, None),
    (
        5,
        float("nan"),
        Decimal("123456789012345678901234567890.123"),
        "new",
        date(2021, 9, 1),
        datetime(2021, 9, 1, 8),
    ),
]


def sqlite_database(path: Path) -> str:
    con = sqlite3.connect(path)
    con.executescript(SQLITE_DDL)
    con.executemany("insert into member values (?,?,?,?,?,?,?,?,?,?,?)", SQLITE_MEMBERS)
    con.executemany("insert into member_card values (?,?,?,?,?,?)", SQLITE_CARDS)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A schema of its own in the test database, with the tables filled; yields a URL whose
    search path is that schema; dropped afterwards."""
    name = f"members_frozen_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{PG_SERVER}/test")
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"create schema {name}")
            conn.exec_driver_sql(f"set local search_path to {name}")
            for statement in PG_DDL.split(";"):
                conn.exec_driver_sql(statement)
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.executemany(f"insert into member values ({','.join(['%s'] * 11)})", PG_MEMBERS)
                cur.executemany(f"insert into member_card values ({','.join(['%s'] * 6)})", PG_CARDS)
        yield f"{PG_SERVER}/test?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema if exists {name} cascade")
        admin.dispose()


def _cursor_text(cursor: tuple[Any, Any] | None) -> list[str] | None:
    return None if cursor is None else [f"{type(v).__name__}:{v!r}" for v in cursor]


def frames_of(conn: Connection, prefix: str) -> dict[str, str]:
    """``{file name: content}`` of every case pulled through ``conn``: one NDJSON per frame
    (a page each for paged cases) and ``members-<prefix>-meta.json`` with the dtypes and cursors."""
    out: dict[str, str] = {}
    meta: dict[str, Any] = {}
    for case, table, since, limit in CASES:
        t = schema.table("members", table)
        cursor: tuple[Any, Any] | None = None
        cursors: list[list[str] | None] = []
        page = 0
        while True:
            page += 1
            frame, cursor = members.read_page(conn, t, PULLED_ON, since, cursor, limit)
            name = f"members-{prefix}-{case}" + (f"-page{page}" if limit else "")
            out[f"{name}.ndjson"] = frame.write_ndjson()
            meta[name] = {"dtypes": {k: str(v) for k, v in frame.schema.items()}, "height": frame.height}
            cursors.append(_cursor_text(cursor))
            if cursor is None:
                break
        meta[f"members-{prefix}-{case}"] = meta.get(f"members-{prefix}-{case}", {}) | {"cursors": cursors}
    out[f"members-{prefix}-meta.json"] = json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    return out


def sqlite_frames(tmp: Path) -> dict[str, str]:
    engine = sa.create_engine(sqlite_database(tmp / "members.sqlite"))
    try:
        with engine.connect() as conn:
            return frames_of(conn, "sqlite")
    finally:
        engine.dispose()


def postgres_frames() -> dict[str, str]:
    with postgres_schema() as url:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return frames_of(conn, "postgresql")
        finally:
            engine.dispose()


def regenerate() -> None:
    """Write the frozen files from the reader as it is now (see the module docstring)."""
    import tempfile  # deferred: only the one-off regeneration needs a scratch folder

    FROZEN.mkdir(exist_ok=True)
    for old in FROZEN.glob("members-*"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        files = sqlite_frames(Path(tmp)) | postgres_frames()
    for name, text in files.items():
        (FROZEN / name).write_text(text, encoding="utf-8")


def assert_frozen(files: dict[str, str], prefix: str) -> None:
    stored = {p.name for p in FROZEN.glob(f"members-{prefix}-*")}
    assert set(files) == stored
    for name, text in files.items():
        frozen = (FROZEN / name).read_text(encoding="utf-8")
        if text != frozen:
            for i, (a, b) in enumerate(zip(text.splitlines(), frozen.splitlines(), strict=False), start=1):
                if a != b and name.endswith(".ndjson"):
                    now, then = json.loads(a), json.loads(b)
                    differ = [k for k in then if now.get(k) != then[k]] + [k for k in now if k not in then]
                    raise AssertionError(f"{name} line {i} differs in {differ}")
                assert a == b, f"{name} line {i} differs"
            assert text == frozen, f"{name} differs in its number of lines"


@pytest.mark.unit
def test_sqlite_frames_are_frozen(tmp_path: Path) -> None:
    files = sqlite_frames(tmp_path)
    # the corpus reaches what it is meant to: every Python type SQLite hands back, pages, a since
    assert {type(v) for r in SQLITE_MEMBERS for v in r} >= {int, float, str, bytes, type(None)}
    assert sum(1 for n in files if "-pages-page" in n) >= 5
    assert_frozen(files, "sqlite")


@pytest.mark.postgres
def test_postgresql_frames_are_frozen() -> None:
    postgres_or_skip()
    files = postgres_frames()
    assert_frozen(files, "postgresql")


@pytest.mark.unit
def test_json_text_is_json_dumps_for_every_code_point() -> None:
    """The vectorised encoding of ``_original`` and the digest, proven on every character (the
    encoder escapes character by character) and on strings that mix the escaped ones."""
    chars = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    texts: list[str | None] = [*chars, None, "", 'a"b\\c\n\x00d\u3000张', '\\"' * 3, CONTROL * 2]
    got = pl.DataFrame({"v": texts}, schema={"v": pl.String}).select(members.json_text(pl.col("v")))
    want = ["null" if v is None else json.dumps(v, ensure_ascii=False) for v in texts]
    assert got.to_series().to_list() == want


@pytest.mark.unit
def test_column_text_is_db_text_of_each_value() -> None:
    columns: list[list[Any]] = [
        ["a", None, " b ", ""],
        [1, None, -7, 10**30],
        [True, 1, 0, None],
        [1, 1.0, 1.5, Decimal("2.50"), None],
        [date(2021, 3, 5), datetime(2021, 3, 5, 9, 0, 0, 1), "2021-03-05", None],
        # naive timestamps go through Polars: microseconds only when there are some
        [
            datetime(2021, 3, 5, 9),
            None,
            datetime(2021, 3, 5, 9, 0, 0, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
        ],
        [datetime(1000, 1, 1), datetime(1970, 1, 1), datetime(1969, 12, 31, 23, 59, 59, 500000)],
        [datetime(999, 12, 31, 23, 59, 59), datetime(2021, 3, 5)],  # no 4-digit year: cell by cell
        [
            datetime(2021, 3, 5, 9, tzinfo=timezone(timedelta(hours=8))),
            datetime(2021, 3, 5),
        ],  # wall time kept
        [b"\xe5\xbc\xa0", bytearray(b"x"), memoryview(b"\xff"), None],
        [],
        [None, None],
    ]
    for values in columns:
        assert members.column_text(tuple(values)) == [members.db_text(v) for v in values]


@pytest.mark.unit
def test_a_text_that_is_no_utf8_makes_the_table_unreadable_without_quoting_it(tmp_path: Path) -> None:
    """SQLite fails on such a text while the rows are fetched, after the query ran: still one
    ``batch.unreadable`` naming the table and the driver error, never the value."""
    path = tmp_path / "members.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SQLITE_DDL)
    con.executemany("insert into member values (?,?,?,?,?,?,?,?,?,?,?)", SQLITE_MEMBERS[:2])
    con.execute(
        "insert into member (member_id, name, updated_at) values (99, cast(x'ff5a4851' as text),"
        " '2021-12-31 00:00:00')"
    )
    con.commit()
    con.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn, pytest.raises(BatchError) as exc:
            members.read_page(conn, schema.table("members", "member"), PULLED_ON, None)
    finally:
        engine.dispose()
    assert (exc.value.file, exc.value.rule) == ("members/member", "batch.unreadable")
    assert exc.value.message.startswith(
        "cannot read table member: OperationalError: Could not decode to UTF-8"
    )
    assert "ZHQ" not in str(exc.value)
