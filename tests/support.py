"""Helpers shared by tests (importable as tests.support; pytest puts the project root on sys.path)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]


class Env:
    """Set UNIONWH_* variables for a block, restoring them afterwards."""

    def __init__(self, **values: str) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> Self:
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
        psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname="test", connect_timeout=3
        ).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url.host}:{url.port} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {url.host}:{url.port} (start it to run this test)")
    return PG_SERVER


def create_database(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(f"{server}/test")
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="test", autocommit=True
    ) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(f"{server}/test")
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="test", autocommit=True
    ) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


MARIADB_SERVER = os.environ.get("UNIONWH_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def mariadb_or_skip() -> str:
    """The MariaDB test server's base URL; fail in CI (CI=true) and skip elsewhere when unreachable."""
    import pymysql
    import pytest
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_SERVER)
    try:
        pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            connect_timeout=3,
        ).close()
    except pymysql.err.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB at {url.host}:{url.port} is unreachable in CI: {exc}")
        pytest.skip(f"MariaDB not reachable at {url.host}:{url.port} (start it to run this test)")
    return MARIADB_SERVER


MEMBERS_DDL = (
    "create table member (member_id integer primary key, id_card text, name text, phone text, union_code text,"
    " employment_form text, is_migrant integer, is_veteran integer, joined_on text, updated_at text,"
    " deleted_at text);"
    "create table member_card (card_event_id integer primary key, member_id integer, card_no text, action text,"
    " action_on text, updated_at text);"
)
"""The member platform's two tables, as a SQLite script (the contract's columns)."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, body: dict | None = None) -> object:
    """GET (no body) or POST JSON to a Prefect API; the decoded answer."""
    import json
    import time
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body or {}).encode(),
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    # Prefect's server answers 503 (with Retry-After) while its SQLite database is locked by a
    # concurrent write, and 429/502 under load; Prefect's own client retries those, so do we.
    for attempt in range(8):
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code not in (429, 502, 503) or attempt == 7:
                raise
            wait = e.headers.get("Retry-After") if e.headers else None
            time.sleep(
                min(float(wait), 10.0) if wait and wait.replace(".", "", 1).isdigit() else 2.0**attempt / 4
            )
    raise AssertionError("unreachable")


def wait_for(check, what: str, seconds: float, procs: list) -> object:  # type: ignore[no-untyped-def]
    """Poll ``check()`` every second until it is truthy; fail if one of ``procs`` exits or time runs out."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        for p in procs:
            assert p.poll() is None, f"{p.args} exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def stop(proc) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM a child's process group (it was started with start_new_session), SIGKILL after 30 s."""
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def clean_env() -> dict[str, str]:
    """The environment without any PREFECT_* or UNIONWH_* variable, for child processes."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "UNIONWH_"))}


def local_prefect_server(home: Path):  # type: ignore[no-untyped-def]
    """A real ``prefect server start`` (SQLite under ``home``, no UI) as a context manager
    yielding ``(api_url, process)``."""
    import contextlib
    import subprocess
    import sys

    @contextlib.contextmanager
    def running():  # type: ignore[no-untyped-def]
        port = free_port()
        env = dict(clean_env(), PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        home.mkdir(parents=True, exist_ok=True)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
            ],
            env=env,
            stdout=(home / "server.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}/api"
        try:
            wait_for(lambda: api(base, "/health") is True, "the Prefect server", 120, [server])
            yield base, server
        finally:
            stop(server)

    return running()


CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("UNIONWH_TEST_ARTIFACTS") or ROOT / "test-artifacts")


def chromium_or_skip() -> tuple[str, str]:
    """Debian's chromium and chromedriver; fail in CI (CI=true) and skip elsewhere when missing."""
    import pytest

    missing = [p for p in CHROMIUM if not Path(p).exists()]
    if missing:
        message = f"{', '.join(missing)} missing (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test in CI: {message}")
        pytest.skip(message)
    return CHROMIUM


def prefect_text(home: Path) -> str:
    """Every text cell of Prefect's SQLite database under ``home`` (flow runs, parameters, task
    runs, logs): where a leaked secret or personal value would be stored."""
    import sqlite3

    out: list[str] = []
    for db in home.rglob("*.db"):
        with sqlite3.connect(db) as con:
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                for row in con.execute(f'SELECT * FROM "{name}"'):
                    out.extend(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(out)


class Hook:
    """A webhook on 127.0.0.1 recording the raw body of every POST (Apprise's json:// target):
    ``received`` holds the bodies as text, ``json()`` them parsed."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        received: list[str] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self) -> list[object]:
        import json

        return [json.loads(body) for body in self.received]


def hook_fixture():  # type: ignore[no-untyped-def]
    """Yields a :class:`Hook`, shut down afterwards (wrap with ``pytest.fixture``)."""
    h = Hook()
    yield h
    h.server.shutdown()


def throwaway_postgres(prefix: str):  # type: ignore[no-untyped-def]
    """A fresh database on the test PostgreSQL server (``postgres_or_skip``), dropped afterwards:
    a context manager yielding its URL."""
    import contextlib
    import secrets

    @contextlib.contextmanager
    def database():  # type: ignore[no-untyped-def]
        server = postgres_or_skip()
        name = f"{prefix}_{secrets.token_hex(4)}"
        create_database(server, name)
        try:
            yield f"{server}/{name}"
        finally:
            drop_database(server, name)

    return database()


def workbook_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """An xlsx with these sheets and rows (openpyxl), as bytes."""
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    """An xlsx at ``path`` with these sheets and rows (openpyxl), its folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(workbook_bytes(sheets))


@dataclass(frozen=True)
class Demo2021:
    """The 2021 demo landing zone after one real nightly run: its home folder, the UNIONWH_* settings that
    point into it, the run's summary (``flows.nightly.RunSummary``) and the generator's manifest."""

    home: Path
    env: dict[str, str]
    first: Any  # flows.nightly.RunSummary
    manifest: Any


def demo_env(home: Path) -> dict[str, str]:
    return {
        "UNIONWH_HOME": str(home),
        "UNIONWH_LANDING": str(home / "landing"),
        "UNIONWH_WAREHOUSE": f"duckdb:///{home / 'warehouse.duckdb'}",
        "UNIONWH_OUTPUT": str(home / "runs"),
    }


def copy_demo(demo: Demo2021, dest: Path) -> Demo2021:
    """A private copy of the demo's home (landing zone, warehouse, key, run folders) to change at will; its
    ``first`` still describes the original run."""
    shutil.copytree(demo.home, dest, symlinks=True, dirs_exist_ok=True)
    return Demo2021(dest, demo_env(dest), demo.first, demo.manifest)
