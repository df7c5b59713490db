"""Several dbt commands in one process, so dbt starts (imports, adapter, project) once:

    python -m flows.warehouse.dbt_child TARGET_PATH ARGS... [--and ARGS...]...

Each ``ARGS`` is one dbt command line without ``dbt`` (e.g. ``build --project-dir …``), run
by one ``dbtRunner`` invocation, in order, stopping at the first that does not succeed. The
first command's ``run_results.json`` in ``TARGET_PATH`` is the one left there (a later
``docs generate`` writes its own). Exit status: 0 all succeeded; as dbt's when the first
command did not (1 failures, 2 an error); 3 when the first succeeded and a later one did not.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dbt.cli.main import dbtRunner


def split(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--and":
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def main(argv: list[str]) -> int:
    target, commands = Path(argv[0]), split(argv[1:])
    runner = dbtRunner()
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
