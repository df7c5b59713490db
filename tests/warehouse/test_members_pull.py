"""The members pull against real server databases (MariaDB and PostgreSQL), through real
flow runs into a real DuckDB warehouse: incremental by updated_at with an overlap window,
soft deletes carried, nothing loaded twice, and a full re-pull on demand."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from faker import Faker
from sqlalchemy.dialects import mysql

from flows.nightly import nightly_load
from tests.support import Env, create_database, drop_database, mariadb_or_skip, postgres_or_skip

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
META = sa.MetaData()
MEMBER = sa.Table(
    "member",
    META,
    sa.Column("member_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("id_card", sa.String(18)),
    sa.Column("name", sa.String(40)),
    sa.Column("phone", sa.String(11)),
    sa.Column("union_code", sa.String(12)),
    sa.Column("employment_form", sa.String(20)),
    sa.Column("is_migrant", sa.SmallInteger),
    sa.Column("is_veteran", sa.SmallInteger),
    sa.Column("joined_on", sa.Date),
    sa.Column("updated_at", TS),
    sa.Column("deleted_at", TS),
)
CARD = sa.Table(
    "member_card",
    META,
    sa.Column("card_event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("member_id", sa.Integer),
    sa.Column("card_no", sa.String(20)),
    sa.Column("action", sa.String(10)),
    sa.Column("action_on", sa.Date),
    sa.Column("updated_at", TS),
)
BASE = (datetime.now() - timedelta(days=3)).replace(microsecond=0)


@pytest.fixture(params=["mariadb", "postgresql"])
def source(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh member-platform database on the real server; yields its URL."""
    name = f"unionwh_members_{secrets.token_hex(4)}"
    if request.param == "mariadb":
        server = mariadb_or_skip()
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        admin.dispose()
        try:
            yield f"{server}/{name}?charset=utf8mb4"
        finally:
            admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            admin.dispose()
    else:
        server = postgres_or_skip()
        create_database(server, name)
        try:
            yield f"{server}/{name}"
        finally:
            drop_database(server, name)


def member(i: int, fake: Faker, updated_at: datetime, **over: object) -> dict:
    row = {
        "member_id": i,
        "id_card": fake.ssn(),
        "name": fake.name(),
        "phone": f"139{i:08d}",
        "union_code": f"GH{i:010d}",
        "employment_form": ("standard", "courier", "food_delivery")[i % 3],
        "is_migrant": i % 2,
        "is_veteran": int(i % 7 == 0),
        "joined_on": (BASE - timedelta(days=400 + i)).date(),
        "updated_at": updated_at,
        "deleted_at": None,
    }
    return row | over


class Warehouse:
    def __init__(self, tmp: Path, members_url: str) -> None:
        (tmp / "landing").mkdir()
        self.env = Env(
            UNIONWH_HOME=str(tmp),
            UNIONWH_LANDING=str(tmp / "landing"),
            UNIONWH_WAREHOUSE=f"duckdb:///{tmp / 'wh.duckdb'}",
            UNIONWH_OUTPUT=str(tmp / "runs"),
            UNIONWH_MEMBERS_URL=members_url,
            UNIONWH_PII_KEY="members-pull-test-key-0123456789",
        )
        self.path = tmp / "wh.duckdb"

    def run(self, full: bool = False) -> None:
        with self.env:
            summary = nightly_load(build=False, members_full=full)
        assert summary.status == "succeeded", summary.errors

    def rows(self, sql: str) -> list[tuple]:
        engine = sa.create_engine(f"duckdb:///{self.path}")
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql).all()]
        finally:
            engine.dispose()

    def counts(self) -> tuple[int, int, int, int]:
        return self.rows(
            "SELECT (SELECT count(*) FROM raw.members__member), (SELECT count(*) FROM "
            "raw.members__member_card), (SELECT count(*) FROM ops.load_ledger), "
            "(SELECT count(*) FROM ops.quarantine)"
        )[0]

    def members_of_load(self, load_id: str) -> set[int]:
        return {
            r[0] for r in self.rows(f"SELECT member_id FROM raw.members__member WHERE _load_id = '{load_id}'")
        }

    def newest_load(self, table: str) -> tuple[str, int, int, int]:
        return self.rows(
            "SELECT load_id, rows_read, rows_loaded, rows_quarantined FROM ops.load_ledger "
            f"WHERE table_name = '{table}' ORDER BY loaded_at DESC, load_id DESC LIMIT 1"
        )[0]


