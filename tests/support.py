"""Helpers shared by tests (importable as tests.support; pytest puts the project root on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Env:
    """Set UNIONWH_* variables for a block, restoring them afterwards."""

    def __init__(self, **values: str) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> Env:
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


PG_SERVER = os.environ.get("UNIONWH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def postgres_or_skip() -> str:
    """The test server's base URL; fail in CI (CI=true) and skip elsewhere when it is unreachable."""
    import psycopg
    import pytest
    from sqlalchemy.engine import make_url

    url = make_url(f"{PG_SERVER}/test")
    try:
        psycopg.connect(host=url.host, port=url.port, user=url.username, dbname="test", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url.host}:{url.port} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url.host}:{url.port} (start it to run this test)")
    return PG_SERVER


def create_database(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(f"{server}/test")
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname="test", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(f"{server}/test")
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname="test", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


MARIADB_SERVER = os.environ.get("UNIONWH_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def mariadb_or_skip() -> str:
    """The MariaDB test server's base URL; fail in CI (CI=true) and skip elsewhere when unreachable."""
    import pymysql
    import pytest
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_SERVER)
    try:
        pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                        connect_timeout=3).close()
    except pymysql.err.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB at {url.host}:{url.port} is unreachable in CI: {exc}")
        pytest.skip(f"MariaDB not reachable at {url.host}:{url.port} (start it to run this test)")
    return MARIADB_SERVER
