"""Publication of a year's summary, and the restatement diff against it.

``publish`` freezes, in ``<published>/<year>/``: the report files, the figures with their
trace, every source row behind every figure (``figure-rows-<year>.csv``), the source files
the warehouse loaded with their SHA-256 (``sources-<year>.json``) and ``MANIFEST.sha256``
over all of them. The folder is written aside and renamed into place in one step, then made
read-only; a year already published is never written again.

``diff`` checks the published files against their manifest, recomputes nothing but reads the
warehouse as it is now, and lists each figure whose value would change, with the source rows
that were added, removed or changed under it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.errors import UnionWHError
from flows.report.cells import csv_row, csv_text
from flows.report.published import MANIFEST, PUBLICATION
from flows.report.summary import write_report
from flows.report.trace import collect, trace_gaps
from flows.warehouse.figures import Figure

ROW_COLUMNS = ("figure_id", "source_model", "source_ref", "count_key", "amount")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def figure_rows(engine: Engine, year: int) -> list[tuple[str, str, str, str, str]]:
    """Every source row behind every figure of ``year``, as text (sorted)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT figure_id, source_model, source_ref, count_key, amount FROM marts.fig_figure_rows "
                "WHERE report_year = :y"
            ),
            {"y": year},
        ).all()
    return sorted(
        (
            r[0],
            r[1],
            str(r[2]),
            "" if r[3] is None else str(r[3]),
            "" if r[4] is None else f"{Decimal(str(r[4])):.2f}",
        )
        for r in rows
    )


def source_files(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT source, table_name, file_name, file_sha256, delivery_date, sum(rows_loaded) FROM ops.load_ledger "
                "WHERE status = 'loaded' GROUP BY 1, 2, 3, 4, 5 ORDER BY 3, 2"
            )
        ).all()
    return [
        {
            "source": r[0],
            "table": r[1],
            "file": r[2],
            "sha256": r[3],
            "delivery_date": None if r[4] is None else str(r[4]),
            "rows_loaded": int(r[5]),
        }
        for r in rows
    ]


def _as_written(row: tuple[str, ...]) -> tuple[str, ...]:
    """A ``figure_rows`` row as ``figure-rows-<year>.csv`` holds it: formula-like text (a delivered
    reference such as ``=HYPERLINK(…)``) with a leading ``'`` (flows/report/cells.py); the amount,
    which we formatted from a number, as it is (``-12.00`` is a negative amount, not a formula)."""
    return (*csv_row(row[:-1]), row[-1])


def _rows_csv(rows: list[tuple[str, ...]]) -> str:
    return csv_text([ROW_COLUMNS, *(_as_written(r) for r in rows)])


