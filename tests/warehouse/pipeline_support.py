"""Helpers of the append-only and upgrade tests: the fault tests' cut-down demo landing zone
(tests/orchestration/faultkit.py), a later delivery that corrects one rights case, and
the rows of the append-only tables as multisets, to show that none changed or vanished."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from flows.warehouse import appendonly
from tests.orchestration.faultkit import small_landing

__all__ = ["PROTECTED", "contents", "deliver_correction", "lost", "small_landing"]

PROTECTED = frozenset(appendonly.append_only_tables())


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
    folder.mkdir(parents=True)
    with (folder / "cases.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "案件编号",
                "类型",
                "受理日期",
                "统一社会信用代码",
                "职工身份证号",
                "调解结果",
                "结案日期",
                "维权金额(元)",
            ]
        )
        w.writerow(
            [
                case[0],
                "劳动争议",
                case[1].strftime("%Y/%-m/%-d"),
                case[2] or "",
                case[3] or "",
                "成功",
                "2021年12月1日",
                "1,000.50",
            ]
        )
    return str(case[0])


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
            schema, name = table.split(".")
            cols = [
                c
                for c in conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
                        "ORDER BY ordinal_position"
                    ),
                    {"s": schema, "t": name},
                ).scalars()
                if leave_out is None or not c.endswith(leave_out)
            ]
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
