"""The raw layer and the ledger are append-only: corrections arrive as new rows (issue 9).

Which tables, why, and the three documented rewrites (``--full-refresh``, ``rotate-key``, the
pseudonym backfill after schema version 2): flows/warehouse/appendonly.py.

- DuckDB (no triggers): every SQL statement our process sends to the warehouse is captured
  with a SQLAlchemy ``before_cursor_execute`` listener over real runs (a nightly run, a second
  run, a run after a correction, publishing the year): none is an UPDATE, DELETE, TRUNCATE,
  MERGE, DROP or ALTER of an append-only table, and the only rewrites at all are of
  ``ops.runs`` (a run's status row) and ``ops.watermarks`` (the members pull's cursor). dbt
  runs in a child process the listener cannot see, so every row of every append-only table
  present after one step is compared, as text of its values, with the rows after the next:
  each is still there, unchanged (a multiset containment), and a finished run's ``ops.runs``
  row too. Key rotation, the documented rewrite that needs no run, changes exactly the
  pseudonym columns of raw.
- PostgreSQL: schema version 5's triggers refuse UPDATE, DELETE and TRUNCATE of those tables
  from anyone (dbt included) unless the transaction names a documented rewrite; the same runs
  succeed under them, the server's own counters (pg_stat_user_tables) show no row of them
  updated or deleted, and the documented rewrites (rotate-key, a full refresh) still work.
"""

from __future__ import annotations

import itertools
import re
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.nightly import nightly_load
from flows.settings import load_settings
from flows.warehouse import appendonly, migrations, refresh
from flows.warehouse.engine import warehouse_engine
from tests.support import Env, create_database, drop_database, postgres_or_skip
from tests.warehouse.pipeline_support import PROTECTED, contents, deliver_correction, lost, small_landing

pytestmark = pytest.mark.e2e

KEY = "append-only-test-key-0123456789abcdef"
REWRITABLE = frozenset({"ops.runs", "ops.watermarks"})  # a run's status row; the members pull's cursor

_WRITE = re.compile(
    r"\b(update|delete\s+from|truncate(?:\s+table)?|merge\s+into|drop\s+table(?:\s+if\s+exists)?"
    r"|alter\s+table(?:\s+if\s+exists)?|insert\s+or\s+replace\s+into|insert\s+into)\s+"
    r"(\"?[a-z_][\w$]*\"?\s*\.\s*\"?[a-z_][\w$]*\"?)",
    re.IGNORECASE,
)


def writes(statement: str) -> list[tuple[str, str]]:
    """(verb, schema.table) of every write a statement names (pure): an INSERT is reported as
    ``insert`` unless it replaces or upserts (``INSERT OR REPLACE``, ``ON CONFLICT``: ``upsert``);
    an ALTER TABLE that only adds a column (a schema migration) as ``add column``."""
    out = []
    for verb, target in _WRITE.findall(statement):
        verb = (
            " ".join(verb.lower().split()[:2]).replace(" from", "").replace(" into", "").replace(" table", "")
        )
        if verb == "insert" and re.search(r"\bon\s+conflict\b", statement, re.IGNORECASE):
            verb = "upsert"
        if verb == "alter" and re.fullmatch(
            r"\s*alter\s+table\s+(if\s+exists\s+)?\S+\s+add\s+column\s+[^;]*",
            statement,
            re.IGNORECASE | re.DOTALL,
        ):
            verb = "add column"  # a migration's new column: additive, no row changes
        out.append((verb, re.sub(r"[\"\s]", "", target).lower()))
    return out


