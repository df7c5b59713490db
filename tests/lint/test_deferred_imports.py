"""Function-level imports in flows/ only where a heavy import is deferred on purpose, with a comment
saying why (issue 21): on the import's line, or on the line just before its block of imports
(``# deferred: Prefect (~1 s), only … needs it``). Anything light belongs at the top of the module."""

from __future__ import annotations

import ast

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit


def uncommented_imports(source: str) -> list[tuple[int, str]]:
    """(line, text) of every import inside a function of ``source`` without a comment on its
    lines or above it within its block (the run of import statements it belongs to, blank lines
    allowed), the line just before the block included (a ``try:  # deferred: …`` too)."""
    lines = source.splitlines()
    found: dict[int, str] = {}
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            for body in (getattr(node, name, None) for name in ("body", "orelse", "finalbody", "handlers")):
                if not isinstance(body, list):
                    continue
                first: int | None = None  # the first line of the current block of imports
                for stmt in body:
                    if not isinstance(stmt, ast.Import | ast.ImportFrom):
                        first = None
                        continue
                    if first is None:
                        first = stmt.lineno
                    above = range(max(first - 2, 0), (stmt.end_lineno or stmt.lineno))
                    if not any("#" in lines[k] for k in above):
                        found[stmt.lineno] = lines[stmt.lineno - 1].strip()
    return sorted(found.items())


def test_the_check_finds_an_uncommented_function_level_import() -> None:
    source = (
        "import json\n"
        "def light():\n"
        "    import os\n"
        "    from sys import argv\n"
        "    return os, argv\n"
        "def heavy():\n"
        "    # deferred: Prefect (~1 s), only this needs it\n"
        "    import prefect\n"
        "    from prefect import flow\n"
        "    return prefect, flow\n"
        "def optional():\n"
        "    try:  # deferred: an optional extra\n"
        "        import pyspark\n"
        "    except ImportError:\n"
        "        return None\n"
        "    import duckdb  # deferred: duckdb, only here\n"
        "    return pyspark, duckdb\n"
        "def block():\n"
        "    # deferred: SQLAlchemy, only here\n"
        "    from zoneinfo import ZoneInfo\n"
        "\n"
        "    from flows import schema\n"
        "    x = 1\n"
        "    from flows import settings\n"
        "    return ZoneInfo, schema, settings, x\n"
    )
    assert uncommented_imports(source) == [
        (3, "import os"),
        (4, "from sys import argv"),
        (24, "from flows import settings"),
    ]


def test_every_function_level_import_in_flows_says_why_it_is_deferred() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in sorted((ROOT / "flows").rglob("*.py"))
        for line, text in uncommented_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, (
        "function-level imports without a comment: move a light one (stdlib, a module already imported) "
        "to the top of its module, or say why it is deferred (`# deferred: <what is heavy>, only <who> "
        "needs it`):\n" + "\n".join(offenders)
    )
