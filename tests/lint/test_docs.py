"""The documentation: the site builds strictly, the README stays a front door, and the settings
table of docs/configuration.md is exactly what flows/settings.py defines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from flows import docs_tables
from flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """Every page is in the navigation, every link and anchor resolves (mkdocs.yml: strict, validation)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/ (at most 200)"


def _documented_settings() -> dict[str, str]:
    """YAML key -> environment variable, as the page's settings table lists them."""
    block = docs_tables.documented_block()
    assert block is not None, (
        "docs/configuration.md lost the settings table's markers; "
        "put them back and run python -m flows.docs_tables --write"
    )
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", block, flags=re.MULTILINE)
    return dict(rows)


def _defined_settings() -> dict[str, str]:
    """YAML key -> environment variable, from Settings itself (nested models flattened)."""
    prefix = Settings.model_config["env_prefix"]
    delimiter = Settings.model_config["env_nested_delimiter"]
    found: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        nested = getattr(field.annotation, "model_fields", None)
        if nested:
            for sub in nested:
                found[f"{name}.{sub}"] = f"{prefix}{name}{delimiter}{sub}".upper()
        else:
            found[name] = f"{prefix}{name}".upper()
    return found


def test_the_settings_table_lists_exactly_the_settings() -> None:
    documented, defined = _documented_settings(), _defined_settings()
    missing = sorted(set(defined) - set(documented))
    extra = sorted(set(documented) - set(defined))
    assert not missing and not extra, (
        f"docs/configuration.md's settings table lacks {missing or 'nothing'} and lists settings "
        f"Settings does not have: {extra or 'none'}; run python -m flows.docs_tables --write"
    )
    wrong_env = {key: (documented[key], env) for key, env in defined.items() if documented[key] != env}
    assert not wrong_env, f"environment variables differ (documented, defined): {wrong_env}"


def test_the_settings_table_is_the_generated_one() -> None:
    """Defaults and meanings too: the table is rendered from flows/settings.py, never edited by hand."""
    assert docs_tables.documented_block() == docs_tables.settings_block(), (
        "docs/configuration.md's settings table differs from flows/settings.py: "
        "run python -m flows.docs_tables --write"
    )


def test_the_generated_table_names_env_vars_as_pydantic_reads_them(monkeypatch) -> None:
    """The environment variable a row names really sets that setting (nested ones included)."""
    monkeypatch.setenv("UNIONWH_CONFIG", str(ROOT / "no-such-config.yaml"))
    rows = {key: env for key, env, _, _ in docs_tables.settings_rows()}
    monkeypatch.setenv(rows["keep_runs"], "7")
    monkeypatch.setenv(rows["quality.max_duplicate_key_share"], "0.25")
    settings = Settings()
    assert settings.keep_runs == 7
    assert settings.quality.max_duplicate_key_share == 0.25
