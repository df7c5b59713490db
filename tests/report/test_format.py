from __future__ import annotations

import json
from decimal import Decimal

import pytest

from flows.report.format import figures_csv, figures_json, figures_table
from flows.warehouse.figures import Figure

pytestmark = pytest.mark.unit

FIGS = [
    Figure("rights.consultations", Decimal("1131.00"), "件", "接待咨询", "consultations received"),
    Figure("rights.amount_recovered_yuan", Decimal("3498856.37"), "元", "维权金额", "money recovered"),
]


def test_json_has_integers_for_counts_and_cents_for_money() -> None:
    data = json.loads(figures_json(2021, FIGS))
    assert data == {
        "year": 2021,
        "figures": [
            {
                "id": "rights.consultations",
                "value": 1131,
                "unit": "件",
                "zh": "接待咨询",
                "en": "consultations received",
            },
            {
                "id": "rights.amount_recovered_yuan",
                "value": 3498856.37,
                "unit": "元",
                "zh": "维权金额",
                "en": "money recovered",
            },
        ],
    }


def test_table_and_csv() -> None:
    table = figures_table(2021, FIGS)
    assert "1,131" in table and "3,498,856.37" in table
    assert (
        figures_csv(2021, FIGS).splitlines()[1]
        == "2021,rights.consultations,1131,件,接待咨询,consultations received"
    )
