"""What a run leaves in the Prefect UI: its outputs, its figure changes and its dbt results.

The builders are pure (lists of dicts and Markdown text from what the run holds), tested without
Prefect or a database; :func:`publish` and :func:`publish_dbt_results` are the only Prefect calls.

Prefect's UI draws a table artifact from the keys of its first row, one column per key, each cell
as text (the V1 UI renders string cells as Markdown, the V2 UI as plain text). So every row has
the same keys, every value is a JSON scalar (a Decimal is not: it is written as exact text), and
no cell is one long unbreakable word: a dbt ``unique_id`` such as
``test.unionwh.accepted_values_audit_exceptions_rule__budget_overrun__….07ff43d489`` (185
characters) made the V1 UI's first column 1,300 px wide and pushed every other column out of
sight. A node is named as people read it (``accepted_values audit_exceptions.rule``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.errors import scrub_text
from flows.warehouse.dbt import NodeResult
from flows.warehouse.loader import LedgerEntry
from flows.warehouse.runlog import FigureChange

RUN_OUTPUTS = "run-outputs"
FIGURE_CHANGES = "figure-changes"
DBT_RESULTS = "dbt-results"
"""The artifact keys (Prefect wants lower-case letters, digits and dashes): the Artifacts page
lists each key once, with the runs that made it."""

FIGURE_CHANGES_SHOWN = 200
"""At most this many figure changes go into the table artifact (a first run adds hundreds of
figure-years); the description says how many more, and ``unionwh status --changes`` lists all."""
NAME_LIMIT = 80
MESSAGE_LIMIT = 120
"""Longest name and message cells of the dbt-results table (cut with …)."""

SCALAR = (str, int, float, bool, type(None))


def cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (the cut marked with …)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ------------------------------------------------------------------ dbt results
def node_name(unique_id: str, manifest: Mapping[str, Any]) -> str:
    """A dbt node as people read it: a model or seed by its name; a generic test as
    ``<test> <model>.<column>`` (``not_null fct_dues.amount``); a singular test by its name.
    ``manifest``: dbt's parsed manifest.json (empty: the name is taken from the id itself)."""
    kind, _, rest = unique_id.partition(".")
    node = (manifest.get("nodes") or {}).get(unique_id) or (manifest.get("unit_tests") or {}).get(unique_id)
    if node:
        test = node.get("test_metadata") or {}
        if test.get("name"):
            attached = (manifest.get("nodes") or {}).get(node.get("attached_node") or "") or {}
            target = attached.get("name") or ""
            column = node.get("column_name") or ""
            on = f"{target}.{column}" if target and column else target or column
            return cut(f"{test['name']} {on}".strip(), NAME_LIMIT)
        if node.get("name"):
            return cut(str(node["name"]), NAME_LIMIT)
    parts = rest.split(".")[1:]  # (the package)
    if kind == "test" and len(parts) > 1:
        parts = parts[:-1]  # a generic test's hash
    return cut(".".join(parts) or unique_id, NAME_LIMIT)


FIRST_STATUSES = ("error", "runtime error", "fail", "warn", "skipped")
"""Results shown before the rest (the V2 UI pages the table 10 rows at a time)."""


