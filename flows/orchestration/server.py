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

import atexit
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flows.errors import ConfigError, scrub_text

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
        if _answers(api, 5):
            break
        time.sleep(1)
    else:
        return  # the server ended (or never answered): nothing to install on
    with temporary_settings(updates={PREFECT_API_URL: api}):
        liveness.install_or_warn(settings, sys.stdout)


STARTUP_SECONDS = 120.0
"""How long a temporary server may take to answer (a busy 2-core machine, two runs at once)."""


def _answers(api: str, timeout: float) -> bool:
    """Whether the Prefect API at ``api`` answers its health check now."""
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class TemporaryServer:
    """Prefect's temporary API server for one command, started by us rather than by Prefect.

    Without ``PREFECT_API_URL`` a flow run starts Prefect's temporary server and waits for it;
    Prefect's own starter imports its whole server (FastAPI, the database layer: ~4 CPU-s) into
    the run's process only to spawn it (issue 22). This runs the same command (uvicorn on
    Prefect's ``create_app``, SQLite under ``PREFECT_HOME``, no UI) as a child process from the
    start of the command, on the other core while this process imports the flow; the flow then
    reports to it as to a standing server (:meth:`configured`: ``PREFECT_API_URL`` for this
    process's Prefect settings only, never the environment).

    The server runs in a session of its own: a terminal's Ctrl-C goes to the whole foreground
    process group, and when it stopped the server too, the run spent minutes retrying to report
    its end to a server that was gone (issue 19); this process stops it on its way out
    (:meth:`stop`, also at exit), and on Linux a killed run takes it along (``PR_SET_PDEATHSIG``).
    It logs Prefect's lines: "Starting temporary server on …", "Stopping temporary server on …".
    """

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.output: IO[bytes] | None = None
        self._settings: contextlib.ExitStack | None = None
        """Inside :meth:`configured`: the Prefect settings pointing this process at the server."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self) -> None:
        # deferred: Prefect's settings (light); only commands that run a flow start a server
        import prefect
        from prefect.settings import get_current_settings

        from flows.warehouse.dbt import die_with_parent

        self.port = _free_port()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        env.pop("PREFECT_API_URL", None)  # (a server is no client of another)
        if self.output is not None:
            self.output.close()
        # the server's output goes to a file, not the terminal (a failed start is one line, below)
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed by stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(prefect.__file__).parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl(PDEATHSIG) before exec; no thread runs in the child
        )

    def start(self) -> None:
        """Spawn the server (from the main thread: the parent-death signal follows the thread
        that started the child)."""
        self._spawn()
        _logger().info(
            "Starting temporary server on http://127.0.0.1:%d (Prefect's API for this run; "
            "set PREFECT_API_URL to report to a standing server instead)",
            self.port,
        )
        atexit.register(self.stop)

    def join(self, timeout: float = STARTUP_SECONDS) -> None:
        """Wait until the server answers ``/health``. uvicorn exits 3 when it cannot start: a port
        taken meanwhile gets another (twice at most; a server that cannot start on its database
        fails the same way on every port). Raises :class:`ConfigError` naming the server's last
        line of output when it never answers."""
        deadline = time.monotonic() + timeout
        retries = 2
        while time.monotonic() < deadline:
            assert self.process is not None, "start() first"
            code = self.process.poll()
            # uvicorn exits 3 when the port was taken between our check and its bind, or when another
            # server was migrating the same PREFECT_HOME database (two runs started together)
            if code == 3 and retries:
                retries -= 1
                self._spawn()
                self._point_settings()  # (another port: the client follows, issue 22 CI)
                continue
            if code is not None:
                break
            if _answers(self.api_url, 2):
                return
            time.sleep(0.1)
        code = self.process.poll() if self.process is not None else None
        said = self._last_line()
        self.stop()
        raise ConfigError(
            "Prefect's temporary server did not start"
            + (f" (it exited with code {code}" if code is not None else f" (no answer within {timeout:.0f} s")
            + (f"; it said: {said})" if said else ")")
            + ": check that PREFECT_HOME is a writable folder, or set PREFECT_API_URL to a running "
            "Prefect server"
        )

    def _last_line(self) -> str:
        """What the server said of its failure: its last exception line (``…Error: …``), else
        its last line of output; scrubbed of what may be a value, one line."""
        if self.output is None:
            return ""
        self.output.seek(0)
        lines = [line.strip() for line in self.output.read().decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line and not line.startswith("(Background on this error")]
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
        return scrub_text((errors or lines or [""])[-1])

    @contextlib.contextmanager
    def configured(self) -> Iterator[None]:
        """This process's Prefect client reports to the server (its settings, not the environment)."""
        with contextlib.ExitStack() as self._settings:
            self._point_settings()
            try:
                yield
            finally:
                self._settings = None

    def _point_settings(self) -> None:
        """Inside :meth:`configured`: this process's Prefect client to :attr:`api_url` (again
        after :meth:`join` started the server on another port: two runs starting together can
        be given the same free port, and the one whose server lost the race must not report to
        the other's)."""
        # deferred: Prefect's settings, as in _spawn
        from prefect.settings import PREFECT_API_URL, temporary_settings

        if self._settings is not None:
            self._settings.enter_context(temporary_settings(updates={PREFECT_API_URL: self.api_url}))

    def stop(self) -> None:
        proc, self.process = self.process, None
        output, self.output = self.output, None
        if output is not None:
            output.close()
        if proc is None:
            return
        if proc.poll() is None:
            _drain_to_server()
            _logger().info("Stopping temporary server on http://127.0.0.1:%d", self.port)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _drain_to_server(seconds: float = 10.0) -> None:
    """Send what Prefect still holds for the server (log lines, events: background workers that
    would otherwise send them at exit, to a server stopped by then)."""
    # deferred: Prefect's workers, loaded by the flow that queued their work
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=seconds)


def _logger() -> logging.Logger:
    # deferred: Prefect's logging (its console handler), loaded by the flow anyway
    from prefect.logging import get_logger

    return get_logger()  # ("prefect", as Prefect's own starter logs these lines)


def _free_port() -> int:
    """A port on 127.0.0.1 free now (uvicorn binds it a moment later: see ``join``)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_temporary_server_early() -> TemporaryServer | None:
    """Without ``PREFECT_API_URL`` (and temporary servers enabled), Prefect's temporary server
    for this command, started now (:class:`TemporaryServer`); ``None`` when a server is
    configured or temporary servers are disabled. SIGTERM and SIGHUP end this process as
    Ctrl-C does (flows/orchestration/interrupt.py), so the server never outlives it."""
    # deferred: Prefect (~1 s); the CLI calls this before it imports a flow, to overlap the two
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    from flows.orchestration.interrupt import stop_on_signals

    stop_on_signals()
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    server = TemporaryServer()
    server.start()
    return server
