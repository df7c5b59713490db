"""Write dbt-project-evaluator's exceptions seed from the project's own YAML.

Every model or source that is excepted from an evaluator rule says so in its
``meta.evaluator_exceptions`` (rule table -> reason). The evaluator reads exceptions from a
seed named ``dbt_project_evaluator_exceptions`` (fct_name, column_name, id_to_exclude, comment);
this script builds that seed from a parsed manifest, for a run of the evaluator on a copy of
the project (docs/dbt-evaluator.md). The seed is never part of this project.

    python dbt_project/scripts/evaluator_exceptions.py COPY/target/manifest.json COPY/seeds/dbt_project_evaluator_exceptions.csv
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

# The column of each rule table that names the excepted model or source.
COLUMN = {
    "fct_marts_or_intermediate_dependent_on_source": "child",
    "fct_multiple_sources_joined": "child",
    "fct_root_models": "child",
    "fct_direct_join_to_source": "child",
    "fct_too_many_joins": "resource_name",
    "fct_missing_primary_key_tests": "resource_name",
    "fct_model_naming_conventions": "resource_name",
    "fct_sources_without_freshness": "resource_name",
    "fct_model_fanout": "parent",
    "fct_rejoining_of_upstream_concepts": "parent",
    "fct_unused_sources": "parent",
    "fct_source_fanout": "parent",
}


def rows(manifest: dict) -> list[dict[str, str]]:
    found = []
    nodes = list(manifest["nodes"].values()) + list(manifest["sources"].values())
    for node in nodes:
        if node.get("package_name") != manifest["metadata"].get("project_name", node.get("package_name")):
            continue
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        for rule, reason in sorted((meta.get("evaluator_exceptions") or {}).items()):
            if rule not in COLUMN:
                continue  # a convention the evaluator has no table for (documented only)
            is_source = node["resource_type"] == "source"
            name = f"{node['source_name']}.{node['name']}" if is_source else node["name"]
            column = COLUMN[rule]
            if rule == "fct_source_fanout" and not is_source:
                column, name = "model_children", f"%{name}%"
            found.append(
                {
                    "fct_name": rule,
                    "column_name": column,
                    "id_to_exclude": name,
                    "comment": " ".join(str(reason).split()),
                }
            )
    return sorted(found, key=lambda r: (r["fct_name"], r["id_to_exclude"]))


def main(argv: list[str]) -> int:
    manifest = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    out = rows(manifest)
    with Path(argv[2]).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["fct_name", "column_name", "id_to_exclude", "comment"])
        writer.writeheader()
        writer.writerows(out)
    print(f"{len(out)} exceptions -> {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