def dbt_rows(nodes: Sequence[NodeResult], manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The dbt-results table: one row per node, failures first, then dbt's order; the same keys
    and JSON scalars in every row (``rows`` is null where dbt reports none). Messages are
    scrubbed as error texts are (a database error may quote a value)."""
    rank = {s: i for i, s in enumerate(FIRST_STATUSES)}
    ordered = sorted(nodes, key=lambda n: rank.get(n.status, len(rank)))  # (stable: dbt's order within)
    return [
        {
            "status": n.status,
            "type": n.unique_id.partition(".")[0],
            "name": node_name(n.unique_id, manifest),
            "seconds": float(n.seconds),
            "rows": n.rows_affected,
            "message": scrub_text(n.message, MESSAGE_LIMIT) if n.message else "",
        }
        for n in ordered
    ]


def dbt_description(nodes: Sequence[NodeResult], artifacts: Path) -> str:
    """The dbt-results artifact's description: the counts per status and where the whole results are."""
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return (
        f"dbt build: {len(nodes)} nodes ({tally}). Each node's full id, timing and SQL: "
        f"`{artifacts / 'run_results.json'}`"
    )


def read_manifest(artifacts: Path) -> dict[str, Any]:
    """dbt's manifest.json of a build (empty when there is none, or it cannot be read: the
    names then come from the ids)."""
    try:
        return json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# -------------------------------------------------------------- figure changes
def exact(value: Decimal | None) -> str | None:
    """A figure value as exact text (a table artifact cell must be JSON; a float would round)."""
    return None if value is None else format(value.normalize(), "f")


def change_kind(c: FigureChange) -> str:
    return "new" if c.old is None else "gone" if c.new is None else "changed"


def figure_change_rows(
    changes: Sequence[FigureChange], limit: int = FIGURE_CHANGES_SHOWN
) -> list[dict[str, Any]]:
    """The figure-changes table: values that moved or went first, then new values other than 0
    (newest year first), then new zeros (a first run's hundreds of empty years); at most ``limit``."""
    moved = [c for c in changes if c.old is not None]
    new = [c for c in changes if c.old is None]
    first = (
        moved
        + sorted((c for c in new if c.new != 0), key=lambda c: -c.report_year)
        + [c for c in new if c.new == 0]
    )
    return [
        {
            "figure": c.figure_id,
            "year": c.report_year,
            "previous": exact(c.old),
            "new": exact(c.new),
            "change": change_kind(c),
        }
        for c in first[:limit]
    ]


def figure_changes_description(
    run_id: str, changes: Sequence[FigureChange], limit: int = FIGURE_CHANGES_SHOWN
) -> str:
    counts = {k: sum(1 for c in changes if change_kind(c) == k) for k in ("changed", "new", "gone")}
    tally = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"
    shown = "" if len(changes) <= limit else f"; the first {limit} here, all: `unionwh status --changes`"
    return f"Figures (any year) that run {run_id} changed against the previous run: {len(changes)} ({tally}){shown}"


# ------------------------------------------------------------------ run outputs
@dataclass(frozen=True)
class Output:
    label: str
    path: Path


DATA_DOCS = "Data Docs (validation results)"
OUTPUT_KINDS: tuple[tuple[str, str], ...] = (
    ("summary-*.html", "Annual summary (HTML)"),
    ("summary-*.md", "Annual summary (Markdown)"),
    ("summary-*.docx", "Annual summary (Word)"),
    ("figures-*.json", "Figures with their trace (JSON)"),
    ("report-*.md", "Figures table"),
    ("audit-*.xlsx", "Fund audit workbook"),
    ("", DATA_DOCS),  # (the run's data_docs/index.html: matched by folder, see outputs)
    ("static_index.html", "dbt docs (models, tests, lineage)"),
)


def outputs(files: Iterable[Path], docs_dir: Path | None) -> list[Output]:
    """The run's files, labelled, in reading order: the summary first, then figures, the audit
    workbook, Data Docs (``index.html`` of ``docs_dir``) and dbt docs; files of no known kind
    last, by name."""
    known: list[tuple[int, Output]] = []
    for path in files:
        for i, (pattern, label) in enumerate(OUTPUT_KINDS):
            if (
                path.match(pattern)
                if pattern
                else docs_dir is not None and path.name == "index.html" and path.parent == docs_dir
            ):
                known.append((i, Output(label, path)))
                break
        else:
            known.append((len(OUTPUT_KINDS), Output(path.name, path)))
    return [o for _, o in sorted(known, key=lambda x: (x[0], x[1].path.name))]


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a ``|`` would end the cell, a newline the row)."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(path: Path) -> str:
    """A file as a Markdown link (file:// URI; browsers may not follow it from a web page, so
    the plain path is given beside it)."""
    name = path.name.replace("[", "\\[").replace("]", "\\]")
    uri = path.as_uri() if path.is_absolute() else path.as_posix()
    return f"[{name}](<{uri}>)"


def _ledger_table(ledger: Sequence[LedgerEntry]) -> list[str]:
    by_source: dict[str, list[LedgerEntry]] = {}
    for e in ledger:
        by_source.setdefault(e.source, []).append(e)
    head = [
        "| source | files | rejected | rows read | loaded | quarantined | read = loaded + quarantined | held back |",
        "|---|---:|---:|---:|---:|---:|:---:|---:|",
    ]

    def row(name: str, entries: Sequence[LedgerEntry]) -> str:
        ok = [e for e in entries if e.status == "loaded"]
        read, loaded, quarantined = (
            sum(e.rows_read for e in ok),
            sum(e.rows_loaded for e in ok),
            sum(e.rows_quarantined for e in ok),
        )
        held = sum(e.rows_read for e in entries if e.status == "rejected")
        files = len({(e.source, e.file_name) for e in ok})
        rejected = len({(e.source, e.file_name) for e in entries if e.status == "rejected"})
        holds = "yes" if read == loaded + quarantined else "**NO**"
        return (
            f"| {_cell(name)} | {files:,} | {rejected:,} | {read:,} | {loaded:,} | {quarantined:,} | {holds} "
            f"| {held:,} |"
        )

    lines = head + [row(source, entries) for source, entries in sorted(by_source.items())]
    if len(by_source) > 1:
        lines.append(row("**all**", ledger))
    return lines


