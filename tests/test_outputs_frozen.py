"""The figures, quarantine, ledger and raw rows of the demo, frozen: a change of speed changes none of them.

Issue 22 makes ingestion columnar (readers, validation, load). What a run leaves must stay what it was:
``tests/frozen/outputs-*.json`` holds, for the 2021 demo (seed 2021) and for the demo at twice its size,
every figure of every year (``marts.fig_annual_figures``: id, year, value, source rows), every quarantine
and ledger row, and a SHA-256 of each raw table's rows (with their count). Left out: what differs from
run to run by design (run and load ids, load and quarantine times, a members pull's page digests, its
row numbers and its day, :data:`tests.warehouse.pipeline_support.PER_RUN` / ``PER_PAGE``); pseudonyms
are checked against the warehouse's key, then written as ``=hmac`` (each run of the test has its own key).

When a change of these outputs is intended (a contract change, a bug fixed), regenerate the files and
say why in the commit::

    .venv/bin/python -m tests.test_outputs_frozen          # writes tests/frozen/outputs-*.json
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flows import schema
from flows.warehouse import pii
from flows.warehouse.ddl import personal_columns
from tests.support import ROOT, Demo2021
from tests.warehouse.pipeline_support import PER_PAGE, PER_RUN, _columns, row_differences, warehouse_rows

FROZEN = ROOT / "tests" / "frozen"
DEMO = FROZEN / "outputs-demo-2021.json"
SCALED = FROZEN / "outputs-demo-2021-x2.json"
KEY = "frozen-outputs-test-key-0123456789"
"""The scaled run's key (the session demo has a key of its own, read from its ``pii.key``)."""
PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b")

pytestmark = pytest.mark.e2e


def _raw_digests(engine: sa.Engine, key: bytes) -> dict[str, dict[str, Any]]:
    """Per raw table and file register: row count and SHA-256 of its sorted rows (the columns a run
    always writes alike; a pseudonym is ``=hmac`` when it is the key's HMAC of its value)."""
    out: dict[str, dict[str, Any]] = {}
    tables = [(t.raw_table, t) for t in schema.all_tables()]
    tables += [(s.register_table, None) for s in schema.sources() if s.register is not None]
    with engine.connect() as conn:
        for name, t in tables:
            relation = f"raw.{name}"
            paged = t is not None and schema.source(t.source).delivery != schema.FILES
            cols = [
                c
                for c in _columns(conn, relation)
                if c not in PER_RUN and not (paged and c.lstrip("_") in PER_PAGE)
            ]
            personal = set(personal_columns(t)) if t is not None else set()
            rows = []
            for row in conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {relation}")).mappings():
                values = []
                for c in cols:
                    v = row[c]
                    base = c.removesuffix(pii.SUFFIX)
                    if c.endswith(pii.SUFFIX) and base in personal:
                        want = None if row[base] is None else pii.pseudonym(key, str(row[base]))
                        v = "=hmac" if v == want else v
                    values.append(v)
                rows.append(repr(tuple(values)))
            rows.sort()
            out[relation] = {
                "rows": len(rows),
                "sha256": hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest(),
            }
    return out


def _quarantine(engine: sa.Engine) -> list[str]:
    """Every quarantine row (as :func:`warehouse_rows` compares them between runs), a pseudonym in
    its key (attendance is keyed by ID card and name) as ``=hmac``."""
    with engine.connect() as conn:
        cols = [c for c in _columns(conn, "ops.quarantine") if c not in PER_RUN]
        rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM ops.quarantine")).mappings().all()
    paged = {s.name for s in schema.sources() if s.delivery != schema.FILES}
    out = []
    for row in rows:
        values = [
            None
            if row["source"] in paged and c in PER_PAGE
            else PSEUDONYM.sub("=hmac", row[c])
            if c == "row_key" and row[c] is not None
            else row[c]
            for c in cols
        ]
        out.append(repr(tuple(values)))
    return sorted(out)


