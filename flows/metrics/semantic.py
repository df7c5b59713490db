"""The semantic layer's YAML, generated from ``config/figures.yaml``: one MetricFlow metric per
figure, over one semantic model of ``marts.fig_figure_rows`` (every source row behind every
figure), joined to the enterprises and unions the rows concern.

    python -m flows.metrics.semantic --write    # after editing config/figures.yaml
    python -m flows.metrics.semantic --check    # exit 1 when the committed file differs

``figures.yaml`` is the one statement of each figure (id, names, unit, definition, how its rows
aggregate: ``measure``); the file written here (``dbt_project/models/marts/figures/
_figures__semantic.yml``) is never edited by hand, and tests/metrics/test_semantic.py fails when
the two drift. A metric's name is the figure id with ``.`` written ``_`` (MetricFlow names are
snake_case): ``rights.consultations`` is the metric ``rights_consultations``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from flows.report.catalogue import figures_yaml

ROOT = Path(__file__).resolve().parents[2]
SEMANTIC_YML = ROOT / "dbt_project" / "models" / "marts" / "figures" / "_figures__semantic.yml"

HEADER = (
    "# Generated from config/figures.yaml by `python -m flows.metrics.semantic --write`; do not edit.\n"
    "# One MetricFlow metric per figure (the id with '.' written '_'), over marts.fig_figure_rows.\n"
)

MEASURES = {"rows": "figure_rows", "distinct": "figure_keys", "sum": "figure_amount"}
"""A figure's ``measure`` in figures.yaml -> the semantic model's measure that aggregates it like
int_figures does: count its rows, count the distinct count_key values, sum amount."""


def metric_name(figure_id: str) -> str:
    """``rights.consultations`` -> ``rights_consultations``."""
    return figure_id.replace(".", "_")


def _figure_rows_model() -> dict[str, Any]:
    return {
        "name": "figure_rows",
        "description": (
            "Every source row behind every figure and year (marts.fig_figure_rows). A row counts on "
            "counted_on: the date of its event (received, posted, held, visited...), or the last day of "
            "the report year for a figure that is a status at year end or a 年度 (a stock figure grouped "
            "by month is all in December)."
        ),
        "model": "ref('fig_figure_rows')",
        "defaults": {"agg_time_dimension": "counted_on"},
        "entities": [
            {"name": "figure_row", "type": "primary", "expr": "figure_row_id"},
            {
                "name": "enterprise",
                "type": "foreign",
                "expr": "uscc",
                "description": "the enterprise the row concerns, directly or through its union",
            },
            {
                "name": "trade_union",
                "type": "foreign",
                "expr": "union_code",
                "description": "the union the row concerns",
            },
            {
                "name": "member",
                "type": "foreign",
                "expr": "member_id",
                "description": "a member card's member",
            },
        ],
        "dimensions": [
            {"name": "counted_on", "type": "time", "type_params": {"time_granularity": "day"}},
            {
                "name": "figure_id",
                "type": "categorical",
                "description": "the figure's id in config/figures.yaml",
            },
            {"name": "report_year", "type": "categorical", "description": "the year the row counts for"},
            {
                "name": "source_model",
                "type": "categorical",
                "description": "the dbt model the row comes from",
            },
            {
                "name": "category",
                "type": "categorical",
                "description": (
                    "the source's own classification: case type, welfare program or recipient category, "
                    "finance project, union form, training mode, competition or honour level, activity "
                    "category, card action"
                ),
            },
        ],
        "measures": [
            {
                "name": "figure_rows",
                "description": "source rows (a figure whose measure is rows)",
                "agg": "count",
                "expr": "figure_row_id",
            },
            {
                "name": "figure_keys",
                "description": "distinct count_key values (a figure whose measure is distinct)",
                "agg": "count_distinct",
                "expr": "count_key",
            },
            {
                "name": "figure_amount",
                "description": "the sum of amount (a figure whose measure is sum)",
                "agg": "sum",
                "expr": "amount",
            },
        ],
    }


def _dimension_model(
    name: str, mart: str, what: str, entity: str, key: str, dims: dict[str, str]
) -> dict[str, Any]:
    """A semantic model of a dimension mart: its primary entity and the columns to slice by."""
    return {
        "name": name,
        "description": f"{what}, latest version (marts.{mart}).",
        "model": f"ref('{mart}')",
        "entities": [{"name": entity, "type": "primary", "expr": key}],
        "dimensions": [{"name": d, "type": "categorical", "description": text} for d, text in dims.items()],
    }


def _dimension_models() -> list[dict[str, Any]]:
    return [
        _dimension_model(
            "enterprises", "dim_enterprise", "Registered enterprises", "enterprise", "uscc",
            {"zone": "片区: 海港, 空港 or 临港", "industry_section": "行业门类 (GB/T 4754 section)"},
        ),
        _dimension_model(
            "trade_unions", "dim_union", "Grassroots unions", "trade_union", "union_code",
            {"union_form": "建会形式", "has_party_org": "党组织: whether it has one", "status": "the union's status"},
        ),
        _dimension_model(
            "members", "dim_member", "Members of the member platform, pseudonymised", "member", "member_id",
            {
                "employment_form": "用工形式 (code)",
                "is_migrant": "外来务工人员",
                "is_veteran": "退役军人",
                "is_deleted": "deleted on the platform since",
            },
        ),
    ]  # fmt: skip


def _metric(figure: dict[str, Any]) -> dict[str, Any]:
    fid = figure["id"]
    measure = figure.get("measure")
    if measure not in MEASURES:
        raise ValueError(
            f"config/figures.yaml: figure {fid} has measure {measure!r}; one of {sorted(MEASURES)}"
        )
    return {
        "name": metric_name(fid),
        "label": f"{figure['zh']} / {figure['en']}",
        "description": f"{fid} ({figure['unit']}): {figure['definition']}",
        "type": "simple",
        "type_params": {"measure": {"name": MEASURES[measure], "fill_nulls_with": 0}},
        "filter": f"{{{{ Dimension('figure_row__figure_id') }}}} = '{fid}'",
        "config": {
            "meta": {"figure_id": fid, "unit": figure["unit"], "zh": figure["zh"], "en": figure["en"]}
        },
    }


def document() -> dict[str, Any]:
    """The YAML document, from config/figures.yaml."""
    figures = figures_yaml()["figures"]
    names = [metric_name(f["id"]) for f in figures]
    if len(set(names)) != len(names):
        raise ValueError("config/figures.yaml: two figure ids give the same metric name")
    return {
        "version": 2,
        "semantic_models": [_figure_rows_model(), *_dimension_models()],
        "metrics": [_metric(f) for f in figures],
    }


def render() -> str:
    return HEADER + yaml.safe_dump(document(), allow_unicode=True, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {SEMANTIC_YML.relative_to(ROOT)}")
    group.add_argument(
        "--check", action="store_true", help="exit 1 when the committed file is not the generated one"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        SEMANTIC_YML.write_text(text, encoding="utf-8")
        print(f"wrote {SEMANTIC_YML.relative_to(ROOT)}")
        return 0
    current = SEMANTIC_YML.read_text(encoding="utf-8") if SEMANTIC_YML.is_file() else ""
    if current != text:
        print(
            f"{SEMANTIC_YML.relative_to(ROOT)} differs from config/figures.yaml: "
            "run python -m flows.metrics.semantic --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
