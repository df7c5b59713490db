"""A Prefect server backed by PostgreSQL, for production.

The embedded default needs none of this: a flow run without ``PREFECT_API_URL`` starts a
temporary server on SQLite. For the shared, always-on server, ``unionwh prefect-server``
makes sure the database exists (``prefect`` on the warehouse's PostgreSQL server by
default), then runs ``prefect server start`` with that database, the API and UI on
``http://<host>:<port>``. Flows then report to it when ``PREFECT_API_URL`` points there.
The database URL may carry a password: it goes to the server through the environment and
is only ever printed masked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flows.errors import ConfigError

if TYPE_CHECKING:
    from flows.settings import Settings

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/prefect"


def database_url(value: str | None) -> URL:
    """The Prefect database URL (asyncpg driver), from ``value`` or ``UNIONWH_PREFECT_DATABASE_URL``."""
    text = value or os.environ.get("UNIONWH_PREFECT_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError("the Prefect database URL is not a database URL") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"the Prefect server database must be PostgreSQL, not {url.get_backend_name()}")
    if not url.database:
        raise ConfigError("the Prefect database URL names no database (…/prefect)")
    return url.set(drivername="postgresql+asyncpg")


def ensure_database(url: URL) -> bool:
    """Create the database if the server lacks it; returns True when it was created."""
    # deferred: psycopg, only the production server's first start needs it
    import psycopg
    from psycopg import sql

    params = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as con:
            if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)).fetchone():
                return False
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
            return True
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"cannot reach PostgreSQL for the Prefect database at {url.host}:{url.port or 5432}: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from None


def server_environment(url: URL, host: str, port: int, home: Path | None = None) -> dict[str, str]:
    """The environment of ``prefect server start`` on this database."""
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": url.render_as_string(hide_password=False),
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    env.pop("PREFECT_API_URL", None)  # the server is not a client of another server
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    return env


def command() -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start"]


def start(url: URL, host: str, port: int, settings: Settings | None) -> int:
    """Run the server in the foreground until it is stopped; returns its exit code. Once it
    answers, the liveness automation is installed on it (flows/orchestration/liveness.py) with
    ``settings``, resolved once by the caller (None: not installed; the caller said why)."""
    created = ensure_database(url)
    print(f"Prefect database: {url.render_as_string(hide_password=True)}{' (created)' if created else ''}")
    print(
        f"Prefect UI and API: http://{host}:{port}  (flows report here with "
        f"PREFECT_API_URL=http://{host}:{port}/api)",
        flush=True,
    )
    with subprocess.Popen(command(), env=server_environment(url, host, port)) as proc:
        try:
            if settings is not None:
                _install_liveness(proc, host, port, settings)
            return proc.wait()
        except BaseException:
            proc.kill()
            raise


def _install_liveness(
    proc: subprocess.Popen[bytes], host: str, port: int, settings: Settings, seconds: float = 300
) -> None:
    from prefect.settings import (
        PREFECT_API_URL,
        temporary_settings,
    )  # deferred: Prefect (~1 s), only `prefect-server`

    from flows.orchestration import liveness  # deferred: imports Prefect's client

    api = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}/api"
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=5) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        time.sleep(1)
    else:
        return  # the server ended (or never answered): nothing to install on
    with temporary_settings(updates={PREFECT_API_URL: api}):
        liveness.install_or_warn(settings, sys.stdout)


class _OwnSession:
    """Prefect's ``subprocess`` module as its server module sees it, except that ``Popen``
    starts the process in a session of its own (see :func:`start_temporary_server_early`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:  # (subprocess's name)
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(*args, **kwargs)


def start_temporary_server_early() -> threading.Thread | None:
    """Without ``PREFECT_API_URL``, a flow run starts Prefect's temporary server first and
    waits for it (about 3 s). Starting it here, in a thread, boots that server process on
    the other core while this process imports the flow and Great Expectations. The flow run
    later finds it running (the server is one per process); join the thread before the flow
    starts, so the flow never sees a server that is not answering yet. ``None`` when a
    server is configured or temporary servers are disabled.

    The server process starts in a session of its own: a terminal's Ctrl-C goes to the whole
    foreground process group, and when it stopped the server too the run spent minutes
    retrying to report its end to a server that was gone, then died in tracebacks (issue 19).
    Now only this process gets it, stops in seconds and stops the server on its way out
    (Prefect's exit handler); SIGTERM and SIGHUP end this process as Ctrl-C does, so the
    server never outlives it (flows/orchestration/interrupt.py)."""
    # deferred: Prefect (~1 s); the CLI calls this before it imports a flow, to overlap the two
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    from flows.orchestration.interrupt import stop_on_signals

    stop_on_signals()
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    from prefect.server.api import server as prefect_server  # deferred: Prefect's server, only when it starts

    prefect_server.subprocess = _OwnSession()  # type: ignore[assignment]  # (its only use: the server's Popen)

    def start() -> None:
        from prefect.server.api.server import SubprocessASGIServer  # deferred: (in its own thread)

        SubprocessASGIServer().start()

    thread = threading.Thread(target=start, name="prefect-server-start", daemon=True)
    thread.start()
    return thread
