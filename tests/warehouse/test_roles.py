"""Roles on the real PostgreSQL server: each role reads exactly its lane (fails in CI without it)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.warehouse import roles
from tests.support import Env, create_database, drop_database, postgres_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def warehouse() -> Iterator[tuple[str, str]]:
    """A fresh database with the warehouse tables, a mart, an audit mart and a quarantine row."""
    server = postgres_or_skip()
    name = f"unionwh_roles_{secrets.token_hex(4)}"
    create_database(server, name)
    url = f"{server}/{name}"
    try:
        with Env(UNIONWH_WAREHOUSE=url):
            assert main(["warehouse", "init"]) == 0
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS marts")
            conn.exec_driver_sql("CREATE TABLE marts.fig_annual_figures (figure_id varchar, value numeric)")
            conn.exec_driver_sql("CREATE TABLE marts.audit_exceptions (rule varchar)")
            conn.exec_driver_sql(
                "INSERT INTO ops.quarantine VALUES ('l', 'rights', 'cases', 'f', 'h', DATE '2021-01-01', 2, 'C1', "
                "'case_no.required', '[]', '{}', TIMESTAMP '2021-01-01 00:00:00')"
            )
        roles.apply_grants(engine)
        engine.dispose()
        yield server, name
    finally:
        drop_database(server, name)


@contextlib.contextmanager
def connect_as(server: str, database: str, role: str) -> Iterator[psycopg.Connection]:
    """A login role that is a member of ``role`` (the group roles themselves cannot log in)."""
    user = f"{role}_t{secrets.token_hex(3)}"
    admin = sa.create_engine(f"{server}/{database}", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN IN ROLE {role}")
    url = sa.engine.make_url(f"{server}/{database}").set(drivername="postgresql", username=user)
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            yield conn
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP ROLE {user}")
        admin.dispose()


def can_read(conn: psycopg.Connection, sql: str) -> bool:
    try:
        conn.execute(sql).fetchall()
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def test_analyst_reads_marts_only(warehouse: tuple[str, str]) -> None:
    with connect_as(*warehouse, roles.ANALYST) as conn:
        assert can_read(conn, "select * from marts.fig_annual_figures")
        assert not can_read(conn, "select * from marts.audit_exceptions")
        assert not can_read(conn, "select id_card from raw.members__member")
        assert not can_read(conn, "select rules from ops.quarantine")
        assert not can_read(conn, "select * from ops.load_ledger")


def test_auditor_reads_audit_marts_and_quarantine_but_not_personal_data(warehouse: tuple[str, str]) -> None:
    with connect_as(*warehouse, roles.AUDITOR) as conn:
        assert can_read(conn, "select * from marts.fig_annual_figures")
        assert can_read(conn, "select * from marts.audit_exceptions")
        assert can_read(conn, "select row_key, rules, reasons from ops.quarantine")
        assert not can_read(conn, "select original_values from ops.quarantine")
        assert not can_read(conn, "select id_card from raw.members__member")


def test_loader_writes_raw(warehouse: tuple[str, str]) -> None:
    with connect_as(*warehouse, roles.LOADER) as conn:
        assert can_read(conn, "select id_card from raw.members__member")
        conn.execute("create table marts.scratch (x int)")
        conn.execute("drop table marts.scratch")


def test_warehouses_set_up_at_the_same_moment_both_get_their_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Roles are the server's, not a database's: setups racing to create a missing role all succeed."""
    import threading

    server = postgres_or_skip()
    names = tuple(f"unionwh_race_{secrets.token_hex(3)}_{i}" for i in range(3))
    monkeypatch.setattr(roles, "ROLES", names)
    engines = [sa.create_engine(f"{server}/test") for _ in range(6)]
    start, errors = threading.Barrier(len(engines)), []

    def setup(engine: sa.Engine) -> None:
        start.wait()
        try:
            roles.create_roles(engine)
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=setup, args=(e,)) for e in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors[0]
        with engines[0].connect() as conn:
            made = set(
                conn.execute(
                    sa.text("SELECT rolname FROM pg_roles WHERE rolname LIKE 'unionwh_race_%'")
                ).scalars()
            )
        assert set(names) <= made
    finally:
        with engines[0].connect() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            conn.commit()
        for e in engines:
            e.dispose()


def test_the_build_grants_the_same_lanes_as_the_roles_module() -> None:
    """macros/grant_readers.sql grants each new mart inside its build's transaction; its role names
    and its audit_* rule are roles.py's (which grants them again after the build)."""
    from tests.support import ROOT

    macro = (ROOT / "dbt_project" / "macros" / "grant_readers.sql").read_text(encoding="utf-8")
    assert "auditor_only = relation.identifier.startswith('audit_')" in macro
    assert f"'{roles.AUDITOR}' if auditor_only else '{roles.ANALYST}, {roles.AUDITOR}'" in macro
    assert set(re.findall(r"unionwh_\w+", macro)) == {roles.ANALYST, roles.AUDITOR}
