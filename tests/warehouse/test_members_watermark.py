"""Issue 18, class 1: a member row dated in the future must not hide later member changes.

Contract v1.1: "a member row whose updated_at is later than the pull is quarantined and never
advances the pull's watermark; changes after it are still pulled". Real flow runs pull a real
member database (SQLite, and PostgreSQL when reachable) into a real DuckDB warehouse; the status
test reads real watermark rows through the real CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from faker import Faker

from flows.cli import main
from flows.nightly import nightly_load
from tests.support import Env, throwaway_postgres
from tests.warehouse.test_members_pull import CARD, MEMBER, META, member  # the pull tests' member tables

FAR_FUTURE = datetime(2099, 1, 1, 8, 0, 0)


def daytime_zone() -> str:
    """A fixed-offset zone where it is now between 02:00 and 20:00: a row two hours ahead is then
    still dated today (it passes the date-level ``updated_at.after_delivery`` rule and is loaded),
    and no step of the test straddles midnight. The pull's date and time are in this zone."""
    for hours in range(-12, 15):
        name = f"Etc/GMT{-hours:+d}"  # (POSIX sign: Etc/GMT-8 is UTC+8)
        if 2 <= datetime.now(ZoneInfo(name)).hour < 20:
            return name
    raise AssertionError("some offset is always in daytime")


