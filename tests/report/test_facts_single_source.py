"""One statement per fact (issue 21): which finance project pays each money figure and the fund
audit's rules are stated in config/figures.yaml, which dbt models list a figure's rows in those
models' dbt ``meta``; the code reads them from there (the trace from dbt's manifest.json) and these
tests fail when the SQL, the dbt YAML or the docs drift from them.

The unit tests read files only; the demo tests check the statements against what the 2021 demo
run's SQL yields (the session's demo warehouse and its run's manifest)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from flows.report import audit, catalogue
from flows.report.trace import FIGURES_MART, MONEY_PROJECTS, figure_models
from tests.support import Demo2021

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "dbt_project" / "models"
FIGURE_ROWS_YML = MODELS / "intermediate" / "figures" / "_figures__models.yml"
FINANCE_MARTS = MODELS / "marts" / "finance"


def _model(path: Path, name: str) -> dict:
    return next(m for m in yaml.safe_load(path.read_text(encoding="utf-8"))["models"] if m["name"] == name)


def figure_rows_meta() -> dict[str, list[str]]:
    """int_figure_rows_<domain> -> its meta.figures, as the dbt YAML states them."""
    models = yaml.safe_load(FIGURE_ROWS_YML.read_text(encoding="utf-8"))["models"]
    return {
        m["name"]: m.get("config", {}).get("meta", {}).get("figures", [])
        for m in models
        if m["name"].startswith("int_figure_rows_")
    }


def rules() -> list[str]:
    return [r.rule for r in catalogue.exception_rules()]


# ----------------------------------------------------------------------------- money projects
@pytest.mark.unit
def test_every_money_figure_states_the_project_that_pays_it() -> None:
    figures = catalogue.figures_yaml()["figures"]
    assert set(catalogue.money_projects()) == {f["id"] for f in figures if f["unit"] == "元"}
    assert MONEY_PROJECTS == catalogue.money_projects()  # the trace reads them, states none of its own
    assert None in MONEY_PROJECTS.values()  # money recovered for workers: no fund of ours pays it


# ----------------------------------------------------------------------------- audit rules
@pytest.mark.unit
def test_the_workbook_reads_the_rules_from_figures_yaml() -> None:
    assert [r for r, _, _ in audit.EXCEPTION_RULES] == rules()
    assert list(audit.RULE_ZH_DESCRIPTION) == rules()
    assert set(audit.EXCEPTION_TABLES) == set(rules()), "every rule needs its sheet's columns"


@pytest.mark.unit
def test_the_audit_marts_yaml_accepts_exactly_the_rules() -> None:
    column = next(
        c
        for c in _model(FINANCE_MARTS / "_finance__models.yml", "audit_exceptions")["columns"]
        if c["name"] == "rule"
    )
    accepted = next(t["accepted_values"] for t in column["data_tests"] if isinstance(t, dict))
    assert accepted["arguments"]["values"] == rules()


@pytest.mark.unit
def test_the_audit_sql_yields_exactly_the_rules() -> None:
    """Each rule of figures.yaml has its CTE in audit_exceptions.sql, and no other rule does; the
    reconciliation reads the postings of exactly the projects figures.yaml pairs with a ledger."""
    sql = (FINANCE_MARTS / "audit_exceptions.sql").read_text(encoding="utf-8")
    assert re.findall(r"'([a-z_]+)' as rule\b", sql) == rules()
    recon = (FINANCE_MARTS / "audit_reconciliation.sql").read_text(encoding="utf-8")
    listed = re.search(r"project_code in \(([^)]*)\)", recon)
    assert listed is not None
    assert re.findall(r"'([A-Z]+)'", listed.group(1)) == [p for _, p in catalogue.reconciliation()]


@pytest.mark.unit
def test_the_fund_audit_page_shows_the_rules_of_figures_yaml() -> None:
    assert catalogue.documented_rules() == catalogue.rules_doc_block(), (
        "docs/fund-audit.md's rule table differs from config/figures.yaml: "
        "run python -m flows.report.catalogue --write"
    )


# ----------------------------------------------------------------------------- lineage
@pytest.mark.unit
def test_each_figure_is_yielded_by_exactly_one_row_model() -> None:
    meta = figure_rows_meta()
    stated = [fid for figures in meta.values() for fid in figures]
    assert sorted(stated) == sorted(f["id"] for f in catalogue.figures_yaml()["figures"])
    union = (MODELS / "intermediate" / "figures" / "int_figure_rows.sql").read_text(encoding="utf-8")
    domains = re.search(r"\{% for domain in \[([^\]]*)\]", union)
    assert domains is not None
    assert {f"int_figure_rows_{d}" for d in re.findall(r"'([a-z]+)'", domains.group(1))} == set(meta)


def _node(name: str, deps: list[str], figures: list[str] | None = None) -> dict:
    return {
        "resource_type": "model",
        "name": name,
        "depends_on": {"nodes": deps},
        "config": {"meta": {"figures": figures} if figures else {}},
    }


@pytest.mark.unit
def test_figure_models_follow_the_manifest() -> None:
    manifest = {
        "nodes": {
            "model.p.stg_a": _node("stg_a", ["source.p.raw.a"]),
            "model.p.rows_a": _node("rows_a", ["model.p.stg_a"], ["a.one", "a.two"]),
            "model.p.rows_b": _node("rows_b", ["model.p.stg_a"], ["b.one"]),
            "model.p.rows_orphan": _node("rows_orphan", [], ["c.one"]),  # feeds no mart
            "model.p.all_rows": _node("all_rows", ["model.p.rows_a", "model.p.rows_b"]),
            "model.p.years": _node("years", ["model.p.stg_a"]),
            "model.p.fig": _node(FIGURES_MART, ["model.p.all_rows", "model.p.years"]),
        }
    }
    got = figure_models(manifest)
    assert got == {
        "a.one": ["rows_a", "all_rows", FIGURES_MART],
        "a.two": ["rows_a", "all_rows", FIGURES_MART],
        "b.one": ["rows_b", "all_rows", FIGURES_MART],
    }
    # the manifest's parent_map, when present, is what is read
    manifest["parent_map"] = {"model.p.fig": ["model.p.rows_b"], "model.p.rows_b": []}
    assert figure_models(manifest) == {"b.one": ["rows_b", FIGURES_MART]}
    assert figure_models(None) == {}


# ----------------------------------------------------------------------------- against the demo's SQL
@pytest.fixture(scope="module")
def demo(demo_2021: Demo2021) -> Iterator[tuple[sa.Engine, dict]]:
    engine = sa.create_engine(demo_2021.env["UNIONWH_WAREHOUSE"], connect_args={"read_only": True})
    manifests = sorted((demo_2021.home / "runs").glob("*/dbt/manifest.json"))
    assert manifests, "the demo run kept no dbt artifacts"
    yield engine, json.loads(manifests[-1].read_text(encoding="utf-8"))
    engine.dispose()


def test_row_models_yield_the_figures_their_meta_states(demo: tuple[sa.Engine, dict]) -> None:
    engine, _ = demo
    with engine.connect() as conn:
        for model, figures in figure_rows_meta().items():
            yielded = conn.execute(sa.text(f"SELECT DISTINCT figure_id FROM intermediate.{model}")).scalars()
            assert set(yielded) == set(figures), model


def test_the_trace_reads_each_figures_models_from_the_manifest(demo: tuple[sa.Engine, dict]) -> None:
    _, manifest = demo
    lineage = figure_models(manifest)
    for model, figures in figure_rows_meta().items():
        for fid in figures:
            assert lineage[fid] == [model, "int_figure_rows", "int_figures", FIGURES_MART]


def test_the_paying_project_carries_each_money_figure(demo: tuple[sa.Engine, dict]) -> None:
    """A money figure's 2021 value is its project's net postings (the demo's ledgers reconcile); a
    figure no fund of ours pays reads no posting."""
    engine, _ = demo
    with engine.connect() as conn:
        for fid, project in MONEY_PROJECTS.items():
            value, models_read = conn.execute(
                sa.text(
                    "SELECT value, models_read FROM marts.fig_annual_figures "
                    "WHERE figure_id = :f AND report_year = 2021"
                ),
                {"f": fid},
            ).one()
            if project is None:
                assert "int_finance_postings" not in models_read, fid
                continue
            posted = conn.execute(
                sa.text(
                    "SELECT sum(net_yuan) FROM intermediate.int_finance_postings "
                    "WHERE project_code = :p AND report_year = 2021"
                ),
                {"p": project},
            ).scalar_one()
            assert Decimal(str(value)) == Decimal(str(posted)) != 0, (fid, project)


def test_the_welfare_ledgers_map_to_the_reconciled_projects(demo: tuple[sa.Engine, dict]) -> None:
    engine, _ = demo
    with engine.connect() as conn:
        ledgers = set(
            conn.execute(
                sa.text("SELECT DISTINCT project_code FROM intermediate.int_welfare_ledger_lines")
            ).scalars()
        )
    assert ledgers == {p for _, p in catalogue.reconciliation()}