def publish(
    engine: Engine,
    year: int,
    template: str,
    output_dir: Path,
    published_dir: Path,
    meta: dict[str, object] | None = None,
) -> Path:
    """Freeze ``year``'s report; returns its folder. Raises UnionWHError if already published."""
    target = published_dir / str(year)
    if target.exists():
        raise UnionWHError(
            f"{year} is already published in {target}; a published summary never changes. "
            f"`unionwh report diff --year {year}` lists what would change now"
        )
    data = collect(engine, year, output_dir)
    gaps = trace_gaps(data)
    if gaps is not None:  # the published copy states only a verified trace
        raise UnionWHError(f"{year} not published: {gaps}")
    published_dir.mkdir(parents=True, exist_ok=True)
    work = published_dir / f".{year}.partial-{secrets.token_hex(4)}"
    now = datetime.now()
    write_report(data, template, work, generated=now)
    (work / f"figure-rows-{year}.csv").write_text(_rows_csv(figure_rows(engine, year)), encoding="utf-8")
    (work / f"sources-{year}.json").write_text(
        json.dumps(source_files(engine), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (work / PUBLICATION).write_text(
        json.dumps(
            {
                "year": year,
                "published_at": now.isoformat(timespec="seconds"),
                "run_id": data.run_id,
                "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
                **(meta or {}),
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    names = sorted(p.name for p in work.iterdir())
    (work / MANIFEST).write_text("".join(f"{sha256(work / n)}  {n}\n" for n in names), encoding="utf-8")
    for p in work.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(work, target)  # all or nothing
    target.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return target


def verify(folder: Path) -> list[str]:
    """Problems with a published folder against its manifest (empty: intact)."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return [f"{manifest} is missing"]
    problems, listed = [], set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed.add(name)
        path = folder / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: altered (SHA-256 differs from the manifest)")
    problems += [
        f"{p.name}: not in the manifest"
        for p in folder.iterdir()
        if p.name != MANIFEST and p.name not in listed
    ]
    return problems


@dataclass
class FigureChange:
    figure_id: str
    zh: str
    unit: str
    published: Decimal
    now: Decimal
    added: list[tuple[str, ...]] = field(default_factory=list)
    removed: list[tuple[str, ...]] = field(default_factory=list)
    changed: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)


@dataclass
class Diff:
    year: int
    folder: Path
    published_at: str
    problems: list[str]
    changes: list[FigureChange]


def diff(engine: Engine, year: int, published_dir: Path) -> Diff:
    folder = published_dir / str(year)
    if not folder.exists():
        raise UnionWHError(
            f"{year} has not been published (no {folder}); `unionwh report publish --year {year}`"
        )
    problems = verify(folder)
    meta = json.loads((folder / PUBLICATION).read_text(encoding="utf-8"))
    published = {
        f["id"]: f
        for f in json.loads((folder / f"figures-{year}.json").read_text(encoding="utf-8"))["figures"]
    }
    with (folder / f"figure-rows-{year}.csv").open(encoding="utf-8", newline="") as fh:
        old_rows = [tuple(r) for r in list(csv.reader(fh))[1:]]
    with engine.connect() as conn:
        now = {
            r[0]: (Decimal(str(r[1])), r[2], r[3])
            for r in conn.execute(
                sa.text(
                    "SELECT figure_id, value, label_zh, unit FROM marts.fig_annual_figures WHERE report_year = :y"
                ),
                {"y": year},
            )
        }
    new_rows = [_as_written(r) for r in figure_rows(engine, year)]  # compared as the file holds them
    changes = []
    for fid, pub in published.items():
        value, zh, unit = now.get(fid, (Decimal(0), pub["zh"], pub["unit"]))
        before = Decimal(str(pub["value"]))
        if Figure(fid, value, unit, zh, "").json_value() == Figure(fid, before, unit, zh, "").json_value():
            continue
        old = {r[2]: r for r in old_rows if r[0] == fid}
        new = {r[2]: r for r in new_rows if r[0] == fid}
        changes.append(
            FigureChange(
                fid,
                zh,
                unit,
                before,
                value,
                added=[new[k] for k in sorted(new.keys() - old.keys())],
                removed=[old[k] for k in sorted(old.keys() - new.keys())],
                changed=[(old[k], new[k]) for k in sorted(old.keys() & new.keys()) if old[k] != new[k]],
            )
        )
    return Diff(year, folder, meta.get("published_at", "?"), problems, changes)


def _row(r: tuple[str, ...]) -> str:
    model, ref, key, amount = r[1], r[2], r[3], r[4]
    return f"{model} {ref}" + (f" key {key}" if key else "") + (f" amount {amount}" if amount else "")


def format_diff(d: Diff, limit: int = 20) -> str:
    lines = [
        f"published {d.year} ({d.published_at}, {d.folder}): "
        + ("intact, every file matches " + MANIFEST if not d.problems else "ALTERED")
    ]
    lines += [f"  ! {p}" for p in d.problems]
    if not d.changes:
        lines.append("no figure would change")
    for c in d.changes:
        lines.append(
            f"{c.figure_id} {c.zh}: {Figure(c.figure_id, c.published, c.unit, '', '').display()} -> "
            f"{Figure(c.figure_id, c.now, c.unit, '', '').display()} {c.unit}"
        )
        for label, rows in (("+", c.added), ("-", c.removed)):
            for r in rows[:limit]:
                lines.append(f"  {label} {_row(r)}")
            if len(rows) > limit:
                lines.append(f"  {label} … {len(rows) - limit} more")
        for old, new in c.changed[:limit]:
            lines.append(f"  ~ {_row(old)} -> {_row(new)}")
    return "\n".join(lines)
