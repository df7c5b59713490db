"""``unionwh status`` as people read it (pure: no I/O).

A table of the last runs whose columns are as wide as what they hold (nothing is cut), each
run's message on one line under it, then the figures the newest run changed: counted, the
first few listed (changed values before new figure-years: a first run adds hundreds of those,
mostly 0), ``--changes`` for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from flows.warehouse.runlog import FigureChange, RunRow

FIRST_CHANGES = 10
"""How many figure changes of the newest run ``status`` lists without ``--changes``."""
MESSAGE_LIMIT = 200
"""A run's message is cut (with …) beyond this many characters; the whole text is in ops.runs."""
DBT_ORDER = ("success", "pass", "warn", "fail", "error", "skipped")
"""dbt's result words in the order the dbt column lists them (others after, by name)."""


def number(value: object) -> str:
    """A count or figure value as text: ``-`` for none, decimals without trailing zeros."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (newlines and runs of spaces become one space), at most ``limit``
    characters, the cut marked with …"""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def dbt_text(results: dict[str, int]) -> str:
    """dbt's results of a run, compact and whole: ``56 success, 288 pass, 1 warn``."""
    order = {word: i for i, word in enumerate(DBT_ORDER)}
    keys = sorted(results, key=lambda k: (order.get(k, len(order)), k))
    return ", ".join(f"{results[k]} {k}" for k in keys) or "-"


def _took(r: RunRow) -> str:
    return f"{(r.finished_at - r.started_at).total_seconds():.0f}s" if r.finished_at else "-"


def _files(r: RunRow) -> str:
    counts = (r.files_loaded, r.files_rejected, r.files_unchanged)
    return "/".join("-" if v is None else str(v) for v in counts)


COLUMNS: tuple[tuple[str, str], ...] = (
    ("run", "<"),
    ("started", "<"),
    ("took", ">"),
    ("status", "<"),
    ("files +/x/=", ">"),
    ("rows read", ">"),
    ("loaded", ">"),
    ("quar.", ">"),
    ("figs", ">"),
    ("dbt", "<"),
)


def runs_table(runs: Sequence[RunRow]) -> list[str]:
    """One line per run (newest first), columns sized to their widest cell; a run's message
    follows it on one indented line. The dbt column is last: it is the widest and varies most."""
    cells = [
        [
            r.run_id,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            _took(r),
            r.status,
            _files(r),
            number(r.rows_read),
            number(r.rows_loaded),
            number(r.rows_quarantined),
            number(r.figures_changed),
            dbt_text(r.dbt_results),
        ]
        for r in runs
    ]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, (name, _) in enumerate(COLUMNS)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(f"{v:{align}{w}}" for v, (_, align), w in zip(values, COLUMNS, widths)).rstrip()

    out = [line([name for name, _ in COLUMNS])]
    for r, row in zip(runs, cells):
        out.append(line(row))
        if r.message:
            out.append(f"  {r.status}: {one_line(r.message)}")
    return out


def changes_summary(
    run_id: str, changes: Sequence[FigureChange], limit: int | None = FIRST_CHANGES
) -> list[str]:
    """The figures ``run_id`` changed: one line of counts, then the changes (old -> new): with
    ``limit``, that many, changed and gone values first, then new ones other than 0; None: all of
    them, in year and figure order."""
    if not changes:
        return []
    new = [c for c in changes if c.old is None]
    gone = [c for c in changes if c.new is None]
    moved = [c for c in changes if c.old is not None and c.new is not None]
    zero = [c for c in new if c.new == 0]
    parts = [f"{len(moved)} changed value{'s' if len(moved) != 1 else ''}"] if moved else []
    if new:
        years = sorted({c.report_year for c in new})
        parts.append(
            f"{len(new)} new figure-year{'s' if len(new) != 1 else ''} "
            f"{years[0] if len(years) == 1 else f'{years[0]}–{years[-1]}'}"
            + (f", {len(zero)} of them 0" if zero else "")
        )
    if gone:
        parts.append(f"{len(gone)} gone")
    # what a reader looks for first: values that moved or went, then new values other than 0,
    # newest year first
    first = moved + gone + sorted((c for c in new if c.new != 0), key=lambda c: -c.report_year) + zero
    shown = list(changes) if limit is None else first[:limit]
    head = f"figures changed by {run_id}: {len(changes)} ({', '.join(parts)})"
    every = len(shown) == len(changes)
    out = [head + (", old -> new:" if every else f"; the first {len(shown)}, old -> new:")]
    out += [f"  {c.report_year} {c.figure_id}: {number(c.old)} -> {number(c.new)}" for c in shown]
    if not every:
        out.append(f"  … {len(changes) - len(shown)} more: `unionwh status --changes` lists them all")
    return out
