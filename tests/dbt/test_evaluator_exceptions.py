"""dbt-project-evaluator's exceptions live in the dbt YAML (docs/dbt-evaluator.md): each names a
rule the evaluator has (or a documented convention) and says why; the six models that had no
primary-key test have one."""

from __future__ import annotations

import importlib.util

import yaml

from tests.support import ROOT

PROJECT = ROOT / "dbt_project"
CONVENTIONS = {"naming_singular_plural"}  # flagged with the evaluator, not one of its tables


def _script():
    spec = importlib.util.spec_from_file_location(
        "evaluator_exceptions", PROJECT / "scripts" / "evaluator_exceptions.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entries() -> list[dict]:
    found = []
    for path in sorted((PROJECT / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found.extend(doc.get("models") or [])
        for src in doc.get("sources") or []:
            found.extend(src.get("tables") or [])
    return found


def test_every_exception_names_a_rule_and_a_reason() -> None:
    rules = set(_script().COLUMN) | CONVENTIONS
    seen = 0
    for entry in _entries():
        meta = (entry.get("config") or {}).get("meta") or entry.get("meta") or {}
        for rule, reason in (meta.get("evaluator_exceptions") or {}).items():
            seen += 1
            assert rule in rules, f"{entry['name']}: {rule}"
            assert len(" ".join(str(reason).split())) >= 60, f"{entry['name']}: {rule} needs its reason"
    assert seen >= 20


def test_the_six_models_without_a_key_test_have_one() -> None:
    keyed = {}
    for entry in _entries():
        for test in entry.get("data_tests") or []:
            if isinstance(test, dict) and "unique_combination" in test:
                keyed[entry["name"]] = test["unique_combination"]["arguments"]["columns"]
    for name in (
        "int_figure_rows",
        "int_source_keys_listed",
        "int_welfare_ledger_lines",
        "stg_welfare__condolences",
        "stg_welfare__health_checks",
        "stg_welfare__reliefs",
    ):
        assert keyed.get(name), name


def test_the_seed_rows_come_from_the_meta() -> None:
    manifest = {
        "metadata": {"project_name": "unionwh"},
        "sources": {},
        "nodes": {
            "model.unionwh.hist_unions": {
                "package_name": "unionwh",
                "resource_type": "model",
                "name": "hist_unions",
                "config": {
                    "meta": {
                        "evaluator_exceptions": {"fct_source_fanout": "why", "naming_singular_plural": "x"}
                    }
                },
            },
            "source.unionwh.ops.load_ledger": {
                "package_name": "unionwh",
                "resource_type": "source",
                "source_name": "ops",
                "name": "load_ledger",
                "config": {"meta": {"evaluator_exceptions": {"fct_unused_sources": "a\n b"}}},
            },
        },
    }
    manifest["sources"]["source.unionwh.ops.load_ledger"] = manifest["nodes"].pop(
        "source.unionwh.ops.load_ledger"
    )
    assert _script().rows(manifest) == [
        {
            "fct_name": "fct_source_fanout",
            "column_name": "model_children",
            "id_to_exclude": "%hist_unions%",
            "comment": "why",
        },
        {
            "fct_name": "fct_unused_sources",
            "column_name": "parent",
            "id_to_exclude": "ops.load_ledger",
            "comment": "a b",
        },
    ]
