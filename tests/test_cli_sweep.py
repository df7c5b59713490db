"""Issue 19: every subcommand, given a careless input — a missing or garbled warehouse URL, a
missing or empty landing zone, a bad members URL, a bad year, a bad argument — ends in one line
``unionwh: error: …`` on stderr, no traceback, the documented exit code (2: refused, see
flows/errors.py ``Exit``), before Prefect starts, and creates nothing.

Every case is the real CLI in its own child process, in its own folder (its home and working
directory); the cases run four at a time. Only refusals are swept: each case must fail in about a
second, before any temporary server or connection that could succeed."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.errors import Exit
from tests.support import PG_SERVER, clean_env, postgres_or_skip

UNIONWH = [sys.executable, "-m", "flows.cli"]
KEY = "sweep-key-0123456789abcdef"
NEW_KEY = "sweep-new-key-0123456789abcdef"

MISSING_DUCKDB = "duckdb:///nonexistent-dir/x.duckdb"
REFUSED_PG = "postgresql+psycopg://postgres@127.0.0.1:1/x"  # nothing listens on port 1
GARBLED = "notascheme://x"
NO_SUCH_DB = f"{PG_SERVER}/no_such_db_19"

WRITERS = [("run",), ("backfill", "--from", "2021-01-01", "--to", "2021-12-31")]
ADMIN = [("warehouse", "init"), ("warehouse", "upgrade"), ("warehouse", "rotate-key")]
READERS = [
    ("figures",),
    ("quality",),
    ("audit",),
    ("report",),
    ("report", "publish"),
    ("report", "diff"),
    ("status",),
]
WITH_YEAR = [
    *WRITERS,
    ("demo", "--landing", "zone"),
    ("figures",),
    ("audit",),
    ("report",),
    ("report", "publish"),
    ("report", "diff"),
]


@dataclass(frozen=True)
class Case:
    """``unionwh <args>`` with ``env`` over a clean environment; ``needle``: in the error line;
    ``make``: folders (ending in /) and empty files to create in the case's folder first."""

    args: tuple[str, ...]
    needle: str
    env: tuple[tuple[str, str], ...] = ()
    make: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env)
        return f"{env + ' ' if env else ''}unionwh {' '.join(self.args)}"


def warehouse_cases(url: str, needle: str) -> list[Case]:
    """Every command that opens the warehouse, given ``url`` (a missing DuckDB file is only
    careless for the commands that must not create one)."""
    commands = [*ADMIN[1:], *READERS] if url.startswith("duckdb") else [*WRITERS, *ADMIN, *READERS]
    return [Case((*c, "--warehouse", url), needle, (("UNIONWH_NEW_PII_KEY", NEW_KEY),)) for c in commands]


def cases() -> list[Case]:
    out = [
        *warehouse_cases(MISSING_DUCKDB, "nonexistent-dir"),
        *warehouse_cases(REFUSED_PG, "127.0.0.1:1"),
        *warehouse_cases(GARBLED, "warehouse"),
    ]
    for c in WRITERS:
        out += [
            Case((*c, "--landing", "nowhere"), "nowhere does not exist"),
            Case((*c, "--landing", "empty"), "no delivery", make=("empty/",)),
            Case((*c, "--members-url", "sqlite:///nowhere/members.sqlite"), "members database file"),
            Case((*c, "--members-url", "sqlite:///folder"), "is a folder", make=("folder/",)),
            Case((*c, "--members-url", GARBLED), "members_url"),
            Case((*c, "--members-url", REFUSED_PG.replace("/x", "/members")), "cannot reach the members"),
        ]
    for c in WITH_YEAR:
        out += [
            Case((*c, "--year", "abc"), "invalid int value"),
            Case((*c, "--year", "1999"), "report year must be between 2000"),
            Case((*c, "--year", "2050"), "report year must be between 2000"),
        ]
    out += [
        Case(("run",), "report year must be between 2000", (("UNIONWH_REPORT_YEAR", "2050"),)),
        Case(("demo", "--landing", "zone", "--scale", "0"), "--scale"),
        Case(("demo", "--landing", "a-file"), "not a writable folder", make=("a-file",)),
        Case(("warehouse", "rotate-key"), "UNIONWH_NEW_PII_KEY"),
        Case(("serve", "--limit", "abc"), "invalid int value"),
        Case(("serve", "--limit", "0"), "--limit"),
        Case(("serve",), "warehouse", (("UNIONWH_WAREHOUSE", GARBLED),)),
        Case(("serve",), "UNIONWH_PII_KEY", (("UNIONWH_WAREHOUSE", REFUSED_PG), ("UNIONWH_PII_KEY", ""))),
        Case(("liveness",), "PREFECT_API_URL"),
        Case(("liveness", "--crashed-after", "abc"), "invalid int value"),
        Case(("prefect-server", "--database-url", GARBLED), "PostgreSQL"),
        Case(("prefect-server", "--port", "abc"), "invalid int value"),
        Case(("warehouse", "frob"), "invalid choice"),
        Case((), "required"),
    ]
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: size and modification time (a folder's changes when
    an entry is added or removed)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
        for p in [root, *root.rglob("*")]
    }


def attempt(case: Case, home: Path) -> str | None:
    """Run one case in ``home``; what is wrong with its outcome, or None."""
    home.mkdir()
    for name in case.make:
        (home / name).mkdir() if name.endswith("/") else (home / name).touch()
    before = snapshot(home)
    env = {
        **clean_env(),
        "UNIONWH_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "UNIONWH_PII_KEY": KEY,
        **dict(case.env),
    }
    proc = subprocess.run(
        [*UNIONWH, *case.args], env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False
    )
    out, lines = proc.stdout + proc.stderr, proc.stderr.strip().splitlines()
    problems = []
    if proc.returncode != Exit.USAGE:
        problems.append(f"exit {proc.returncode}, not {int(Exit.USAGE)}")
    if "Traceback" in out or "temporary server" in out or "Beginning flow run" in out:
        problems.append("a traceback, or Prefect started")
    if len(lines) != 1 or not lines[0].startswith("unionwh: error: "):
        problems.append(f"{len(lines)} lines on stderr")
    elif case.needle not in lines[0]:
        problems.append(f"{case.needle!r} not said")
    if proc.stdout:
        problems.append("output on stdout")
    after = snapshot(home)
    if after != before:
        changed = sorted(set(after) ^ set(before) | {k for k in after if before.get(k, after[k]) != after[k]})
        problems.append(f"created or changed {changed[:5]}")
    return f"{case}: {'; '.join(problems)}\n    {out.strip()[-600:]}" if problems else None


def sweep(tmp_path: Path, todo: list[Case]) -> None:
    with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 1) * 2)) as pool:
        found = list(pool.map(lambda ic: attempt(ic[1], tmp_path / f"case{ic[0]}"), enumerate(todo)))
    failures = [f for f in found if f]
    assert not failures, f"{len(failures)} of {len(todo)} cases:\n" + "\n".join(failures)


def test_every_command_refuses_careless_input_in_one_line_creating_nothing(tmp_path: Path) -> None:
    sweep(tmp_path, cases())


@pytest.mark.postgres
def test_every_command_names_a_missing_postgres_database(tmp_path: Path) -> None:
    postgres_or_skip()
    sweep(tmp_path, warehouse_cases(NO_SUCH_DB, "no database 'no_such_db_19'"))
