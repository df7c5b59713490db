"""A NUL byte never blocks a warehouse: the same rows load and the same rows are quarantined on
DuckDB and PostgreSQL, and what the pipeline writes about a file (keys, messages) is storable.

Before issue 18 a text value holding ``\\x00`` loaded into DuckDB while PostgreSQL's COPY raised
("invalid byte sequence for encoding UTF8: 0x00"), so that warehouse failed every run after.
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.quality.runner import validate
from flows.quality.screen import read_delivery
from flows.schema import table
from flows.settings import load_settings
from flows.sources import common
from flows.warehouse import pii
from flows.warehouse.engine import init_warehouse, warehouse_engine
from flows.warehouse.loader import LedgerEntry, write_batch
from tests.support import create_database, drop_database, postgres_or_skip

DAY = "2021-12-01"
HEADER = "活动编号,名称,类别,日期,参与方式,参与人次\r\n"
ROWS = [
    "A1,运动会,文体,2021-05-01,举办,10",
    "A2,运\x00动会,文体,2021-05-01,举办,10",  # NUL in a text value
    "A\x003,运动会,文体,2021-05-01,举办,10",  # NUL in the key itself
    "A4,运\x1b[31m动会,文体,2021-05-01,举办,10",  # an escape sequence
    "A5,运\x08动会,安全,2021-05-02,参与,3",
    "A6,tab\there,安全,2021-05-02,参与,3",  # a tab is text
]


def load(url: str, landing: Path) -> tuple[list[tuple], list[tuple]]:
    """Read, validate and write the delivery into ``url``; the raw ids and quarantine rows."""
    [delivery] = common.discover(landing, "events")
    frame = read_delivery(delivery)["activities"]
    t = table("events", "activities")
    result = validate(frame, t, delivery.rel_name)
    engine = warehouse_engine(load_settings(warehouse=url))
    try:
        init_warehouse(engine)
        key = b"control-characters-test-key"
        entry = LedgerEntry(
            "run1",
            "events",
            "activities",
            delivery.rel_name,
            "b" * 64,
            date(2021, 12, 1),
            frame.height,
            result.passed.height,
            result.quarantined.height,
            "loaded",
        )
        write_batch(
            engine,
            entry,
            t,
            pii.pseudonymise(common.to_typed(result.passed, t), t, key),
            pii.pseudonymise(result.quarantined, t, key),
        )
        bad = LedgerEntry(
            "run1",
            "events",
            "*",
            "events/2021-12-02/x\x01.csv",
            "c" * 64,
            date(2021, 12, 2),
            0,
            0,
            0,
            "rejected",
            "batch.columns",
            "header \x00 lost",
        )
        write_batch(engine, bad, None, None, None)
        with engine.connect() as conn:
            raw = conn.execute(
                sa.text("SELECT activity_id, activity_name FROM raw.events__activities ORDER BY activity_id")
            ).all()
            quarantine = conn.execute(
                sa.text("SELECT row_number, rules, row_key FROM ops.quarantine ORDER BY row_number")
            ).all()
            message = conn.execute(
                sa.text("SELECT error_message FROM ops.load_ledger WHERE status = 'rejected'")
            )
            assert message.scalar_one() == "header \ufffd lost"
    finally:
        engine.dispose()
    return [tuple(r) for r in raw], [tuple(r) for r in quarantine]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing" / "events" / DAY / "activities.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes((HEADER + "".join(r + "\r\n" for r in ROWS)).encode("utf-8"))
    return tmp_path / "landing"


def test_control_characters_are_quarantined_alike_on_duckdb_and_postgresql(
    tmp_path: Path, landing: Path
) -> None:
    duck = load(f"duckdb:///{tmp_path / 'wh.duckdb'}", landing)
    assert duck[0] == [("A1", "运动会"), ("A6", "tab\there")]
    assert [(n, "row.control_characters" in rules.split(";")) for n, rules, _ in duck[1]] == [
        (3, True),
        (4, True),
        (5, True),
        (6, True),
    ]
    assert duck[1][1][2] == "A\ufffd3"  # the key as the warehouse can store it

    server = postgres_or_skip()
    name = f"unionwh_nul_{secrets.token_hex(4)}"
    create_database(server, name)
    try:
        pg = load(f"{server}/{name}", landing)
    finally:
        drop_database(server, name)
    assert pg == duck