@pytest.fixture(params=["sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh member-platform database; yields its URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'members.sqlite'}"
        return
    with throwaway_postgres("unionwh_members") as url:
        yield url


class Warehouse:
    def __init__(self, tmp: Path, members_url: str, zone: str) -> None:
        (tmp / "landing").mkdir()
        self.zone = ZoneInfo(zone)
        self.path = tmp / "wh.duckdb"
        self.env = Env(
            UNIONWH_HOME=str(tmp),
            UNIONWH_LANDING=str(tmp / "landing"),
            UNIONWH_WAREHOUSE=f"duckdb:///{self.path}",
            UNIONWH_OUTPUT=str(tmp / "runs"),
            UNIONWH_MEMBERS_URL=members_url,
            UNIONWH_TIMEZONE=zone,
            UNIONWH_PII_KEY="members-watermark-test-key-0123456789",
        )

    def now(self) -> datetime:
        """Now in the settings' zone, naive, as the platform writes its timestamps."""
        return datetime.now(self.zone).replace(tzinfo=None)

    def run(self) -> tuple[datetime, datetime]:
        """One load (no dbt build); returns the (naive, local) times just before and after it."""
        before = self.now()
        with self.env:
            summary = nightly_load(build=False)
        assert summary.status == "succeeded", summary.errors
        return before, self.now()

    def rows(self, sql: str) -> list[tuple]:
        engine = sa.create_engine(f"duckdb:///{self.path}")
        try:
            with engine.begin() as conn:
                result = conn.exec_driver_sql(sql)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            engine.dispose()

    def watermark(self) -> datetime:
        return self.rows(
            "SELECT watermark FROM ops.watermarks WHERE source = 'members' AND table_name = 'member'"
        )[0][0]

    def loaded(self, member_id: int) -> list[datetime]:
        """The updated_at of every version of the member loaded into raw."""
        return [
            r[0]
            for r in self.rows(
                "SELECT updated_at FROM raw.members__member "
                f"WHERE member_id = {member_id} ORDER BY updated_at"
            )
        ]

    def quarantined(self) -> list[tuple[str, str]]:
        return self.rows("SELECT row_key, rules FROM ops.quarantine WHERE table_name = 'member' ORDER BY 1")


@pytest.mark.postgres
def test_future_row_never_advances_the_watermark(source: str, tmp_path: Path, prefect_harness: None) -> None:
    fake = Faker("zh_CN")
    fake.seed_instance(18)
    wh = Warehouse(tmp_path, source, daytime_zone())
    base = (wh.now() - timedelta(days=3)).replace(microsecond=0)
    db = sa.create_engine(source)
    META.create_all(db)
    try:
        with db.begin() as conn:
            conn.execute(
                MEMBER.insert(),
                [member(i, fake, base + timedelta(minutes=i)) for i in range(1, 11)]
                + [member(11, fake, FAR_FUTURE)],
            )
            conn.execute(
                CARD.insert(),
                [
                    {
                        "card_event_id": 1,
                        "member_id": 1,
                        "card_no": "K00001",
                        "action": "new",
                        "action_on": base.date(),
                        "updated_at": base,
                    }
                ],
            )

        # 1. The row of 2099 is quarantined; the watermark is the newest *loaded* row, not 2099.
        _, after = wh.run()
        assert wh.quarantined() == [("11", "updated_at.after_delivery")]
        assert wh.loaded(11) == []
        assert wh.watermark() == base + timedelta(minutes=10)
        assert wh.watermark() <= after

        # 2. A valid change made after the first pull is pulled by the next one.
        changed = wh.now().replace(microsecond=0)
        with db.begin() as conn:
            conn.execute(
                MEMBER.update().where(MEMBER.c.member_id == 3).values(phone="13800000003", updated_at=changed)
            )
        wh.run()
        assert wh.loaded(3) == [base + timedelta(minutes=3), changed]
        assert wh.watermark() == changed
        assert len(wh.quarantined()) == 1  # the 2099 row, re-read (it is above the watermark), not again

        # 3. Days later the same unchanged 2099 row is still re-read by every pull: it is not quarantined
        # again. (Its quarantine is dated a week back, as if those days had passed: a pull only looks for
        # quarantined rows delivered since the watermark's day, which a row dated ahead of its pull defeats.)
        wh.rows("UPDATE ops.quarantine SET delivery_date = delivery_date - 7")
        ahead = wh.now().replace(microsecond=0) + timedelta(hours=2)  # still today: passes, is loaded
        with db.begin() as conn:
            conn.execute(MEMBER.insert(), [member(12, fake, ahead)])
        before, after = wh.run()
        assert len(wh.quarantined()) == 1
        assert wh.loaded(12) == [ahead]
        assert before <= wh.watermark() <= after < ahead  # capped at the pull's own time

        wh.run()  # both rows dated ahead are re-read; neither is loaded or quarantined again
        assert len(wh.quarantined()) == 1
        assert wh.loaded(12) == [ahead]
        assert before <= wh.watermark() <= after

        # 4. The platform corrects the 2099 row (a sane updated_at after the watermark): it is loaded.
        corrected = wh.now().replace(microsecond=0)
        with db.begin() as conn:
            conn.execute(MEMBER.update().where(MEMBER.c.member_id == 11).values(updated_at=corrected))
        wh.run()
        assert wh.loaded(11) == [corrected]
        assert wh.watermark() == corrected
        assert len(wh.quarantined()) == 1
    finally:
        db.dispose()


def test_a_watermark_left_in_the_future_is_dropped_and_the_table_pulled_again(
    tmp_path: Path, prefect_harness: None
) -> None:
    """A warehouse from before the fix: a row of 2099 set the watermark and hid every change. The
    next pull drops it, reads every row (none held is loaded twice) and sets a sane one."""
    source = f"sqlite:///{tmp_path / 'members.sqlite'}"
    fake = Faker("zh_CN")
    fake.seed_instance(19)
    wh = Warehouse(tmp_path, source, daytime_zone())
    base = (wh.now() - timedelta(days=3)).replace(microsecond=0)
    db = sa.create_engine(source)
    META.create_all(db)
    try:
        with db.begin() as conn:
            conn.execute(MEMBER.insert(), [member(i, fake, base + timedelta(minutes=i)) for i in range(1, 6)])
            conn.execute(
                CARD.insert(),
                [
                    {
                        "card_event_id": 1,
                        "member_id": 1,
                        "card_no": "K00001",
                        "action": "new",
                        "action_on": base.date(),
                        "updated_at": base,
                    }
                ],
            )
        wh.run()
        assert len(wh.loaded(2)) == 1
        # As a release before issue 18 left it: the watermark of a quarantined row of 2099.
        wh.rows(f"UPDATE ops.watermarks SET watermark = TIMESTAMP '{FAR_FUTURE}' WHERE table_name = 'member'")
        changed = wh.now().replace(microsecond=0)
        with db.begin() as conn:
            conn.execute(
                MEMBER.update().where(MEMBER.c.member_id == 2).values(phone="13800000002", updated_at=changed)
            )
        wh.run()
        assert wh.loaded(2) == [base + timedelta(minutes=2), changed]
        assert [len(wh.loaded(i)) for i in (1, 3, 4, 5)] == [1, 1, 1, 1]  # re-read, not loaded twice
        assert wh.watermark() == changed
    finally:
        db.dispose()


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse (DuckDB file, or a throwaway PostgreSQL database); yields its URL."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'wh.duckdb'}"
        return
    with throwaway_postgres("unionwh_status") as url:
        yield url


@pytest.mark.postgres
def test_status_lists_watermarks_and_warns_of_one_in_the_future(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.schema import table
    from flows.settings import load_settings
    from flows.warehouse.engine import init_warehouse, warehouse_engine
    from flows.warehouse.loader import LedgerEntry, write_batch

    monkeypatch.setenv("UNIONWH_HOME", str(tmp_path))
    monkeypatch.setenv("UNIONWH_WAREHOUSE", warehouse_url)  # (status sets it too: restored afterwards)
    monkeypatch.setenv("UNIONWH_TIMEZONE", "Asia/Shanghai")
    engine = warehouse_engine(load_settings())
    try:
        init_warehouse(engine)
        past = datetime(2024, 5, 1, 8, 30, 15)
        entry = LedgerEntry(
            "20240501T083000-abcdef",
            "members",
            "member",
            "members/member",
            "b" * 64,
            past.date(),
            0,
            0,
            0,
            "loaded",
        )
        write_batch(engine, entry, table("members", "member"), None, None, watermark=past)
        with engine.begin() as conn:  # as a release before issue 18 could leave it
            conn.execute(
                sa.text("INSERT INTO ops.watermarks VALUES ('members', 'member_card', :w, 'gone')"),
                {"w": FAR_FUTURE},
            )
    finally:
        engine.dispose()

    assert main(["status", "--warehouse", warehouse_url]) == 0  # no runs yet: as before
    out = capsys.readouterr().out.splitlines()
    assert any(
        line.split() == ["members.member", "2024-05-01", "08:30:15", entry.load_id, "20240501T083000-abcdef"]
        for line in out
    ), out
    assert any(
        line.split() == ["members.member_card", "2099-01-01", "08:00:00", "gone", "-"] for line in out
    ), out
    warnings = [line for line in out if line.startswith("warning:")]
    assert len(warnings) == 1, out
    assert "members.member_card 2099-01-01 08:00:00 is later than now" in warnings[0]
    assert "no runs yet" in out


@pytest.mark.postgres
def test_a_batch_never_moves_the_watermark_back(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full re-pull, or late commits read in the overlap window, load rows older than the
    watermark: it stays where it was, with the load that set it; the batch is written all the
    same (on the run's one connection, as load_batches writes it)."""
    from flows.schema import table
    from flows.settings import load_settings
    from flows.warehouse.engine import init_warehouse, warehouse_engine
    from flows.warehouse.loader import LedgerEntry, watermarks, write_batch

    monkeypatch.setenv("UNIONWH_HOME", str(tmp_path))
    engine = warehouse_engine(load_settings(warehouse=warehouse_url))
    try:
        init_warehouse(engine)
        entries = [
            LedgerEntry(
                "run1",
                "members",
                "member",
                "members/member",
                f"{i}" * 64,
                datetime(2024, 5, 1).date(),
                0,
                0,
                0,
                "loaded",
            )
            for i in range(3)
        ]
        marks = [datetime(2024, 5, 1, 8), datetime(2024, 4, 1, 8), datetime(2024, 5, 1, 9)]
        with engine.connect() as conn:
            for e, mark in zip(entries[:2], marks[:2], strict=True):
                write_batch(conn, e, table("members", "member"), None, None, watermark=mark)
            assert watermarks(engine, "members") == {"member": marks[0]}
            write_batch(conn, entries[2], table("members", "member"), None, None, watermark=marks[2])
        assert watermarks(engine, "members") == {"member": marks[2]}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ops.load_ledger")).scalar_one() == 3
            set_by = conn.execute(sa.text("SELECT load_id FROM ops.watermarks")).scalar_one()
        assert set_by == entries[2].load_id
    finally:
        engine.dispose()