@pytest.mark.mariadb
@pytest.mark.postgres
def test_second_pull_brings_exactly_the_changes(source: str, tmp_path: Path, prefect_harness: None) -> None:
    fake = Faker("zh_CN")
    fake.seed_instance(5)
    db = sa.create_engine(source)
    META.create_all(db)
    rows = [member(i, fake, BASE + timedelta(minutes=i)) for i in range(1, 31)]
    rows.append(
        member(31, fake, BASE + timedelta(minutes=31), id_card="110101199002301234")
    )  # bad birth date
    with db.begin() as conn:
        conn.execute(MEMBER.insert(), rows)
        conn.execute(
            CARD.insert(),
            [
                {
                    "card_event_id": i,
                    "member_id": i,
                    "card_no": f"K{i:05d}",
                    "action": "new",
                    "action_on": BASE.date(),
                    "updated_at": BASE + timedelta(minutes=i),
                }
                for i in range(1, 21)
            ],
        )
    wh = Warehouse(tmp_path, source)
    try:
        wh.run()
        assert wh.counts() == (30, 20, 2, 1)
        assert wh.rows(
            "SELECT table_name, watermark FROM ops.watermarks ORDER BY 1"
        ) == [  # the newest loaded:
            ("member", BASE + timedelta(minutes=30)),
            ("member_card", BASE + timedelta(minutes=20)),
        ]  # not 31's

        wh.run()  # nothing changed; the overlap window re-reads the newest rows, none is loaded again
        assert wh.counts() == (30, 20, 2, 1)

        later = BASE + timedelta(hours=2)
        with db.begin() as conn:
            for i in (3, 4, 5):  # updates
                conn.execute(
                    MEMBER.update()
                    .where(MEMBER.c.member_id == i)
                    .values(phone=f"138{i:08d}", updated_at=later + timedelta(seconds=i))
                )
            for i in (6, 7):  # soft deletes
                conn.execute(
                    MEMBER.update()
                    .where(MEMBER.c.member_id == i)
                    .values(deleted_at=later, updated_at=later + timedelta(seconds=i))
                )
            conn.execute(
                CARD.insert(),
                [
                    {
                        "card_event_id": 21,
                        "member_id": 3,
                        "card_no": "K00003",
                        "action": "renew",
                        "action_on": later.date(),
                        "updated_at": later,
                    }
                ],
            )
            # committed late: older than the watermark, but inside the 10-minute overlap window
            conn.execute(MEMBER.insert(), [member(32, fake, BASE + timedelta(minutes=25))])
            # older than the window: only a full re-pull finds it
            conn.execute(MEMBER.insert(), [member(33, fake, BASE - timedelta(days=1))])
        wh.run()
        assert wh.counts() == (36, 21, 4, 1)
        load_id, read, loaded, quarantined = wh.newest_load("member")
        assert (read, loaded, quarantined) == (6, 6, 0)
        assert wh.members_of_load(load_id) == {3, 4, 5, 6, 7, 32}
        assert wh.rows(
            f"SELECT member_id, phone FROM raw.members__member WHERE _load_id = '{load_id}' "
            "AND member_id IN (3, 4, 5) ORDER BY 1"
        ) == [(i, f"138{i:08d}") for i in (3, 4, 5)]
        deleted = wh.rows(
            f"SELECT member_id FROM raw.members__member WHERE _load_id = '{load_id}' "
            "AND deleted_at IS NOT NULL ORDER BY 1"
        )
        assert deleted == [(6,), (7,)]
        assert wh.rows("SELECT watermark FROM ops.watermarks WHERE table_name = 'member'") == [
            (later + timedelta(seconds=7),)
        ]

        wh.run()
        assert wh.counts() == (36, 21, 4, 1)

        wh.run(full=True)  # every row re-read: only the one the incremental pulls missed is new
        assert wh.counts() == (37, 21, 5, 1)
        load_id, read, loaded, _ = wh.newest_load("member")
        assert (read, loaded) == (1, 1)
        assert wh.members_of_load(load_id) == {33}
        assert wh.rows("SELECT watermark FROM ops.watermarks WHERE table_name = 'member'") == [
            (later + timedelta(seconds=7),)
        ]  # a re-pull never moves the watermark back
    finally:
        db.dispose()
