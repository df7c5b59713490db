"""Several dbt commands in one process, so dbt starts (imports, adapter, project) once:

    python -m flows.warehouse.dbt_child TARGET_PATH ARGS... [--and ARGS...]...
    python -m flows.warehouse.dbt_child --warm TARGET_PATH PARSE_LOG PARSE_ARGS...

Each ``ARGS`` is one dbt command line without ``dbt`` (e.g. ``build --project-dir …``), run
by one ``dbtRunner`` invocation, in order, stopping at the first that does not succeed. The
first command's ``run_results.json`` in ``TARGET_PATH`` is the one left there (a later
``docs generate`` writes its own). Exit status: 0 all succeeded; as dbt's when the first
command did not (1 failures, 2 an error); 3 when the first succeeded and a later one did not.

``--warm``: a dbt started ahead of its commands (flows/warehouse/dbt.py ``start_parse``). It
runs ``dbt parse`` with ``PARSE_ARGS`` (its output into ``PARSE_LOG``; manifest.json and
partial_parse.msgpack into ``TARGET_PATH``), keeps the parsed manifest, then reads one line from
its standard input: a JSON list of command lines, run as above on that manifest (dbt neither
starts nor parses again), their output on its standard output. An empty line or the end of
the input ends it with 0 and nothing run. A parse that failed leaves the commands to parse
for themselves (and report the error).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner


def split(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--and":
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def run_commands(target: Path, commands: list[list[str]], manifest: Any = None) -> int:
    runner = dbtRunner(manifest=manifest)
    results, first = target / "run_results.json", target / "run_results.first.json"
    code = 0
    for i, command in enumerate(commands):
        outcome = runner.invoke(command)
        if i == 0 and results.exists():
            shutil.copyfile(results, first)
        if not outcome.success:
            code = 3 if i > 0 else 2 if outcome.exception is not None else 1
            break
    if first.exists():
        os.replace(first, results)
    return code


def warm(target: Path, parse_log: Path, parse_args: list[str]) -> int:
    output = os.dup(1)  # (the pipe the commands' output goes to)
    with parse_log.open("wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        parsed = dbtRunner().invoke(["parse", *parse_args])
        sys.stdout.flush()
        sys.stderr.flush()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    commands = json.loads(line)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    return run_commands(target, commands, parsed.result if parsed.success else None)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--warm":
        return warm(Path(argv[1]), Path(argv[2]), argv[3:])
    return run_commands(Path(argv[0]), split(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
