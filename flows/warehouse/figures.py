"""Read the computed figures back from the warehouse's figures mart."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from flows.errors import UnionWHError
from flows.schema import relation as checked_relation

FIGURES_RELATION = "marts.fig_annual_figures"

MONEY_UNITS = ("元",)


@dataclass(frozen=True)
class Figure:
    id: str
    value: Decimal | int | float
    unit: str
    zh: str
    en: str

    @property
    def is_money(self) -> bool:
        return self.unit in MONEY_UNITS

    def json_value(self) -> int | float:
        """Counts as integers, money in yuan with two decimals."""
        value = Decimal(str(self.value))
        if self.is_money:
            return float(value.quantize(Decimal("0.01")))
        if value == value.to_integral_value():
            return int(value)
        return float(value)

    def display(self) -> str:
        value = self.json_value()
        return f"{value:,.2f}" if self.is_money else f"{value:,}"


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
