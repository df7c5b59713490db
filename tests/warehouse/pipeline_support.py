"""Helpers of the pipeline tests: the fault tests' cut-down demo landing zone
(tests/orchestration/faultkit.py), delivered CSV files written as the contract says
(:func:`write_delivery_csv`), a later delivery that corrects one rights case, the rows of the
append-only tables as multisets, to show that none changed or vanished (:func:`contents`,
:func:`lost`), and what two runs over the same deliveries must both have loaded
(:func:`warehouse_rows`, :func:`row_differences`)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlalchemy as sa

from flows import schema
from flows.warehouse import appendonly
from tests.orchestration.faultkit import small_landing

__all__ = [
    "CASES_HEADER",
    "PROTECTED",
    "contents",
    "deliver_correction",
    "delivery_csv",
    "lost",
    "row_differences",
    "small_landing",
    "warehouse_rows",
    "write_delivery_csv",
]

PROTECTED = frozenset(appendonly.append_only_tables())

CASES_HEADER = [
    "案件编号",
    "类型",
    "受理日期",
    "统一社会信用代码",
    "职工身份证号",
    "调解结果",
    "结案日期",
    "维权金额(元)",
]
"""The header of rights' cases.csv (config/contract-sources.md)."""


# ------------------------------------------------------------------ delivered CSV files
def delivery_csv(header: Sequence[object], rows: Iterable[Sequence[object]], encoding: str) -> bytes:
    """A delivered CSV file's bytes: the header row, then the rows (fields quoted only where they
    must be), CRLF line ends, in ``encoding`` (``utf-8-sig``: with the byte-order mark), as the
    demo's upstream systems write them (flows/demo/synth.py). A test that needs a file off the
    contract passes the wrong encoding, or changes the bytes, on purpose and says so."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def write_delivery_csv(
    path: Path,
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    encoding: str | None = None,
) -> Path:
    """Write a delivered CSV file at ``path`` (``<landing>/<source>/<YYYY-MM-DD>/<name>``), its
    folder made, as :func:`delivery_csv` and in the encoding the contract
    (config/contract-sources.md) states for the source the path names: GB18030 for registry and
    finance, UTF-8 with a BOM for rights, UTF-8 for events and a registered source's own
    (``schema.source(<source>).encoding``); ``encoding`` overrides it."""
    if encoding is None:
        encoding = schema.source(path.parent.parent.name).encoding
        if encoding is None:
            raise ValueError(f"{path}: {path.parent.parent.name} delivers no text files")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(delivery_csv(header, rows, encoding))
    return path


def deliver_correction(landing: Path, engine: sa.Engine, delivered: str = "2021-12-20") -> str:
    """Deliver (dated ``delivered``) the first 2021 consultation again, now a labour dispute
    mediated (成功) with 1,000.50 recovered: a correction that arrives as a new row. Returns its
    case number. (The cut-down landing's first 200 cases are all consultations.)"""
    with engine.connect() as conn:
        case = conn.execute(
            sa.text(
                "SELECT case_no, received_on, uscc, worker_id_card FROM raw.rights__cases "
                "WHERE case_type = '咨询' AND received_on >= DATE '2021-01-01' ORDER BY case_no LIMIT 1"
            )
        ).one()
    folder = landing / "rights" / delivered
    folder.mkdir(parents=True)  # a delivery folder is new: never written into twice
    row = [
        case[0],
        "劳动争议",
        case[1].strftime("%Y/%-m/%-d"),
        case[2] or "",
        case[3] or "",
        "成功",
        "2021年12月1日",
        "1,000.50",
    ]
    write_delivery_csv(folder / "cases.csv", CASES_HEADER, [row])
    return str(case[0])


# ------------------------------------------------------------------ warehouse contents
def _columns(conn: sa.Connection, table: str) -> list[str]:
    schema_name, name = table.split(".")
    return list(
        conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
                "ORDER BY ordinal_position"
            ),
            {"s": schema_name, "t": name},
        ).scalars()
    )


def contents(
    engine: sa.Engine,
    tables: frozenset[str] | set[str] = PROTECTED | {"ops.runs"},
    leave_out: str | None = None,
) -> dict[str, Counter[str]]:
    """Each table's rows as a multiset of the text of their values (``leave_out``: columns whose
    name ends so are left out)."""
    out: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        for table in sorted(tables):
            cols = [c for c in _columns(conn, table) if leave_out is None or not c.endswith(leave_out)]
            rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table}")).all()
            out[table] = Counter(repr(tuple(r)) for r in rows)
    return out