def test_the_statement_reader_finds_every_kind_of_rewrite() -> None:
    assert writes("UPDATE ops.runs SET status = 1") == [("update", "ops.runs")]
    assert writes('delete  from "raw"."rights__cases" where x') == [("delete", "raw.rights__cases")]
    assert writes("TRUNCATE TABLE ops.load_ledger") == [("truncate", "ops.load_ledger")]
    assert writes("MERGE INTO raw.a USING b ON TRUE") == [("merge", "raw.a")]
    assert writes("DROP TABLE IF EXISTS ops.quarantine") == [("drop", "ops.quarantine")]
    assert writes("INSERT OR REPLACE INTO ops.figure_values VALUES (1)") == [
        ("insert or", "ops.figure_values")
    ]
    assert writes("INSERT INTO ops.x VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2") == [("upsert", "ops.x")]
    assert writes("INSERT INTO ops.x (a) SELECT a FROM raw.y") == [("insert", "ops.x")]
    assert writes("SELECT * FROM raw.rights__cases") == []
    assert writes("ALTER TABLE raw.a ADD COLUMN IF NOT EXISTS b_pseudonym VARCHAR") == [
        ("add column", "raw.a")
    ]
    assert writes("ALTER TABLE raw.a DROP COLUMN b") == [("alter", "raw.a")]
    assert writes("ALTER TABLE raw.a ADD COLUMN b INT; DELETE FROM raw.a") == [
        ("alter", "raw.a"),
        ("delete", "raw.a"),
    ]


class Capture:
    """Every statement any SQLAlchemy engine of this process sends while the block runs."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        self.statements.append(statement)

    def __enter__(self) -> Self:
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._record)

    def rewrites(self) -> list[tuple[str, str, str]]:
        """(verb, table, statement) of every write of a raw or ops table that is not an INSERT."""
        return [
            (verb, table, s)
            for s in self.statements
            for verb, table in writes(s)
            if verb not in ("insert", "add column") and table.split(".")[0] in ("raw", "ops")
        ]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_landing(tmp_path_factory.mktemp("append-only") / "landing")


def _home(tmp_path: Path, landing: Path, warehouse: str | None = None) -> dict[str, str]:
    shutil.copytree(landing, tmp_path / "landing")
    return {
        "UNIONWH_HOME": str(tmp_path),
        "UNIONWH_LANDING": str(tmp_path / "landing"),
        "UNIONWH_WAREHOUSE": warehouse or f"duckdb:///{tmp_path / 'wh.duckdb'}",
        "UNIONWH_OUTPUT": str(tmp_path / "runs"),
        "UNIONWH_PUBLISHED": str(tmp_path / "published"),
        "UNIONWH_PII_KEY": KEY,
        "UNIONWH_REPORT_YEAR": "2021",
    }


def _engine(env: dict[str, str]) -> sa.Engine:
    with Env(**env):
        return warehouse_engine(load_settings())


def test_duckdb_runs_correction_and_publication_only_append(
    landing: Path, prefect_harness: None, tmp_path: Path
) -> None:
    env = _home(tmp_path, landing)
    steps: dict[str, Capture] = {}
    snapshots: dict[str, dict[str, Counter[str]]] = {}

    def step(name: str, action) -> None:  # type: ignore[no-untyped-def]
        with Capture() as cap, Env(**env):
            action()
        steps[name] = cap
        engine = _engine(env)
        try:
            snapshots[name] = contents(engine)
        finally:
            engine.dispose()

    def run() -> None:
        summary = nightly_load(year=2021)
        assert summary.status == "succeeded", summary.errors

    step("nightly run", run)
    step("second run", run)
    engine = _engine(env)
    try:
        case = deliver_correction(tmp_path / "landing", engine)
    finally:
        engine.dispose()
    step("run after a correction", run)

    def publish() -> None:
        assert main(["report", "publish", "--year", "2021"]) == 0

    step("publishing 2021", publish)

    first = steps["nightly run"]
    assert any(
        t == "ops.load_ledger" for v, t in (w for s in first.statements for w in writes(s)) if v == "insert"
    )
    assert ("update", "ops.runs") in {
        (v, t) for v, t, _ in first.rewrites()
    }  # the listener sees the run's SQL
    for name, cap in steps.items():
        bad = [(v, t, s[:200]) for v, t, s in cap.rewrites() if t not in REWRITABLE]
        assert bad == [], f"{name}: a statement rewrote an append-only table"
        assert {t for _, t, _ in cap.rewrites()} <= REWRITABLE
        assert not [s for s in cap.statements if re.search(r"\bon\s+conflict\b", s, re.IGNORECASE)]
    names = list(snapshots)
    for before, after in itertools.pairwise(names):
        assert lost(snapshots[before], snapshots[after]) == {}, (
            f"rows of {before} changed or vanished by {after}"
        )
    one, two, three, published = (snapshots[n] for n in names)
    unchanged = PROTECTED - {
        "ops.run_sources",
        "ops.figure_values",
        "ops.figure_changes",
        "ops.dbt_builds",
        "ops.dbt_node_results",
    }
    assert {t: two[t] for t in unchanged} == {t: one[t] for t in unchanged}  # nothing new: nothing written
    assert published == three  # publishing writes files, never the warehouse
    corrected = list(three["raw.rights__cases"] - two["raw.rights__cases"])
    assert (
        len(corrected) == 1 and repr(case) in corrected[0] and "成功" in corrected[0]
    )  # the correction: a new row
    assert [
        r for r in two["raw.rights__cases"] if repr(case) in r and "咨询" in r
    ]  # the old one kept as it was
    assert len(three["ops.figure_changes"]) > len(
        two["ops.figure_changes"]
    )  # old -> new figures, recorded as rows

    # The one rewrite that needs no run: rotate-key changes the pseudonym columns of raw and nothing else.
    engine = _engine(env)
    try:
        kept = contents(engine, leave_out="_pseudonym")
        pseudonyms = contents(engine, {t for t in PROTECTED if t.startswith("raw.")})
        with Capture() as cap, Env(**env, UNIONWH_NEW_PII_KEY=secrets.token_hex(24)):
            assert main(["warehouse", "rotate-key"]) == 0
        assert contents(engine, leave_out="_pseudonym") == kept
        assert contents(engine, {t for t in PROTECTED if t.startswith("raw.")}) != pseudonyms
    finally:
        engine.dispose()
    rewrites = {(v, t) for v, t, _ in cap.rewrites()}
    assert {t for v, t in rewrites if v == "update"} - {"ops.settings"} <= PROTECTED
    assert {(v, t) for v, t in rewrites if t not in PROTECTED} <= {
        ("update", "ops.settings"),
        ("drop", "ops.pseudonym_scratch"),
    }
    for verb, table, statement in cap.rewrites():
        if table in PROTECTED:
            assert verb == "update" and re.match(rf"UPDATE {table} SET \w+_pseudonym = ", statement), (
                statement
            )


@pytest.fixture
def pg_env(landing: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    server = postgres_or_skip()
    name = f"unionwh_append_{secrets.token_hex(4)}"
    create_database(server, name)
    try:
        yield _home(tmp_path, landing, f"{server}/{name}")
    finally:
        drop_database(server, name)


def _changed_rows(engine: sa.Engine) -> dict[str, tuple[int, int, int]]:
    """(inserted, updated, deleted) rows of every append-only table, as the server counted them."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del "
                "FROM pg_stat_user_tables WHERE schemaname IN ('raw', 'ops')"
            )
        ).all()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows if r[0] in PROTECTED}


