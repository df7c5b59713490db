"""The semantic layer on the session demo (DuckDB): the generated YAML, every metric against the
figures, `unionwh metrics` as an analyst runs it, and its errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.cli import main
from flows.metrics import semantic
from flows.metrics.engine import manifest_path
from tests.metrics.equality import assert_metrics_equal_figures, figures
from tests.support import Demo2021, Env


def _engine(demo: Demo2021) -> sa.Engine:
    return sa.create_engine(
        f"duckdb:///{demo.home / 'warehouse.duckdb'}",
        connect_args={"read_only": True},
        poolclass=sa.pool.NullPool,
    )


def test_the_semantic_yaml_is_the_one_generated_from_figures_yaml() -> None:
    """figures.yaml is the one statement of each figure: the committed YAML is what it generates."""
    assert semantic.SEMANTIC_YML.read_text(encoding="utf-8") == semantic.render()
    assert semantic.main(["--check"]) == 0
    doc = semantic.document()
    ids = [f["id"] for f in semantic.figures_yaml()["figures"]]
    assert [m["config"]["meta"]["figure_id"] for m in doc["metrics"]] == ids
    assert [m["name"] for m in doc["metrics"]] == [i.replace(".", "_") for i in ids]


def test_a_figure_without_a_known_measure_is_named() -> None:
    figure = {"id": "x.y", "zh": "甲", "en": "x", "unit": "件", "definition": "d", "measure": "avg"}
    with pytest.raises(ValueError, match=r"figure x\.y has measure 'avg'"):
        semantic._metric(figure)


def test_every_metric_at_year_grain_equals_the_figures_of_every_year(demo_2021: Demo2021) -> None:
    manifest = manifest_path(demo_2021.home / "runs")
    assert manifest.parent.parent.name == demo_2021.first.run_id
    engine = _engine(demo_2021)
    try:
        compared = assert_metrics_equal_figures(engine, manifest, duckdb=True)
    finally:
        engine.dispose()
    assert compared >= 42 * 11  # 42 figures, 2011-2021
    # the run's dbt docs page lists the semantic model and the metrics
    docs = (manifest.parent / "static_index.html").read_text(encoding="utf-8")
    assert "semantic_model.unionwh.figure_rows" in docs and "metric.unionwh.rights_consultations" in docs


def test_an_analyst_queries_two_metrics_by_month_and_zone(
    demo_2021: Demo2021, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's query: by month and zone, the months and zones of a year add up to its figure
    (a count and a sum: a distinct count does not add up over months, by its definition)."""
    names = "rights_consultations,welfare_pandemic_supply_value_yuan"
    with Env(**demo_2021.env):
        code = main(
            [
                "metrics",
                "query",
                "--metrics",
                names,
                "--group-by",
                "metric_time__month,enterprise__zone",
                "--format",
                "json",
            ]
        )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    zones = {r["enterprise__zone"] for r in rows}
    assert zones - {None} <= {"海港", "空港", "临港"} and len(zones - {None}) >= 2, zones
    engine = _engine(demo_2021)
    try:
        want = figures(engine)
    finally:
        engine.dispose()
    for name, fid in (
        ("rights_consultations", "rights.consultations"),
        ("welfare_pandemic_supply_value_yuan", "welfare.pandemic_supply_value_yuan"),
    ):
        for year in (2020, 2021):
            total = sum(Decimal(str(r[name])) for r in rows if r["metric_time__month"].startswith(str(year)))
            assert total == want[(fid, year)], (name, year)
    assert want[("rights.consultations", 2021)] == 1131


def test_metrics_list_names_every_figure(demo_2021: Demo2021, capsys: pytest.CaptureFixture[str]) -> None:
    with Env(**demo_2021.env):
        assert main(["metrics", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 42
    consultations = next(m for m in listed if m["figure_id"] == "rights.consultations")
    assert consultations["name"] == "rights_consultations" and consultations["unit"] == "件"
    assert {
        "metric_time__month",
        "enterprise__zone",
        "enterprise__industry_section",
        "trade_union__union_form",
    } <= set(consultations["group_by"])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--metrics", "rights_consultatons"], "does not exactly match any known metrics"),
        (
            ["--metrics", "rights_consultations", "--group-by", "enterprise__zon"],
            "does not match any of the available",
        ),
        (
            ["--metrics", "rights_consultations", "--where", "{{ Dimension('enterprise__zone') }} = 海港"],
            "the warehouse refused the query",
        ),
        (["--metrics", ","], "--metrics names no metric"),
        (["--metrics", "rights_consultations", "--limit", "0"], "--limit must be 1 or more"),
    ],
)
def test_a_bad_query_is_one_line(
    demo_2021: Demo2021, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    with Env(**demo_2021.env):
        code = main(["metrics", "query", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert says in err and "\n" not in err and "Traceback" not in err


def test_without_a_run_there_is_no_manifest_and_the_error_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "UNIONWH_HOME": str(tmp_path),
        "UNIONWH_OUTPUT": str(tmp_path / "runs"),
        "UNIONWH_WAREHOUSE": f"duckdb:///{tmp_path / 'wh.duckdb'}",
    }
    with Env(**env):
        code = main(["metrics", "list"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "run `unionwh run` first" in err and "\n" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "wh.duckdb").exists()


def test_the_manifest_is_the_newest_runs_not_an_as_known_on_build(tmp_path: Path) -> None:
    for folder in ("20261128T225616-0ae738", "20261129T010203-1a2b3c", "asof_20211231", "notes"):
        (tmp_path / folder / "dbt").mkdir(parents=True)
        (tmp_path / folder / "dbt" / "semantic_manifest.json").write_text("{}", encoding="utf-8")
    assert manifest_path(tmp_path).parent.parent.name == "20261129T010203-1a2b3c"
    assert manifest_path(tmp_path, "20261128T225616-0ae738").parent.parent.name == "20261128T225616-0ae738"


def test_a_broken_manifest_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "runs" / "20261128T225616-0ae738" / "dbt" / "semantic_manifest.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"semantic_models": [', encoding="utf-8")
    env = {"UNIONWH_HOME": str(tmp_path), "UNIONWH_OUTPUT": str(tmp_path / "runs")}
    with Env(**env):
        code = main(["metrics", "list"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot read the semantic manifest" in err and "\n" not in err