def lost(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> dict[str, list[str]]:
    """Rows present before and no longer present, unchanged, after (per table; empty: none)."""
    out = {}
    for table, rows in before.items():
        if table == "ops.runs":  # a finished run's row never changes; a running one is finished once
            rows = Counter({r: n for r, n in rows.items() if "'running'" not in r})
        missing = rows - after.get(table, Counter())
        if missing:
            out[table] = sorted(missing)[:3]
    return out


PER_RUN = frozenset({"_load_id", "load_id", "run_id", "loaded_at", "quarantined_at"})
"""Columns that differ between two runs loading the same deliveries: which run and load wrote a
row, and when."""
PER_PAGE = frozenset({"file_sha256", "row_number", "delivery_date"})
"""Further columns (with or without their ``_`` prefix in raw tables) that differ for a database
source (members): a pull is cut into pages of ``stream_rows``, each hashed and its rows numbered on
its own, and dated by the day of the pull (flows/sources/members.py)."""
LEDGER_COUNTS = ("rows_read", "rows_loaded", "rows_quarantined")


def warehouse_rows(
    engine: sa.Engine, sources: Iterable[str] = schema.SOURCES, between_runs: bool = True
) -> dict[str, Counter[str]]:
    """What two runs over the same deliveries must both have loaded, as a multiset of row texts
    per relation: every row of the raw tables of ``sources`` and of their file registers, every
    quarantined row of them, and the ledger's rows read, loaded and quarantined per file (and
    status and error). With ``between_runs`` (to compare two warehouses), :data:`PER_RUN` is left
    out, and for a database source :data:`PER_PAGE` too (its pages' ledger entries are summed:
    one per table and pull); without it (the same warehouse before and after), every column
    counts. Load order plays no part: rows are compared as multisets (:func:`row_differences`)."""
    sources = tuple(sources)
    per_run = PER_RUN if between_runs else frozenset()
    paged = {s for s in sources if between_runs and schema.source(s).delivery != schema.FILES}
    out: dict[str, Counter[str]] = {}
    with engine.connect() as conn:

        def raw(name: str, source: str) -> Counter[str]:
            cols = [
                c
                for c in _columns(conn, name)
                if c not in per_run and not (source in paged and c.lstrip("_") in PER_PAGE)
            ]
            return Counter(
                repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {name}"))
            )

        for t in schema.all_tables():
            if t.source in sources:
                out[f"raw.{t.raw_table}"] = raw(f"raw.{t.raw_table}", t.source)
        for src in schema.sources():
            if src.name in sources and src.register is not None:
                out[f"raw.{src.register_table}"] = raw(f"raw.{src.register_table}", src.name)
        for name in ("ops.quarantine", "ops.load_ledger"):
            cols = [c for c in _columns(conn, name) if c not in per_run]
            rows = conn.execute(
                sa.text(f"SELECT {', '.join(cols)} FROM {name} WHERE source IN :s").bindparams(
                    sa.bindparam("s", expanding=True)
                ),
                {"s": list(sources)},
            ).mappings()
            totals: dict[tuple, list[int]] = {}  # the ledger: counts summed per file
            texts: Counter[str] = Counter()
            for row in rows:
                key = tuple(
                    None if row["source"] in paged and c in PER_PAGE else row[c]
                    for c in cols
                    if name == "ops.quarantine" or c not in LEDGER_COUNTS
                )
                if name == "ops.quarantine":
                    texts[repr(key)] += 1
                else:
                    counts = totals.setdefault(key, [0] * len(LEDGER_COUNTS))
                    for i, c in enumerate(LEDGER_COUNTS):
                        counts[i] += row[c]
            out[name] = (
                texts if name == "ops.quarantine" else Counter(repr((*k, *v)) for k, v in totals.items())
            )
    return out


def row_differences(a: dict[str, Counter[str]], b: dict[str, Counter[str]], show: int = 3) -> dict[str, str]:
    """Per relation whose rows differ between ``a`` and ``b`` (:func:`warehouse_rows`): how many
    rows only each has, and the first ``show`` of them (empty: the same rows everywhere)."""
    out = {}
    for name in sorted(set(a) | set(b)):
        only_a, only_b = (
            a.get(name, Counter()) - b.get(name, Counter()),
            b.get(name, Counter()) - a.get(name, Counter()),
        )
        if only_a or only_b:
            out[name] = (
                f"{only_a.total()} rows only in the first {sorted(only_a)[:show]}, "
                f"{only_b.total()} only in the second {sorted(only_b)[:show]}"
            )
    return out
