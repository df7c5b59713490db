"""Read the computed figures back from the warehouse's figures mart."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows.errors import UnionWHError
from flows.report.format import Figure
from flows.schema import relation as checked_relation

FIGURES_RELATION = "marts.fig_annual_figures"


def fetch_figures(engine: Engine, year: int, relation: str = FIGURES_RELATION) -> list[Figure]:
    relation = checked_relation(relation)
    query = sa.text(
        f"SELECT figure_id, value, unit, label_zh, label_en FROM {relation} "
        "WHERE report_year = :y ORDER BY sort_order"
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query, {"y": year}).all()
    except DBAPIError as exc:
        raise UnionWHError(
            f"cannot read {relation} from the warehouse (has `unionwh run` built it?): "
            f"{type(exc.orig).__name__}"
        ) from None
    return [Figure(id=r[0], value=r[1], unit=r[2], zh=r[3], en=r[4]) for r in rows]


def available_years(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT DISTINCT report_year FROM {FIGURES_RELATION} ORDER BY 1")).all()
    return [int(r[0]) for r in rows]
