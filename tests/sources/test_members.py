"""members: incremental pull from a real SQLite database."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows import schema
from flows.errors import BatchError
from flows.sources import common, members

pytestmark = pytest.mark.unit

DDL = (
    "create table member (member_id integer primary key, id_card text, name text, phone text, union_code text,"
    " employment_form text, is_migrant integer, is_veteran integer, joined_on text, updated_at text,"
    " deleted_at text);"
    "create table member_card (card_event_id integer primary key, member_id integer, card_no text, action text,"
    " action_on text, updated_at text);"
)


def make_db(path: Path, extra: str = "") -> str:
    con = sqlite3.connect(path)
    con.executescript(DDL + extra)
    con.executemany(
        "insert into member values (?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                3,
                "11010119900307123x",
                " 张三 ",
                "13800138000",
                "gh0000000001",
                "courier",
                1,
                0,
                "2021/3/5",
                "2021-03-05 09:00:00",
                None,
            ),
            (
                1,
                "110101199003071234",
                "李四",
                None,
                "GH0000000002",
                "standard",
                0,
                1,
                "2021-01-02",
                "2021-03-05 09:00:00",
                "2021-06-01T10:00:00",
            ),
            (
                2,
                "110101199003071234",
                "王五",
                13900139000,
                "GH0000000002",
                "other",
                1,
                1,
                "20210230",
                "2021-07-01 08:00:00.250000",
                None,
            ),
        ],
    )
    con.executemany(
        "insert into member_card values (?,?,?,?,?,?)",
        [
            (1, 3, "K1", "new", "2021-03-01", "2021-03-01 09:00:00"),
            (2, 3, "K1", "renew", "2021/9/1", "2021-09-01 09:00:00"),
        ],
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def pull(url: str, since: dict[str, datetime | None]) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return members.read(conn, date(2021, 10, 1), since)
    finally:
        engine.dispose()


def test_full_pull(tmp_path: Path) -> None:
    frames = pull(make_db(tmp_path / "m.sqlite"), {"member": None, "member_card": None})
    m = frames["member"]
    t = schema.table("members", "member")
    assert m.columns == [c.name for c in t.all_columns] + list(common.META_OUT)
    assert m.select([c.name for c in t.columns]).rows() == [
        (
            "1",
            "110101199003071234",
            "李四",
            None,
            "GH0000000002",
            "standard",
            "false",
            "true",
            "2021-01-02",
            "2021-03-05 09:00:00",
            "2021-06-01 10:00:00",
        ),
        (
            "3",
            "11010119900307123X",
            "张三",
            "13800138000",
            "GH0000000001",
            "courier",
            "true",
            "false",
            "2021-03-05",
            "2021-03-05 09:00:00",
            None,
        ),
        (
            "2",
            "110101199003071234",
            "王五",
            "13900139000",
            "GH0000000002",
            "other",
            "true",
            "true",
            "20210230",
            "2021-07-01 08:00:00",
            None,
        ),
    ]
    assert m["_row_number"].to_list() == [1, 2, 3]
    assert m["_file_name"].to_list() == ["members/member"] * 3
    assert m["_delivery_date"].to_list() == ["2021-10-01"] * 3
    assert m["_source"][0] == "members"
    assert m["_parse_error"].to_list() == [None] * 3
    assert json.loads(m["_original"][1])["name"] == " 张三 "
    assert len(m["_file_sha256"][0]) == 64 and m["_file_sha256"].n_unique() == 1
    c = frames["member_card"]
    assert c.select("card_event_id", "member_id", "card_no", "action", "action_on", "updated_at").rows() == [
        ("1", "3", "K1", "new", "2021-03-01", "2021-03-01 09:00:00"),
        ("2", "3", "K1", "renew", "2021-09-01", "2021-09-01 09:00:00"),
    ]
    assert c["_file_name"][0] == "members/member_card"
    assert members.max_updated_at(m) == datetime(2021, 7, 1, 8, 0, 0, 250000)
    assert members.max_updated_at(c) == datetime(2021, 9, 1, 9, 0)


def test_since_filters_and_hash_is_deterministic(tmp_path: Path) -> None:
    url = make_db(tmp_path / "m.sqlite")
    frames = pull(url, {"member": datetime(2021, 3, 5, 9, 0), "member_card": datetime(2021, 9, 1, 9, 0)})
    assert frames["member"]["member_id"].to_list() == ["2"]
    assert frames["member_card"].height == 0
    assert members.max_updated_at(frames["member_card"]) is None
    frames = pull(url, {"member": datetime(2021, 7, 1, 8, 0, 0, 250000)})
    assert frames["member"].height == 0
    again = pull(url, {"member": datetime(2021, 3, 1), "member_card": None})
    twice = pull(url, {"member": datetime(2021, 3, 1), "member_card": None})
    assert again["member"]["_file_sha256"][0] == twice["member"]["_file_sha256"][0]
    assert again["member"]["member_id"].to_list() == ["1", "3", "2"]


def test_overlap_window_and_drop_seen(tmp_path: Path) -> None:
    mark = datetime(2021, 7, 1, 8, 5)
    assert members.lower_bound(mark, timedelta(minutes=10)) == datetime(2021, 7, 1, 7, 55)
    assert members.lower_bound(None, timedelta(minutes=10)) is None
    frame = pull(make_db(tmp_path / "m.sqlite"), {"member": None, "member_card": None})["member"]
    t = schema.table("members", "member")
    assert frame.select(members.version_key(t)).to_series().to_list() == [
        "1|2021-03-05 09:00:00",
        "3|2021-03-05 09:00:00",
        "2|2021-07-01 08:00:00",
    ]
    kept, dropped = members.drop_seen(
        frame, t, {"1|2021-03-05 09:00:00", "2|2021-06-30 08:00:00"}, {frame["_original"][1]}
    )
    assert (kept["member_id"].to_list(), dropped) == (["2"], 2)
    assert members.drop_seen(frame, t, set(), set()) == (frame, 0)


def test_window_versions_are_the_version_keys_of_the_full_pull(tmp_path: Path) -> None:
    """The overlap window's probe reads two columns and gives the same version keys as the
    canonical frame of the full rows (a timestamp with microseconds, a key as integer)."""
    url = make_db(tmp_path / "m.sqlite")
    t = schema.table("members", "member")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            keys, versions = members.window_versions(
                conn, t, datetime(2021, 3, 1), datetime(2021, 7, 1, 8, 0, 1)
            )
            full, _ = members.read_page(conn, t, date(2021, 10, 1), datetime(2021, 3, 1))
            assert keys == [1, 3, 2]  # as the database gives them, in (updated_at, key) order
            assert versions == full.select(members.version_key(t)).to_series().to_list()
            # the window's end is inclusive, its start is not
            assert (
                members.window_versions(conn, t, datetime(2021, 3, 5, 9, 0), datetime(2021, 7, 1, 8, 0))[0]
                == []
            )
            assert members.window_versions(conn, t, datetime(2021, 3, 1), datetime(2021, 3, 5, 9, 0))[0] == [
                1,
                3,
            ]
    finally:
        engine.dispose()


def test_a_window_page_reads_of_the_window_only_the_keys_it_names(tmp_path: Path) -> None:
    url = make_db(tmp_path / "m.sqlite")
    t = schema.table("members", "member")
    since, end = datetime(2021, 3, 1), datetime(2021, 3, 5, 9, 0)  # the window holds members 1 and 3
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:

            def ids(window: members.Window, **page: object) -> list[str]:
                frame, _ = members.read_page(conn, t, date(2021, 10, 1), since, window=window, **page)
                return frame["member_id"].to_list()

            assert ids(members.Window(end, [3])) == ["3", "2"]  # 2 is after the window: always read
            assert ids(members.Window(end, [])) == ["2"]
            assert ids(members.Window(end, [1, 3])) == ["1", "3", "2"]
            assert ids(members.Window(end, [1, 3]), limit=2) == ["1", "3"]
            assert ids(members.Window(end, [3]), after=(("2021-03-05 09:00:00"), 1)) == ["3", "2"]
    finally:
        engine.dispose()


def test_missing_table_or_column(tmp_path: Path) -> None:
    db = tmp_path / "bad.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "create table member (member_id integer primary key, id_card text, name text, phone text,"
        " union_code text, employment_form text, is_migrant integer, is_veteran integer,"
        " joined_on text, updated_at text);"
    )
    con.close()
    with pytest.raises(BatchError) as exc:
        pull(f"sqlite:///{db}", {})
    assert exc.value.file == "members/member"
    assert exc.value.rule == "batch.columns"
    assert exc.value.message.startswith("missing column(s) deleted_at")
    con = sqlite3.connect(db)
    con.executescript("alter table member add column deleted_at text;")
    con.close()
    with pytest.raises(BatchError) as exc:
        pull(f"sqlite:///{db}", {})
    assert exc.value.file == "members/member_card"
    assert exc.value.rule == "batch.columns"
    assert "does not exist" in exc.value.message


def test_date_and_datetime_objects_from_server_databases() -> None:
    t = schema.table("members", "member_card")
    rows = [(7, 3, 12345, "new", date(2021, 3, 5), datetime(2021, 3, 5, 8, 9, 10, 500))]
    f = members.table_frame(t, rows, date(2021, 10, 1))
    assert f.select("card_event_id", "member_id", "card_no", "action", "action_on", "updated_at").rows() == [
        ("7", "3", "12345", "new", "2021-03-05", "2021-03-05 08:09:10")
    ]
    assert members.max_updated_at(f) == datetime(2021, 3, 5, 8, 9, 10, 500)
    assert members.db_text(True) == "true"
    assert members.db_text(False) == "false"


def test_pages_follow_updated_at_then_key_and_add_up_to_the_full_pull(tmp_path: Path) -> None:
    url = make_db(tmp_path / "m.sqlite")
    t = schema.table("members", "member")
    engine = sa.create_engine(url)
    keys: list[str] = []
    cursors = []
    try:
        with engine.connect() as conn:
            cursor = None
            while True:
                page, cursor = members.read_page(conn, t, date(2021, 10, 1), None, cursor, limit=1)
                keys += page["member_id"].to_list()
                cursors.append(cursor)
                if cursor is None:
                    break
            # Two rows share updated_at 09:00:00: the key breaks the tie, so neither is lost.
            assert keys == ["1", "3", "2"]
            assert cursors[:2] == [("2021-03-05 09:00:00", 1), ("2021-03-05 09:00:00", 3)]
            # A page of exactly the rows left still reports a cursor; the next page is empty.
            assert cursors[2] == ("2021-07-01 08:00:00.250000", 2) and cursors[3] is None
            rest, none = members.read_page(conn, t, date(2021, 10, 1), datetime(2021, 3, 6), None, limit=10)
            assert rest["member_id"].to_list() == ["2"] and none is None
    finally:
        engine.dispose()
    assert members.updated_range(pull(url, {"member": None})["member"]) == (
        datetime(2021, 3, 5, 9),
        datetime(2021, 7, 1, 8),
    )
