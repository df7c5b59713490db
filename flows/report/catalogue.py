"""``config/figures.yaml`` as the code reads it: the one statement of which finance project pays
each money figure (``paid_from``) and of the fund audit's checks (``audit:``).

The dbt project reads the same file through its seed (``seeds/figure_catalogue.csv``, written by
``dbt_project/scripts/make_catalogue.py``); tests/report/test_facts_single_source.py checks that
the audit marts' SQL, their dbt YAML and docs/fund-audit.md agree with it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FIGURES_YAML = Path(__file__).resolve().parents[2] / "config" / "figures.yaml"


@cache
def figures_yaml() -> dict[str, Any]:
    """The parsed file (read once)."""
    return yaml.safe_load(FIGURES_YAML.read_text(encoding="utf-8"))


def money_projects() -> dict[str, str | None]:
    """Money figure id -> the finance project whose postings pay it (None: no fund of ours pays it
    out), from each figure's ``paid_from``."""
    return {f["id"]: f["paid_from"] for f in figures_yaml()["figures"] if "paid_from" in f}


@dataclass(frozen=True)
class Rule:
    """One exception rule of the fund audit (``audit.exceptions``)."""

    rule: str
    """The value of ``marts.audit_exceptions.rule``."""
    zh: str
    en: str
    zh_definition: str


def exception_rules() -> tuple[Rule, ...]:
    return tuple(
        Rule(r["rule"], r["zh"], r["en"], r["zh_definition"]) for r in figures_yaml()["audit"]["exceptions"]
    )


def reconciliation() -> tuple[tuple[str, str], ...]:
    """(welfare ledger rows, finance project that must carry them) of ``audit.reconciliation``."""
    return tuple((r["ledger"], r["project"]) for r in figures_yaml()["audit"]["reconciliation"])


RULES_DOC_START = (
    "<!-- audit-rules:start (generated from config/figures.yaml by "
    "python -m flows.report.catalogue --write; do not edit) -->"
)
RULES_DOC_END = "<!-- audit-rules:end -->"
FUND_AUDIT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "fund-audit.md"


def rules_doc_block() -> str:
    """The checks of docs/fund-audit.md, as figures.yaml states them (between the page's markers)."""
    lines = [
        RULES_DOC_START,
        "| `rule` | 检查 | flags | 说明 |",
        "|---|---|---|---|",
        *(f"| `{r.rule}` | {r.zh} | {r.en} | {r.zh_definition} |" for r in exception_rules()),
        "",
        "| welfare ledger rows | finance project |",
        "|---|---|",
        *(f"| {ledger} | `{project}` |" for ledger, project in reconciliation()),
        RULES_DOC_END,
    ]
    return "\n".join(lines)


def documented_rules(page: Path = FUND_AUDIT_PAGE) -> str | None:
    """The generated block as the page has it now (None: its markers are missing)."""
    text = page.read_text(encoding="utf-8")
    start, end = text.find(RULES_DOC_START), text.find(RULES_DOC_END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(RULES_DOC_END)]


def write_rules_doc(page: Path = FUND_AUDIT_PAGE) -> bool:
    """Rewrite the page's generated block; True if it changed."""
    old = documented_rules(page)
    if old is None:
        raise SystemExit(f"{page}: the markers of the audit rules are missing")
    text = page.read_text(encoding="utf-8")
    new = text.replace(old, rules_doc_block())
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        print(f"{FUND_AUDIT_PAGE}: {'updated' if write_rules_doc() else 'already up to date'}")
    else:
        sys.stdout.write(rules_doc_block() + "\n")
