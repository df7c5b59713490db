"""No cell value of a personal column in any message, log, notification or ledger field.

Contract v1.1 ("Hostile and broken input", messages): errors name files, rows, columns and
rules, never a resident ID, name, phone or 获奖对象. The deliveries here hide personal data
in every error path a reader or the loader has: files that lost their header row (the
first record, a name, a resident ID and a phone, stands where the headers should be) for
every source with a personal column (welfare's three sheets, rights cases.csv, events
honours.csv, training attendance.jsonl, the members database's member table imported
without its header), a welfare sheet named after a person, an .xlsx that is a CSV, a quote
left open, a CSV field over the parser's limit, JSON lines that are not JSON objects, a
members view whose read fails quoting a resident ID, and a warehouse table that refuses a
name (PostgreSQL's COPY error quotes the row; DuckDB's conversion error the value).

Each person is used on one path only, so a leak names its path. One real ``unionwh run``
(a child process, as a user starts it) goes over them all; then every output is searched
for every ID, name and phone: the console, every ops table (ops.quarantine's
``original_values`` excepted: the quarantine keeps the row by design, and the test checks
the values are found there, so the search works), the run folder (Data Docs, reports, dbt
logs), Prefect's database and the failure notification's body.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flows import schema
from flows.checksums import resident_id_check_char
from flows.errors import WarehouseWriteError
from flows.warehouse.loader import insert_frame
from tests.support import (
    Hook,
    clean_env,
    create_database,
    drop_database,
    hook_fixture,
    postgres_or_skip,
    prefect_text,
    workbook,
)

UNIONWH = [sys.executable, "-m", "flows.cli"]
NAMES = (
    "龚若曦",
    "邬梓萱",
    "冼浩然",
    "闵思远",
    "蔺子涵",
    "缪嘉怡",
    "覃一鸣",
    "鄢书瑶",
    "阙明哲",
    "訾雨桐",
    "蒯文博",
    "仉晓彤",
    "郜静姝",
    "苗蔚然",
    "庹志强",
    "亓佳琪",
)
"""Three-character names (a two-character name is too common to search for)."""


@dataclass(frozen=True)
class Person:
    name: str
    id_card: str
    phone: str

    @property
    def values(self) -> tuple[str, ...]:
        # the ID's first 14 characters too: a message cut short must not keep most of an ID
        return self.name, self.id_card, self.id_card[:14], self.phone


def resident_id(n: int, check: str | None = None) -> str:
    """A checksum-valid fake resident ID (born 1980-1990); ``check``: the check character wanted."""
    for seq in range(n * 37, n * 37 + 1000):
        body = f"110105{1980 + n % 10}{(n % 12) + 1:02d}{(n % 27) + 1:02d}{seq % 1000:03d}"
        char = resident_id_check_char(body)
        if check is None or char == check:
            return body + char
    raise AssertionError("no ID with that check character")  # pragma: no cover


def people() -> dict[str, Person]:
    paths = (
        "condolence",
        "health",
        "relief",
        "sheet",
        "xlsx",
        "cases",
        "cases_quote",
        "honours",
        "honours_row",
        "honours_limit",
        "attendance",
        "attendance_lines",
        "member_view",
        "member_import",
        "refused",
    )
    return {
        p: Person(NAMES[i], resident_id(i + 1, "X" if p == "member_view" else None), f"139{57000000 + i:08d}")
        for i, p in enumerate(paths)
    }


def headers(source: str, table: str) -> list[str]:
    return [
        c.header + ("(元)" if c.kind == "amount" else "")
        for c in schema.table(source, table).columns
        if c.header
    ]


def write_landing(landing: Path, p: dict[str, Person]) -> None:
    """Every broken delivery (see the module docstring); dated 2021-04-01 unless a second file of
    the same name needs another day."""

    def folder(source: str, day: str = "2021-04-01") -> Path:
        d = landing / source / day
        d.mkdir(parents=True, exist_ok=True)
        return d

    cond, health, relief = (headers("welfare", t) for t in ("condolence", "health_checks", "relief"))
    ok = {"慰问": [cond], "体检": [health], "救助": [relief]}

    def lost(sheet: str, x: Person) -> list[list[Any]]:  # a sheet whose header row was deleted
        first = {
            "慰问": ["2021-03-01", "两节慰问", "农民工", x.name, x.id_card, "GH0000000001", "现金", 500],
            "体检": ["2021-03-01", x.name, x.id_card, "农民工", "市体检中心", 300],
            "救助": ["2021-03-01", x.name, x.id_card, "大病救助", 2000, "SP001"],
        }[sheet]
        return [first + [x.phone], first + [x.phone]]

    w = folder("welfare")
    workbook(w / "A01_202103.xlsx", ok | {"慰问": lost("慰问", p["condolence"])})
    workbook(w / "A02_202103.xlsx", ok | {"体检": lost("体检", p["health"])})
    workbook(w / "A03_202103.xlsx", ok | {"救助": lost("救助", p["relief"])})
    workbook(w / "A04_202103.xlsx", {"慰问": [cond], "体检": [health], p["sheet"].name: [relief]})
    x = p["xlsx"]
    (w / "A05_202103.xlsx").write_text(
        f"姓名,身份证号,电话\n{x.name},{x.id_card},{x.phone}\n", encoding="utf-8"
    )

    cases = ",".join(headers("rights", "cases"))
    x = p["cases"]
    (folder("rights") / "cases.csv").write_text(
        f"AJ001,劳动争议,2021-03-01,,{x.id_card},成功,2021-03-20,1000,{x.name},{x.phone}\n"
        f"AJ002,咨询,2021-03-02,,{x.id_card},,,,{x.name},{x.phone}\n",
        encoding="utf-8-sig",
    )
    x = p["cases_quote"]  # a quote left open: the field swallows every line after it
    (folder("rights", "2021-04-02") / "cases.csv").write_text(
        f'{cases}\nAJ003,劳动争议,2021-03-02,,"{x.id_card} {x.name} {x.phone},成功,2021-03-20,1000\n'
        f"AJ004,咨询,2021-03-03,,{x.id_card},,,\n",
        encoding="utf-8-sig",
    )

    honours = ",".join(headers("events", "honours"))
    x = p["honours"]
    (folder("events") / "honours.csv").write_text(
        f"H1,2021,五一劳动奖章,区级,{x.name},{x.id_card},{x.phone}\nH2,2021,五一劳动奖章,区级,{x.name},,\n",
        encoding="utf-8",
    )
    x, y = p["honours_row"], p["refused"]  # a row that cannot be split (quarantined) next to a good one
    (folder("events", "2021-04-02") / "honours.csv").write_text(
        f"{honours}\nH3,2021,五一劳动奖章,区级,{y.name}\nH4,2021,五一劳动奖章,{x.name},{x.id_card},{x.phone}\n",
        encoding="utf-8",
    )
    x = p["honours_limit"]  # a field longer than the CSV parser's limit (131072 characters)
    (folder("events", "2021-04-03") / "honours.csv").write_text(
        f'{honours}\nH5,2021,五一劳动奖章,区级,"{(x.name + x.id_card + x.phone) * 5000}"\n', encoding="utf-8"
    )

    x = p["attendance"]  # exported with the first record's values as keys
    record = {"S001": "S001", x.id_card: x.id_card, x.name: x.name, x.phone: x.phone, "GH0000000001": True}
    (folder("training") / "attendance.jsonl").write_text(
        "\n".join(json.dumps(record, ensure_ascii=False) for _ in range(2)) + "\n", encoding="utf-8"
    )
    x, y = p["attendance_lines"], p["refused"]
    good = {
        "session_id": "S001",
        "id_card": y.id_card,
        "name": y.name,
        "union_code": "GH0000000001",
        "registered": True,
        "attended": True,
        "replay_views": 0,
    }
    (folder("training", "2021-04-02") / "attendance.jsonl").write_text(
        json.dumps(good, ensure_ascii=False)
        + "\n"
        + f'{{"session_id": "S001", "id_card": "{x.id_card}", "name": "{x.name}", "phone": "{x.phone}",\n'
        + json.dumps(["S001", x.id_card, x.name, x.phone], ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )


def members_database(url: str, x: Person) -> None:
    """``member`` a view whose read fails on a resident ID ending in X: PostgreSQL's error
    quotes it (``invalid input syntax for type bigint: "…X"``)."""
    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True
    ) as con:
        con.execute("CREATE TABLE people (id_card text, name text, phone text)")
        con.execute("INSERT INTO people VALUES (%s, %s, %s)", [x.id_card, x.name, x.phone])
        con.execute(
            "CREATE VIEW member AS SELECT id_card::bigint AS member_id, id_card, name, phone, "
            "'GH0000000001'::text AS union_code, 'standard'::text AS employment_form, "
            "0 AS is_migrant, 0 AS is_veteran, date '2021-01-01' AS joined_on, "
            "timestamp '2021-01-02 00:00:00' AS updated_at, "
            "NULL::timestamp AS deleted_at FROM people"
        )


def sqlite_imported_without_header(path: Path, x: Person) -> None:
    """A member table made by SQLite's ``.import`` from a file without its header row: the
    first record names the columns."""
    first = [
        "1001",
        x.name,
        x.id_card,
        x.phone,
        "GH0000000001",
        "standard",
        "0",
        "1",
        "2021-01-01",
        "2021-01-02 03:04:05",
        "column11",
    ]
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE member (" + ", ".join(f'"{c}" TEXT' for c in first) + ")")
        con.execute(
            "INSERT INTO member VALUES (" + ", ".join("?" * len(first)) + ")",
            [
                "1002",
                "x",
                x.id_card,
                x.phone,
                "GH0000000001",
                "standard",
                "0",
                "0",
                "2021-01-01",
                "2021-01-02 03:04:05",
                "",
            ],
        )
    con.close()


hook = pytest.fixture(hook_fixture)


@pytest.fixture
def members_url() -> Iterator[str]:
    server = postgres_or_skip()
    name = f"unionwh_pii_members_{secrets.token_hex(4)}"
    create_database(server, name)
    try:
        yield f"{server}/{name}"
    finally:
        drop_database(server, name)


def ops_text(engine: sa.Engine) -> dict[str, str]:
    """Every ops table as text, ops.quarantine without ``original_values``; and that column."""
    out: dict[str, str] = {}
    with engine.connect() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'ops'")
            )
        ]
        assert {"load_ledger", "runs", "quarantine"} <= set(tables)
        for t in tables:
            cols = [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ops' "
                        "AND table_name = :t ORDER BY ordinal_position"
                    ),
                    {"t": t},
                )
            ]
            if t == "quarantine":
                out["ops.quarantine.original_values"] = "\n".join(
                    str(v) for (v,) in conn.execute(sa.text("SELECT original_values FROM ops.quarantine"))
                )
                cols.remove("original_values")
            rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM ops.{t}")).all()
            out[f"ops.{t}"] = "\n".join(" | ".join(str(v) for v in r) for r in rows)
    return out


def files_text(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    return {
        str(f.relative_to(root)): f.read_bytes().decode("utf-8", "replace")
        for f in root.rglob("*")
        if f.is_file() and not any(s in f.parts or f.name.endswith(s) for s in skip)
    }


def run_env(work: Path, landing: Path, warehouse: str, members: str, port: int) -> dict[str, str]:
    """A user's environment for ``unionwh run``: Prefect's temporary server keeps its database
    under ``work/prefect``; failures are notified to the test's webhook."""
    return dict(
        clean_env(),
        UNIONWH_HOME=str(work),
        PREFECT_HOME=str(work / "prefect"),
        UNIONWH_LANDING=str(landing),
        UNIONWH_WAREHOUSE=warehouse,
        UNIONWH_MEMBERS_URL=members,
        UNIONWH_OUTPUT=str(work / "runs"),
        UNIONWH_PII_KEY="pii-messages-test-key-0123456789",
        UNIONWH_REPORT_YEAR="2021",
        UNIONWH_NOTIFY_URL=f"json://127.0.0.1:{port}/unionwh",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )


def run_load(env: dict[str, str], work: Path) -> subprocess.CompletedProcess[str]:
    """One real ``unionwh run --load-only`` in a child process (dbt adds nothing these paths write)."""
    work.mkdir(exist_ok=True)
    return subprocess.run(
        [*UNIONWH, "run", "--load-only"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def searched(console: str, hook: Hook, work: Path) -> dict[str, str]:
    """The outputs besides the warehouse: console, notification, Prefect's database, files."""
    assert len(hook.received) == 1
    return {
        "console": console,
        "notification": hook.received[0],
        "prefect database": prefect_text(work / "prefect"),
        **files_text(work, skip=("prefect", ".duckdb", ".wal", "pii.key")),
    }


def readable(text: str) -> str:
    """The text plus its JSON \\u escapes and HTML entities decoded: Apprise's JSON body and
    Prefect's event payloads escape every Chinese character, Data Docs may use entities."""
    decoded = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return "\n".join((text, decoded, html.unescape(text)))


def leaks(texts: dict[str, str], p: dict[str, Person]) -> list[str]:
    readable_texts = {where: readable(text) for where, text in texts.items()}
    return [
        f"{path} ({'name' if v == x.name else 'phone' if v == x.phone else 'resident ID'}) in {where}"
        for where, text in readable_texts.items()
        for path, x in p.items()
        for v in x.values
        if v in text
    ]


EXPECTED = {
    "welfare/2021-04-01/A01_202103.xlsx": {"batch.columns"},
    "welfare/2021-04-01/A02_202103.xlsx": {"batch.columns"},
    "welfare/2021-04-01/A03_202103.xlsx": {"batch.columns"},
    "welfare/2021-04-01/A04_202103.xlsx": {"batch.sheets"},
    "welfare/2021-04-01/A05_202103.xlsx": {"batch.structure", "batch.unreadable"},
    "rights/2021-04-01/cases.csv": {"batch.columns"},
    "rights/2021-04-02/cases.csv": {"batch.structure", "batch.unreadable"},
    "events/2021-04-01/honours.csv": {"batch.columns"},
    "events/2021-04-02/honours.csv": {"loaded"},
    "events/2021-04-03/honours.csv": {"batch.structure", "batch.unreadable"},
    "training/2021-04-01/attendance.jsonl": {"batch.columns"},
    "training/2021-04-02/attendance.jsonl": {"loaded"},
    "members/member": {"batch.unreadable"},
}
"""The ledger's rule (or status) of each delivery: every path was taken."""


@pytest.mark.e2e
@pytest.mark.postgres
def test_no_personal_value_in_any_output_of_a_run_over_hostile_deliveries(
    tmp_path: Path, hook: Hook, members_url: str
) -> None:
    p = people()
    landing, work = tmp_path / "landing", tmp_path / "work"
    write_landing(landing, p)
    members_database(members_url, p["member_view"])
    wh = work / "wh.duckdb"
    run = run_load(run_env(work, landing, f"duckdb:///{wh}", members_url, hook.port), work)
    console = run.stdout + run.stderr
    assert run.returncode == 1, console[-3000:]

    engine = sa.create_engine(f"duckdb:///{wh}")
    try:
        with engine.connect() as conn:
            ledger = conn.execute(
                sa.text("SELECT file_name, coalesce(error_rule, status) FROM ops.load_ledger")
            ).all()
        texts = ops_text(engine)
    finally:
        engine.dispose()
    for file, rules in EXPECTED.items():
        got = {r for f, r in ledger if f == file}
        assert got & rules, f"{file}: {sorted(got)}"
    assert "is the header row missing?" in texts["ops.load_ledger"]
    assert "SQLSTATE 22P02" in texts["ops.load_ledger"]  # the members view's error: its code, never its value
    # the quarantine holds the rows by design: the search finds the values where they are
    kept = texts.pop("ops.quarantine.original_values")
    assert p["honours_row"].name in kept and p["attendance_lines"].id_card in kept

    texts |= searched(console, hook, work)
    assert "nightly-load" in texts["prefect database"] and "batch.columns" in texts["notification"]
    assert any(name.endswith(".html") for name in texts)  # the Data Docs were searched
    assert leaks(texts, p) == []


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_warehouse_refusing_a_name_fails_the_run_without_quoting_it(tmp_path: Path, hook: Hook) -> None:
    """PostgreSQL's COPY error quotes the refused row (CONTEXT line): raw.events__honours made to
    hold integers, a name arrives; the run fails, and ops.runs, the notification, the console
    and Prefect name the file, row and column, never the name."""
    server = postgres_or_skip()
    name = f"unionwh_pii_refused_{secrets.token_hex(4)}"
    url = f"{server}/{name}"
    x = people()["refused"]
    landing, work = tmp_path / "landing", tmp_path / "work"
    day = landing / "events" / "2021-04-02"
    day.mkdir(parents=True)
    honours = ",".join(headers("events", "honours"))
    (day / "honours.csv").write_text(f"{honours}\nH3,2021,五一劳动奖章,区级,{x.name}\n", encoding="utf-8")
    u = make_url(url)
    cols = ", ".join(
        f"{c.name} {'integer' if c.name in ('year', 'recipient') else 'text'}"
        for c in schema.table("events", "honours").all_columns
    )
    create_database(server, name)
    try:
        with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=name, autocommit=True) as con:
            con.execute("CREATE SCHEMA raw")
            con.execute(
                f"CREATE TABLE raw.events__honours ({cols}, _source text, _file_name text, "
                "_file_sha256 text, _delivery_date date, _row_number bigint, _load_id text)"
            )
        run = run_load(run_env(work, landing, url, "", hook.port), work)
        console = run.stdout + run.stderr
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                message = conn.execute(sa.text("SELECT message FROM ops.runs")).scalar_one()
            texts = ops_text(engine)
        finally:
            engine.dispose()
    finally:
        drop_database(server, name)
    assert run.returncode == 3, console[-3000:]  # the run failed (flows/errors.py Exit.FAILED)
    said = [line for line in console.splitlines() if line.startswith("unionwh: error:")]
    assert said == [f"unionwh: error: {message.removeprefix('WarehouseWriteError: ')}"], console[-3000:]
    assert message.startswith(
        "WarehouseWriteError: the warehouse refused a value of raw.events__honours at "
        "file events/2021-04-02/honours.csv, row 2, column recipient (SQLSTATE 22P02 "
    )
    texts |= searched(console, hook, work)
    assert "events/2021-04-02/honours.csv" in texts["notification"]
    assert leaks(texts, {"refused": x}) == []


@pytest.mark.unit
def test_insert_frame_names_the_row_not_the_value_on_duckdb(tmp_path: Path) -> None:
    """DuckDB's conversion error quotes the value it could not convert."""
    x = people()["refused"]
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE main.t (n INTEGER, _file_name VARCHAR, _row_number BIGINT)")
        with pytest.raises(WarehouseWriteError) as exc, engine.begin() as conn:
            insert_frame(
                conn, "main.t", pl.DataFrame({"n": [x.name], "_file_name": ["a.csv"], "_row_number": [2]})
            )
    finally:
        engine.dispose()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as raw, pytest.raises(duckdb.Error) as direct:
        raw.execute("INSERT INTO t VALUES (?, 'a.csv', 2)", [x.name])
    assert x.name in str(direct.value)  # what the driver says, and insert_frame no longer passes on
    assert str(exc.value).startswith("the warehouse refused a value of main.t (")
    assert "ConversionException" in str(exc.value) or "DataError" in str(exc.value), str(exc.value)
    assert x.name not in str(exc.value)


def test_insert_frame_names_the_row_not_the_value_on_postgresql() -> None:
    """PostgreSQL's COPY error quotes the value, and its CONTEXT line the whole row: the message
    keeps the SQLSTATE, the file, row and column."""
    server = postgres_or_skip()
    name = f"unionwh_pii_copy_{secrets.token_hex(4)}"
    create_database(server, name)
    x = people()["refused"]
    engine = sa.create_engine(f"{server}/{name}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE public.t (_file_name text, _row_number bigint, note text, n integer)"
            )
        frame = pl.DataFrame(
            {
                "_file_name": ["a.csv", "a.csv"],
                "_row_number": [2, 7],
                "note": [x.phone, x.id_card],
                "n": ["1", x.name],
            }
        )
        with pytest.raises(WarehouseWriteError) as exc, engine.begin() as conn:
            insert_frame(conn, "public.t", frame)
    finally:
        engine.dispose()
        drop_database(server, name)
    text = str(exc.value)
    assert "at file a.csv, row 7, column n" in text and "SQLSTATE 22P02 (invalid_text_representation)" in text
    assert not [v for v in x.values if v in text], text


@pytest.mark.unit
def test_structure_messages_quote_only_contract_names() -> None:
    """The reader-level messages, directly (milliseconds): header row lost, renamed columns,
    keys and sheet names that are data."""
    from flows.errors import BatchError
    from flows.sources import common

    x = people()["condolence"]
    t = schema.table("welfare", "condolence")
    with pytest.raises(BatchError) as exc:
        common.match_headers(
            ["2021-03-01", "两节慰问", "农民工", x.name, x.id_card, "GH1", "现金", "500", x.phone],
            t,
            "f.xlsx",
            where="sheet 慰问",
        )
    assert exc.value.message == (
        "sheet 慰问: missing column(s) 日期, 慰问项目, 对象类别, 姓名, 身份证号, 所属工会编码, 形式, 金额(元)/(万元); "
        "found: no contract header; 9 of 9 columns are not contract headers (columns 1-9): "
        "is the header row missing?"
    )
    with pytest.raises(BatchError) as exc:
        common.match_headers(
            ["日期", "慰问项目", "对象类别", x.name, x.id_card, "所属工会编码", "形式", "金额(元)"],
            t,
            "f.xlsx",
        )
    assert exc.value.message == (
        "missing column(s) 姓名, 身份证号; found: 日期, 慰问项目, 对象类别, 所属工会编码, "
        "形式, 金额(元); 2 of 8 columns are not contract headers (columns 4-5)"
    )


@pytest.mark.unit
def test_members_table_imported_without_its_header_row(tmp_path: Path) -> None:
    """SQLite's ``.import`` of a file without its header row names the columns by the first
    record: the batch.columns error counts them, never quotes them (a real SQLite database)."""
    from datetime import date

    from flows.errors import BatchError
    from flows.sources import members

    x = people()["member_import"]
    sqlite_imported_without_header(tmp_path / "members.sqlite", x)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'members.sqlite'}")
    try:
        with pytest.raises(BatchError) as exc, engine.connect() as conn:
            members.read_page(conn, schema.table("members", "member"), date(2021, 4, 1), None)
    finally:
        engine.dispose()
    assert exc.value.rule == "batch.columns"
    assert exc.value.message.endswith(
        "found: no contract column; 11 of 11 columns are not contract columns "
        "(columns 1-11): was the table imported without its header row?"
    )
    assert not [v for v in x.values if v in str(exc.value)]
