"""Issue 21: the CLI resolves its settings once and passes them down; it writes no ``os.environ``.

A command's options (--warehouse, --landing, --members-url, --lock-wait) reach the code that
uses them as one resolved :class:`flows.settings.Settings`, and a flow run in the same process
gets that object through :func:`flows.settings.bound` (never as a logged flow parameter). The
commands here are called in-process (``flows.cli.main``) and refused early, so each is well
under a second; an audit hook (Python's own ``os.putenv`` / ``os.unsetenv`` events, raised by
every write to ``os.environ``) sees whether a ``UNIONWH_*`` variable was set at any moment
during the command, not only whether it was put back afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli import main
from flows.settings import Settings, bound, load_settings, settings_for_run

_WRITES: list[str] | None = None
"""The ``UNIONWH_*`` variables written to the environment while :func:`env_writes` records."""
_HOOKED = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WRITES is not None and event in ("os.putenv", "os.unsetenv"):
        key = args[0]
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.startswith("UNIONWH_"):
            _WRITES.append(f"{event} {name}")


@pytest.fixture
def env_writes() -> Iterator[list[str]]:
    global _WRITES, _HOOKED
    if not _HOOKED:  # once per process (a hook cannot be removed: it records only inside this fixture)
        sys.addaudithook(_audit)
        _HOOKED = True
    _WRITES = []
    try:
        yield _WRITES
    finally:
        _WRITES = None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as cwd and UNIONWH_HOME, no other UNIONWH_* setting."""
    for name in [n for n in os.environ if n.startswith("UNIONWH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNIONWH_HOME", str(tmp_path))
    return tmp_path


def unionwh_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("UNIONWH_")}


def error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("unionwh: error: ") and len(err.splitlines()) == 1, (rc, err)
    return err


@pytest.mark.unit
def test_the_probe_sees_a_write_to_the_environment(env_writes: list[str]) -> None:
    """The test below can fail: a write such as the CLI's before issue 21 is seen."""
    os.environ["UNIONWH_PROBE"] = "x"
    del os.environ["UNIONWH_PROBE"]
    assert env_writes == ["os.putenv UNIONWH_PROBE", "os.unsetenv UNIONWH_PROBE"]


def commands(home: Path) -> list[tuple[list[str], str]]:
    """Commands refused early, each naming (in its one error line) the value of its option."""
    missing = home / "nowhere" / "warehouse.duckdb"
    wh = f"duckdb:///{missing}"
    landing = home / "no-landing"
    return [
        (["status", "--warehouse", wh], str(missing)),
        (["quality", "--warehouse", wh], str(missing)),
        (["figures", "--warehouse", wh], str(missing)),
        (["audit", "--warehouse", wh], str(missing)),
        (["report", "--warehouse", wh], str(missing)),
        (["warehouse", "upgrade", "--warehouse", wh], str(missing)),
        (["run", "--warehouse", f"duckdb:///{home / 'wh.duckdb'}", "--landing", str(landing)], str(landing)),
        (
            ["backfill", "--from", "2021-01-01", "--to", "2021-01-31", "--landing", str(landing)],
            str(landing),
        ),
        (["run", "--landing", str(landing), "--members-url", "mysql://nobody@h/db"], "members"),
        (["run", "--landing", str(landing), "--lock-wait", "-1"], "lock_wait_seconds"),
    ]


@pytest.mark.unit
def test_options_reach_the_command_without_touching_the_environment(
    home: Path, env_writes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = unionwh_env()
    assert "UNIONWH_WAREHOUSE" not in before and "UNIONWH_LANDING" not in before
    for argv, named in commands(home):
        err = error_line(argv, capsys)
        assert named in err, (argv, err)
        assert unionwh_env() == before, argv
    assert env_writes == []  # not even for a moment, during a command


@pytest.mark.unit
def test_an_option_wins_over_the_environment_and_does_not_outlive_its_command(
    home: Path, monkeypatch: pytest.MonkeyPatch, env_writes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from_env = home / "env" / "warehouse.duckdb"
    from_option = home / "option" / "warehouse.duckdb"
    monkeypatch.setenv("UNIONWH_WAREHOUSE", f"duckdb:///{from_env}")
    env_writes.clear()  # (that was the test's own write)
    before = unionwh_env()
    err = error_line(["status", "--warehouse", f"duckdb:///{from_option}"], capsys)
    assert str(from_option) in err and str(from_env) not in err
    err = error_line(["status"], capsys)  # the next call in the same process: the environment's
    assert str(from_env) in err and str(from_option) not in err
    assert unionwh_env() == before and env_writes == []


@pytest.mark.unit
def test_settings_for_run_is_the_bound_object_inside_bound_and_resolved_outside(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNIONWH_WAREHOUSE", f"duckdb:///{home / 'env.duckdb'}")
    resolved = load_settings(warehouse=f"duckdb:///{home / 'cli.duckdb'}", landing=str(home / "in"))
    with bound(resolved) as given:
        assert given is resolved
        assert settings_for_run() is resolved
        # a flow's parameters that repeat the bound values (the CLI passes year=settings.report_year)
        assert settings_for_run(landing=None, report_year=resolved.report_year) is resolved
        # a parameter that differs applies on top of the bound settings, not of the environment
        other = settings_for_run(report_year=2020)
        assert other.report_year == 2020 and other.warehouse == resolved.warehouse
        assert other.landing_dir == home / "in"
    outside = settings_for_run(landing=str(home / "elsewhere"), report_year=2020)
    assert isinstance(outside, Settings) and outside is not resolved
    assert outside.warehouse == f"duckdb:///{home / 'env.duckdb'}"  # resolved afresh: the environment
    assert outside.landing_dir == home / "elsewhere" and outside.report_year == 2020
    assert settings_for_run().warehouse == outside.warehouse  # bound() left nothing behind


def test_a_flow_run_in_process_gets_the_bound_settings(home: Path, prefect_harness: None) -> None:
    """What `unionwh run` relies on: the bound object reaches the flow, its subflow and a task run
    in Prefect's thread pool, while the flow's recorded parameters hold no URL."""
    from prefect import flow, task

    seen: dict[str, Settings] = {}

    @task
    def in_task() -> None:
        seen["task"] = settings_for_run()

    @flow
    def inner(year: int | None = None) -> None:
        seen["subflow"] = settings_for_run(report_year=year)

    @flow
    def outer(year: int | None = None) -> None:
        seen["flow"] = settings_for_run(report_year=year)
        in_task.submit().result()
        inner(year=year)

    resolved = load_settings(warehouse=f"duckdb:///{home / 'cli.duckdb'}", report_year=2020)
    with bound(resolved):
        outer(year=2020)
    assert seen == {"flow": resolved, "task": resolved, "subflow": resolved}
    assert all(s is resolved for s in seen.values())
