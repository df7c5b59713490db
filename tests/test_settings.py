"""Settings: YAML file, environment and command line, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.errors import ConfigError
from flows.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in (
        "UNIONWH_LANDING",
        "UNIONWH_WAREHOUSE",
        "UNIONWH_MEMBERS_URL",
        "UNIONWH_REPORT_YEAR",
        "UNIONWH_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("UNIONWH_HOME", str(tmp_path))
    return tmp_path


def test_defaults_resolve_under_the_project_root(tmp_path: Path) -> None:
    s = load_settings()
    assert s.landing_dir == tmp_path / "data" / "landing"
    assert s.duckdb_path == tmp_path / "data" / "warehouse.duckdb"
    assert s.dbt_target() == (
        "duckdb",
        {
            "UNIONWH_DBT_DUCKDB_PATH": str(tmp_path / "data" / "warehouse.duckdb"),
            "UNIONWH_DBT_DUCKDB_MEMORY_LIMIT": "2GB",
        },
    )
    assert s.stream_rows == 200_000
    assert s.timezone == "Asia/Shanghai" and s.report_year == 2021
    assert s.members_database_url is None


def test_yaml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "unionwh.yaml").write_text(
        "landing: /srv/yaml\nreport_year: 2020\n", encoding="utf-8"
    )
    assert load_settings().landing_dir == Path("/srv/yaml")
    assert load_settings().report_year == 2020
    monkeypatch.setenv("UNIONWH_LANDING", "/srv/env")
    assert load_settings().landing_dir == Path("/srv/env")
    assert load_settings(landing=Path("/srv/cli")).landing_dir == Path("/srv/cli")
    assert load_settings(landing=None).landing_dir == Path("/srv/env")


def test_postgres_url_is_accepted_and_maps_to_the_dbt_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIONWH_WAREHOUSE", "postgresql+psycopg://loader:s3cret@127.0.0.1:5432/test")
    s = load_settings()
    target, env = s.dbt_target()
    assert target == "postgres"
    assert env["UNIONWH_DBT_PG_HOST"] == "127.0.0.1" and env["UNIONWH_DBT_PG_DBNAME"] == "test"
    assert "s3cret" not in s.safe_warehouse()


def test_members_url_defaults_to_the_demo_database(tmp_path: Path) -> None:
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "members.sqlite").write_bytes(b"")
    assert str(load_settings().members_database_url) == f"sqlite:///{landing / 'members.sqlite'}"
    assert (
        str(load_settings(members_url="sqlite:///other.sqlite").members_database_url)
        == f"sqlite:///{tmp_path / 'other.sqlite'}"
    )


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("warehouse", "mysql://root:hunter2@localhost/x", "warehouse"),
        ("warehouse", "not a url", "warehouse"),
        ("members_url", "oracle://u:hunter2@h/x", "members_url"),
        ("timezone", "Mars/Olympus", "timezone"),
        ("report_year", 1800, "report_year"),
    ],
)
def test_bad_settings_are_one_clear_error_without_secrets(field: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**{field: value})
    assert needle in str(err.value)
    assert "hunter2" not in str(err.value)


def test_duckdb_memory_limit_is_checked() -> None:
    assert load_settings(duckdb_memory_limit="512MB").duckdb_memory_limit == "512MB"
    with pytest.raises(ConfigError, match="duckdb_memory_limit"):
        load_settings(duckdb_memory_limit="2GB; DROP TABLE x")


@pytest.mark.parametrize(
    "name",
    [
        "marts.fig_annual_figures; DROP TABLE raw.rights__cases",
        'marts."x"',
        "Marts.fig",
        "marts.fig--",
        "marts",
        "a.b.c",
        "marts.1fig",
        "",
        "marts.x y",
    ],
)
def test_relations_reaching_sql_must_be_plain_identifiers(name: str) -> None:
    from flows.schema import relation

    with pytest.raises(ConfigError, match="not a safe SQL identifier"):
        relation(name)


def test_the_contract_names_are_identifiers_and_a_hostile_one_is_refused() -> None:
    from flows.schema import TABLES, Column, identifier

    assert all(identifier(c.name) for t in TABLES for c in t.all_columns)
    assert identifier("marts_asof_20210630") == "marts_asof_20210630"
    with pytest.raises(ConfigError, match="not a safe SQL identifier"):
        Column('name"); DROP TABLE raw.members__member; --', "姓名", "text")