def outputs(engine: sa.Engine, key: bytes) -> dict[str, Any]:
    """What a run over the demo leaves that a faster pipeline must leave alike."""
    rows = warehouse_rows(engine)
    with engine.connect() as conn:
        figures = [
            f"{r[0]}|{r[1]}|{r[2]}|{r[3]}"
            for r in conn.execute(
                sa.text(
                    "SELECT figure_id, report_year, value, source_rows FROM marts.fig_annual_figures "
                    "ORDER BY report_year, figure_id"
                )
            )
        ]
    return {
        "figures": figures,
        "ops.quarantine": _quarantine(engine),
        "ops.load_ledger": sorted(rows["ops.load_ledger"].elements()),
        "raw": _raw_digests(engine, key),
    }


def differences(frozen: dict[str, Any], got: dict[str, Any]) -> dict[str, str]:
    """What differs, per part, in a line a person can act on."""
    out: dict[str, str] = {}
    for part in ("figures", "ops.quarantine", "ops.load_ledger"):
        out |= row_differences({part: Counter(frozen[part])}, {part: Counter(got[part])})
    for relation in sorted(set(frozen["raw"]) | set(got["raw"])):
        a, b = frozen["raw"].get(relation), got["raw"].get(relation)
        if a != b:
            out[relation] = f"frozen {a}, now {b}"
    return out


def demo_key(home: Path) -> bytes:
    return (home / pii.KEY_FILE).read_text(encoding="ascii").strip().encode("utf-8")


def test_the_demo_leaves_the_frozen_outputs(demo_2021: Demo2021) -> None:
    engine = sa.create_engine(demo_2021.env["UNIONWH_WAREHOUSE"])
    try:
        got = outputs(engine, demo_key(demo_2021.home))
    finally:
        engine.dispose()
    frozen = json.loads(DEMO.read_text(encoding="utf-8"))
    assert len(got["figures"]) == len(frozen["figures"]) > 400
    assert got["raw"]["raw.welfare__condolence"]["rows"] > 10_000
    assert differences(frozen, got) == {}


def run_demo(home: Path, scale: int) -> sa.Engine:
    """The demo (``scale`` copies of it) through the plain pipeline core (no Prefect: the core is
    what the flow runs, tests/pipeline/test_core.py), on a fresh DuckDB warehouse, with :data:`KEY`.
    The scaled zone's copies come from worker processes (flows/demo/synth.py); the frozen file
    sums were written when they came one after the other, and each raw row carries its file's
    SHA-256: the scaled test also proves the landing files are the same byte for byte."""
    from flows.demo.synth import generate  # deferred: the demo generator is only for this test's data
    from flows.pipeline import run  # deferred: a whole run, only in the test that needs one
    from flows.settings import load_settings  # deferred: with the run

    generate(home / "landing", year=2021, seed=2021, scale=scale)
    settings = load_settings(
        warehouse=f"duckdb:///{home / 'wh.duckdb'}",
        landing=home / "landing",
        output=home / "runs",
        published=home / "published",
        pii_key=KEY,
        report_year=2021,
    )
    summary = run.run(settings)
    assert summary.status == "succeeded", summary.errors
    return sa.create_engine(f"duckdb:///{home / 'wh.duckdb'}")


def test_the_demo_at_twice_its_size_leaves_the_frozen_outputs(tmp_path: Path) -> None:
    engine = run_demo(tmp_path, 2)
    try:
        got = outputs(engine, KEY.encode())
    finally:
        engine.dispose()
    frozen = json.loads(SCALED.read_text(encoding="utf-8"))
    assert got["raw"]["raw.welfare__condolence"]["rows"] > 20_000
    assert differences(frozen, got) == {}


def write_frozen(work: Path) -> None:
    """Regenerate both files (the demo through the plain core with a fixed key, as the scaled one)."""
    FROZEN.mkdir(exist_ok=True)
    for path, scale in ((DEMO, 1), (SCALED, 2)):
        engine = run_demo(work / f"x{scale}", scale)
        try:
            data = outputs(engine, KEY.encode())
        finally:
            engine.dispose()
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_frozen(Path(tmp))
    sys.exit(0)