def run_outputs_markdown(
    run_id: str,
    status: str,
    year: int,
    run_dir: Path | None,
    files: Sequence[Path],
    docs_dir: Path | None,
    ledger: Sequence[LedgerEntry],
    files_unchanged: int,
    figure_changes: Sequence[FigureChange] | None,
    errors: Sequence[str],
    seconds: Mapping[str, float] | None = None,
    failure: str | None = None,
    first_errors: int = 10,
) -> str:
    """The run-outputs artifact: the run's id and status, a table of its files (each a file://
    link and its plain path), where the fund audit workbook comes from, the ledger's counts per
    source (rows read = loaded + quarantined), the figures it changed and its rejected files;
    ``failure``: the one line a failed run ended with (already safe to show)."""
    lines = [f"## Run {_code(run_id)}: {status}", ""]
    if failure:
        lines += [f"**Failed:** {_code(cut(failure, 500))}", ""]
    facts = [f"report year {year}"]
    if run_dir is not None:
        facts.append(f"run folder {_code(str(run_dir))}")
    if seconds:
        facts.append("took " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    lines += [
        "; ".join(facts),
        "",
        "### Outputs",
        "",
        (
            "Each file as a `file://` link and its path (the Prefect UI may not follow a `file://` link: "
            "paste the path into a file browser)."
        ),
        "",
    ]
    found = outputs(files, docs_dir)
    lines += [f"- **{o.label}**: {_link(o.path)} {_code(str(o.path))}" for o in found]
    if not any(o.label == "Fund audit workbook" for o in found):
        lines.append(
            f"- **Fund audit workbook**: not written by this flow; {_code(f'unionwh audit --year {year}')} "
            "writes it"
        )
    if figure_changes is None:
        lines.append("- **Summary, figures, dbt docs**: not written, no dbt build finished in this run")
    lines += ["", "### Ledger", ""]
    if ledger:
        lines += _ledger_table(ledger)
        lines += [
            "",
            (
                "files: files loaded; rejected: files rejected whole, whose rows are held back (neither loaded "
                "nor quarantined; `unionwh quality` says why)."
            ),
        ]
    else:
        lines.append("No file or member rows were new in this run.")
    if files_unchanged:
        lines += ["", f"{files_unchanged:,} delivered files were unchanged since an earlier run (skipped)."]
    lines += ["", "### Figures", ""]
    if figure_changes is None:
        lines.append("The figures were not computed: no dbt build finished in this run.")
    elif not figure_changes:
        lines.append("No figure value changed against the previous run.")
    else:
        lines.append(
            f"{len(figure_changes):,} figure values differ from the previous run's: "
            f"the table artifact {_code(FIGURE_CHANGES)} lists them "
            f"({_code('unionwh status --changes')} too)."
        )
    if errors:
        shown = list(errors[:first_errors])
        lines += ["", f"### Rejected files ({len(errors)})", "", "```text"]
        lines += [e.replace("```", "'''") for e in shown]
        if len(errors) > len(shown):
            lines.append(f"... and {len(errors) - len(shown)} more: unionwh quality")
        lines.append("```")
    return "\n".join(lines) + "\n"


def run_outputs_description(run_id: str, status: str) -> str:
    return f"nightly-load run {run_id} ({status}): its files, ledger counts and figure changes"


# --------------------------------------------------------------------- publish
def publish_dbt_results(nodes: Sequence[NodeResult], artifacts: Path) -> None:
    """The ``dbt-results`` table artifact of a build (nothing when dbt ran no node)."""
    from prefect.artifacts import create_table_artifact  # deferred: Prefect (~1 s), the builders are pure

    if nodes:
        create_table_artifact(
            key=DBT_RESULTS,
            table=dbt_rows(nodes, read_manifest(artifacts)),
            description=dbt_description(nodes, artifacts),
        )


def publish(markdown: str, description: str, run_id: str, changes: Sequence[FigureChange] | None) -> None:
    """The run's ``run-outputs`` Markdown artifact and, when it computed figures, its
    ``figure-changes`` table."""
    # deferred: Prefect (~1 s), only publishing needs it; the builders above are pure (tests, reports)
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(markdown=markdown, key=RUN_OUTPUTS, description=description)
    if changes is not None:
        create_table_artifact(
            key=FIGURE_CHANGES,
            table=figure_change_rows(changes),
            description=figure_changes_description(run_id, changes),
        )