def _refused(engine: sa.Engine, statement: str, reason: str | None = None) -> str:
    try:
        with engine.begin() as conn:
            if reason:
                appendonly.allow_rewrite(conn, reason)
            conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        return str(exc.orig).splitlines()[0]
    raise AssertionError(f"not refused: {statement} (reason {reason})")


@pytest.mark.postgres
def test_postgresql_triggers_refuse_rewrites_and_no_run_needs_one(
    pg_env: dict[str, str], prefect_harness: None
) -> None:
    env = pg_env
    with Env(**env):
        assert nightly_load(year=2021).status == "succeeded"
    engine = _engine(env)
    try:
        with engine.connect() as conn:
            assert migrations.current_version(conn) == migrations.LATEST >= 5
            triggered = set(
                conn.execute(
                    sa.text(
                        "SELECT n.nspname || '.' || c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = 'unionwh_append_only'"
                    )
                ).scalars()
            )
        assert triggered == PROTECTED
        case = deliver_correction(Path(env["UNIONWH_LANDING"]), engine)
        before = contents(engine)
    finally:
        engine.dispose()
    with Env(**env):
        assert nightly_load(year=2021).status == "succeeded"  # a correction, and dbt, under the triggers
        assert main(["report", "publish", "--year", "2021"]) == 0
    engine = _engine(env)
    try:
        after = contents(engine)
        assert lost(before, after) == {}
        assert [r for r in after["raw.rights__cases"] - before["raw.rights__cases"] if repr(case) in r]
        deadline = time.monotonic() + 10  # the runs' backends report their counts as they close
        while (counts := _changed_rows(engine)).get("ops.load_ledger", (0,))[
            0
        ] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert counts["ops.load_ledger"][0] > 0 and counts["raw.rights__cases"][0] > 0
        assert {t: c[1:] for t, c in counts.items() if c[1:] != (0, 0)} == {}  # no row updated or deleted

        assert "append-only: UPDATE refused" in _refused(
            engine, "UPDATE raw.rights__cases SET recovered_yuan = 0"
        )
        assert "append-only: DELETE refused" in _refused(engine, "DELETE FROM ops.load_ledger WHERE false")
        assert "append-only: TRUNCATE refused" in _refused(engine, "TRUNCATE ops.figure_values")
        assert "append-only: TRUNCATE refused" in _refused(
            engine, "TRUNCATE ops.figure_changes", "full-refresh"
        )
        assert "append-only: DELETE refused" in _refused(engine, "DELETE FROM ops.quarantine", "rotate-key")
        assert "append-only: UPDATE refused" in _refused(
            engine, "UPDATE ops.dbt_builds SET status = 'x'", "full-refresh"
        )
        assert "finished run's row never changes" in _refused(engine, "UPDATE ops.runs SET status = 'failed'")
        assert "refused" in _refused(engine, "DELETE FROM ops.runs")
        with pytest.raises(ValueError, match="not a documented rewrite"), engine.begin() as conn:
            appendonly.allow_rewrite(conn, "because")
        assert contents(engine) == after
        contents_without_pseudonyms = contents(engine, leave_out="_pseudonym")
    finally:
        engine.dispose()

    # The documented rewrites name themselves and pass under the triggers: rotate-key, and the
    # clearing step of a full refresh (tests/orchestration/test_backfill.py runs whole refreshes).
    with Env(**env, UNIONWH_NEW_PII_KEY=secrets.token_hex(24)):
        assert main(["warehouse", "rotate-key"]) == 0
    engine = _engine(env)
    try:
        rotated = contents(engine)
        assert rotated != after and contents(engine, leave_out="_pseudonym") == contents_without_pseudonyms
        assert refresh.clear_file_sources(engine) > 0
        cleared = contents(engine)
        assert (
            cleared["raw.rights__cases"] == Counter()
            and cleared["raw.members__member"] == rotated["raw.members__member"]
        )  # the members source is never cleared
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_pseudonym_backfill_after_an_upgrade_from_version_1_passes_the_triggers() -> None:
    """The third documented rewrite: a warehouse loaded before schema version 2 gets its
    pseudonym columns filled (UPDATE of NULLs) by the next run, under version 5's triggers."""
    from flows.warehouse import pii

    server = postgres_or_skip()
    name = f"unionwh_append_{secrets.token_hex(4)}"
    create_database(server, name)
    engine = sa.create_engine(f"{server}/{name}")
    try:
        migrations.upgrade(engine, to=1)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO raw.events__honours (honour_id, year, honour, level, recipient, _load_id, _source, "
                "_file_name, _file_sha256, _delivery_date, _row_number) VALUES ('H1', 2021, '优秀志愿者', '区级', "
                "'张三', 'l', 'events', 'f', 'h', DATE '2021-12-31', 2)"
            )
        migrations.upgrade(engine)
        assert "append-only: UPDATE refused" in _refused(
            engine,
            "UPDATE raw.events__honours SET recipient_pseudonym = 'x' WHERE recipient_pseudonym IS NULL",
        )
        assert pii.backfill(engine, KEY.encode()) == 1
        with engine.connect() as conn:
            filled = conn.exec_driver_sql("SELECT recipient_pseudonym FROM raw.events__honours").scalar_one()
        assert filled == pii.pseudonym(KEY.encode(), "张三")
    finally:
        engine.dispose()
        drop_database(server, name)
