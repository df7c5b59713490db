"""The dbt project's governance, from a real ``dbt parse``: groups with owners, access levels,
exposures ending the lineage in what people read (each naming every mart its code reads), the
docs overview, and no deprecation warning (issue 23)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from flows.settings import load_settings
from flows.warehouse.dbt import run_dbt
from tests.support import ROOT

OUTPUTS = {
    # exposure -> the modules that read the marts for it
    "annual_summary": (
        "flows/report/summary.py",
        "flows/report/trace.py",
        "flows/report/audit.py",
        "flows/report/catalogue.py",
    ),
    "audit_workbook": ("flows/report/audit.py", "flows/report/catalogue.py"),
    "unionwh_figures": ("flows/warehouse/figures.py",),
}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("governance")
    settings = load_settings(warehouse=f"duckdb:///{folder / 'warehouse.duckdb'}")
    result = run_dbt(settings, ["parse"], folder / "dbt")
    assert result.success, result.failures
    manifest = json.loads((folder / "dbt" / "manifest.json").read_text(encoding="utf-8"))
    return manifest, (folder / "dbt" / "dbt-output.log").read_text(encoding="utf-8")


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_every_model_has_a_group_with_an_owner(parsed: tuple[dict[str, Any], str]) -> None:
    manifest, _ = parsed
    groups = {g["name"]: g for g in manifest["groups"].values()}
    assert set(groups) == {"data_engineering", "analytics", "fund_audit"}
    assert all(g["owner"].get("name") or g["owner"].get("email") for g in groups.values())
    models = _models(manifest)
    assert {m["group"] for m in models.values()} == set(groups)
    assert {n for n, m in models.items() if m["group"] == "fund_audit"} == {
        "audit_budget_vs_actual",
        "audit_reconciliation",
        "audit_exceptions",
    }
    assert all(m["group"] == "data_engineering" for n, m in models.items() if n.startswith(("stg_", "int_")))


def test_the_contracted_marts_are_public_and_nothing_else_is(parsed: tuple[dict[str, Any], str]) -> None:
    models = _models(parsed[0])
    contracted = {n for n, m in models.items() if m["contract"]["enforced"]}
    assert len(contracted) == 17 and "fig_annual_figures" in contracted
    assert {n for n, m in models.items() if m["access"] == "public"} == contracted
    assert {m["access"] for n, m in models.items() if n not in contracted} == {"protected"}


def test_exposures_name_every_mart_their_code_reads(parsed: tuple[dict[str, Any], str]) -> None:
    manifest, _ = parsed
    models = _models(manifest)
    marts = {n for n, m in models.items() if m["schema"].endswith("marts")}
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == set(OUTPUTS)
    for name, modules in OUTPUTS.items():
        exposure = exposures[name]
        assert exposure["owner"]["name"] and exposure["maturity"] == "high" and exposure["description"]
        depends = {node.rpartition(".")[2] for node in exposure["depends_on"]["nodes"]}
        read = {
            mart
            for module in modules
            for mart in marts
            if re.search(rf"\b{mart}\b", (ROOT / module).read_text(encoding="utf-8"))
        }
        assert read and read <= depends, f"{name} reads {sorted(read - depends)} without depending on them"
        assert depends <= read, f"{name} depends on {sorted(depends - read)}, which its code does not read"


def test_the_docs_open_on_the_overview_and_parse_warns_of_nothing(parsed: tuple[dict[str, Any], str]) -> None:
    manifest, output = parsed
    overview = manifest["docs"]["doc.unionwh.__overview__"]["block_contents"]
    assert "fig_annual_figures" in overview and "从哪里开始" in overview and "Where to start" in overview
    assert not re.search(r"deprecat|\[WARNING\]|\bwarn", output, re.IGNORECASE), output
