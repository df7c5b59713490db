"""A dbt started ahead of its commands (flows/warehouse/dbt.py ``start_parse``): it parses the
project while the run loads, then runs the build handed to it on that manifest, so the build
neither starts dbt nor parses again (issue 22). Real dbt processes on the real project."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from flows.settings import load_settings
from flows.warehouse import dbt

MODEL = "stg_events__activities"
PARSING = "Unable to do partial parsing"  # (what a dbt that parses the project from scratch says)


def _settings(folder: Path, name: str = "warehouse.duckdb"):
    return load_settings(warehouse=f"duckdb:///{folder / name}")


def test_commands_run_in_the_process_that_parsed(tmp_path: Path) -> None:
    settings, artifacts = _settings(tmp_path), tmp_path / "dbt"
    warm = dbt.start_parse(settings, artifacts)
    result = dbt.run_dbt(settings, ["ls", "--resource-type", "model", "--select", MODEL], artifacts)
    assert result.success, result.failures
    assert warm.returncode == 0  # it ran the command and ended
    assert PARSING in (artifacts / "dbt-parse.log").read_text(encoding="utf-8")
    output = (artifacts / "dbt-output.log").read_text(encoding="utf-8")
    assert f"unionwh.staging.events.{MODEL}" in output
    assert PARSING not in output and "partial pars" not in output.lower()  # no second parse
    assert not dbt._WARM
    assert json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))["nodes"]


def test_a_cold_command_parses_for_itself(tmp_path: Path) -> None:
    """The contrast: without a warm dbt, the same command parses (what the warm one saves)."""
    settings, artifacts = _settings(tmp_path), tmp_path / "dbt"
    result = dbt.run_dbt(settings, ["ls", "--resource-type", "model", "--select", MODEL], artifacts)
    assert result.success, result.failures
    assert PARSING in (artifacts / "dbt-output.log").read_text(encoding="utf-8")


def test_a_warm_dbt_for_another_target_is_not_used(tmp_path: Path) -> None:
    artifacts = tmp_path / "dbt"
    warm = dbt.start_parse(_settings(tmp_path, "one.duckdb"), artifacts)
    result = dbt.run_dbt(
        _settings(tmp_path, "other.duckdb"), ["ls", "--resource-type", "model", "--select", MODEL], artifacts
    )
    assert result.success, result.failures
    assert warm.returncode is not None and warm.returncode != 0  # stopped, not handed the command
    assert PARSING in (artifacts / "dbt-output.log").read_text(encoding="utf-8")  # parsed for itself
    assert not dbt._WARM


def test_a_failed_build_through_the_warm_dbt_is_reported(tmp_path: Path) -> None:
    """An empty warehouse: the staging model's source table is missing; the failure comes back
    as from a dbt started for it, with its node, and no later command runs."""
    settings, artifacts = _settings(tmp_path), tmp_path / "dbt"
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    dbt.start_parse(settings, artifacts)
    result = dbt.run_dbt(settings, ["build", "--select", MODEL], artifacts, then=[dbt.DOCS])
    assert not result.success
    assert any(f"model.unionwh.{MODEL}: error" in f for f in result.failures), result.failures
    assert not (artifacts / "static_index.html").exists()  # (the docs come only after a build that succeeded)


def test_discarded_warm_dbt_ends(tmp_path: Path) -> None:
    warm = dbt.start_parse(_settings(tmp_path), tmp_path / "dbt")
    dbt.discard_parse(warm)
    assert warm.returncode is not None
    assert not dbt._WARM
    dbt.discard_parse(warm)  # (twice, or after it ran: nothing)
    dbt.discard_parse(None)


def test_dbt_log_holds_what_the_file_log_level_lets_through(tmp_path: Path) -> None:
    """``dbt_log_file_level``: ``info`` (the default) keeps dbt.log to what the console says; ``debug``
    adds every statement dbt sends; ``none`` writes no dbt.log."""
    for level in ("info", "debug", "none"):
        folder = tmp_path / level
        settings = load_settings(
            warehouse=f"duckdb:///{folder / 'warehouse.duckdb'}", dbt_log_file_level=level
        )
        assert settings.dbt_log_file_level == level
        result = dbt.run_dbt(settings, ["ls", "--resource-type", "model", "--select", MODEL], folder / "dbt")
        assert result.success, result.failures
        log = folder / "dbt" / "dbt.log"
        if level == "none":
            assert not log.exists()
            continue
        text = log.read_text(encoding="utf-8")
        assert "Running with dbt=" in text
        assert ("[debug]" in text) == (level == "debug")


def test_a_later_run_parses_on_the_earlier_runs_partial_parse(tmp_path: Path) -> None:
    """Each run has its own dbt folder; the newest earlier run's partial_parse.msgpack is copied
    into it, so dbt parses only what changed (nothing here) instead of the whole project."""
    settings = _settings(tmp_path)
    command = ["ls", "--resource-type", "model", "--select", MODEL]
    first = tmp_path / "runs" / "run-1" / "dbt"
    dbt.start_parse(settings, first)
    assert dbt.run_dbt(settings, command, first).success
    assert PARSING in (first / "dbt-parse.log").read_text(encoding="utf-8")
    second = tmp_path / "runs" / "run-2" / "dbt"
    dbt.start_parse(settings, second)
    result = dbt.run_dbt(settings, command, second)
    assert result.success, result.failures
    parse_log = (second / "dbt-parse.log").read_text(encoding="utf-8")
    assert PARSING not in parse_log, parse_log
    assert f"unionwh.staging.events.{MODEL}" in (second / "dbt-output.log").read_text(encoding="utf-8")
    # another target's saved parse is not good for this one: dbt parses everything again
    third = tmp_path / "runs" / "run-3" / "dbt"
    other = _settings(tmp_path, "other.duckdb")
    dbt.start_parse(other, third)
    assert dbt.run_dbt(other, command, third).success
    assert PARSING in (third / "dbt-parse.log").read_text(encoding="utf-8")
