"""The pipeline core (flows/pipeline/) runs a whole load without Prefect, and the Prefect flow
(flows/nightly.py), which wraps the same functions as tasks, loads the same warehouse.

Both take the toy sources of tests/test_toy_source.py, registered in the contract by the test
alone: the flow's own discovery finds them (no list of sources in the flow), and an unknown
file of theirs is rejected with its reason like any source's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from flows import schema
from flows.pipeline import run
from flows.pipeline.run import Options
from flows.settings import QualitySettings, Settings, bound, load_settings
from flows.warehouse.ddl import OPS_SCHEMA, RAW_SCHEMA
from tests.support import ROOT
from tests.test_toy_source import BAD_ID, ID, KEY, TALLIES, VISITS, toy_warehouse, toys, write_csv

__all__ = ["toys"]  # (the fixture, used by name)


def toy_landing(landing: Path) -> None:
    header = ["日期", "物品", "姓名", "身份证号", "数量", "备注"]
    good = [
        ["2024-03-05", "米", "测试甲", ID, "10", ""],
        ["2024/3/6", "米", "测试乙", BAD_ID, "5", ""],
        ["2024-03-07", "油", "测试丙", "", "3", ""],
        ["2024-03-08", "米", "测试丁", "", "-1", ""],
    ]
    write_csv(landing, "depot", "D01_202403.csv", header, good)
    write_csv(landing, "depot", "D01_202413.csv", header, [])  # no name depot delivers: rejected
    write_csv(landing, "kiosk", "visits.csv", ["编号", "日期"], [["V1", "2024-03-01"], ["V3", "3月4日"]])


def toy_settings(home: Path) -> Settings:
    return load_settings(
        warehouse=f"duckdb:///{home / 'wh.duckdb'}",
        landing=home / "landing",
        output=home / "runs",
        published=home / "published",
        pii_key=KEY.decode(),
        report_year=2024,
        quality=QualitySettings(max_duplicate_key_share=0.6),
    )


def contents(path: Path) -> dict[str, list[tuple]]:
    """What a load leaves: the ledger (without run and load ids), the quarantine, the raw rows."""
    engine = sa.create_engine(f"duckdb:///{path}")
    data = [c.name for t in (TALLIES, VISITS) for c in t.all_columns]
    try:
        with engine.connect() as conn:

            def q(sql: str) -> list[tuple]:
                return sorted(tuple(map(str, r)) for r in conn.execute(sa.text(sql)).all())

            return {
                "ledger": q(
                    "SELECT source, table_name, file_name, rows_read, rows_loaded, rows_quarantined, status, "
                    f"error_rule FROM {OPS_SCHEMA}.load_ledger"
                ),
                "quarantine": q(
                    f"SELECT source, table_name, file_name, row_number, rules FROM {OPS_SCHEMA}.quarantine"
                ),
                "tallies": q(
                    "SELECT "
                    + ", ".join(c for c in data if c in {x.name for x in TALLIES.all_columns})
                    + f", id_card_pseudonym, name_pseudonym FROM {RAW_SCHEMA}.{TALLIES.raw_table}"
                ),
                "visits": q(f"SELECT visit_id, visited_on FROM {RAW_SCHEMA}.{VISITS.raw_table}"),
            }
    finally:
        engine.dispose()


EXPECTED_LEDGER = [
    ("depot", "*", "depot/2024-04-02/D01_202413.csv", "0", "0", "0", "rejected", "batch.unknown_file"),
    ("depot", "tallies", "depot/2024-04-02/D01_202403.csv", "4", "1", "3", "loaded", "None"),
    ("kiosk", "visits", "kiosk/2024-04-02/visits.csv", "2", "1", "1", "loaded", "None"),
]


def test_the_core_and_the_flow_load_the_toy_sources_alike(
    tmp_path: Path, toys: None, prefect_harness: None
) -> None:
    core, flow = tmp_path / "core", tmp_path / "flow"
    for home in (core, flow):
        toy_landing(home / "landing")
        toy_warehouse(home / "wh.duckdb").dispose()

    summary = run.run(toy_settings(core), Options(build=False))
    assert summary.status == "failed"  # a file was rejected: the run completed, its exit asks for attention
    assert summary.rows == (6, 2, 4)  # rows in = loaded + quarantined

    from flows.nightly import nightly_load  # (Prefect loads for this test only)

    with bound(toy_settings(flow)):
        by_flow = nightly_load(build=False)
    assert (by_flow.status, by_flow.rows) == (summary.status, summary.rows)

    loaded = contents(core / "wh.duckdb")
    assert loaded["ledger"] == EXPECTED_LEDGER
    assert len(loaded["tallies"]) == 1 and len(loaded["quarantine"]) == 4
    assert contents(flow / "wh.duckdb") == loaded


SCRIPT = """
import json, sys
from pathlib import Path
from flows import schema
from flows.pipeline import run
from tests import test_toy_source as toy
from tests.pipeline.test_core import toy_landing, toy_settings

home = Path(sys.argv[1])
schema.register(toy.DEPOT, (toy.TALLIES,))
schema.register(toy.KIOSK, (toy.VISITS,))
toy_landing(home / "landing")
toy.toy_warehouse(home / "wh.duckdb").dispose()
summary = run.run(toy_settings(home), run.Options(build=False))
prefect = sorted(m for m in sys.modules if m.split(".")[0] in ("prefect", "prefect_dask", "prefect_dbt"))
print(json.dumps({"status": summary.status, "rows": summary.rows, "prefect": prefect}))
"""


def test_the_core_runs_a_load_without_importing_prefect(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"status": "failed", "rows": [6, 2, 4], "prefect": []}
    assert contents(tmp_path / "wh.duckdb")["ledger"] == EXPECTED_LEDGER
    assert schema.find_source("depot") is None  # (registered in the child only)
