"""Figures "as known on" a past date: the same dbt models over the deliveries up to that date.

The raw layer is append-only and every row carries its delivery date, so it is a complete
history of what was known when. ``dbt build --vars {as_of: D}`` restricts every source to
rows delivered on or before D (macro ``known``) and builds into schemas suffixed
``_asof_YYYYMMDD`` (macro ``generate_schema_name``), next to the current marts and without
touching them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from flows.errors import RunFailed
from flows.settings import Settings
from flows.warehouse.dbt import run_dbt
from flows.warehouse.engine import warehouse_engine
from flows.warehouse.figures import Figure, fetch_figures


def schema_suffix(as_of: date) -> str:
    return f"_asof_{as_of:%Y%m%d}"


def figures_as_known_on(settings: Settings, year: int, as_of: date, artifacts: Path) -> list[Figure]:
    """Build the figures over the deliveries up to ``as_of`` and read ``year``'s."""
    result = run_dbt(
        settings,
        [
            "build",
            "--select",
            "+fig_annual_figures",
            "--indirect-selection",
            "cautious",
            "--vars",
            json.dumps({"as_of": as_of.isoformat()}),
        ],
        artifacts,
    )
    if not result.success:
        raise RunFailed(f"dbt build as known on {as_of} failed: " + "; ".join(result.failures[:5]))
    engine = warehouse_engine(settings)
    try:
        return fetch_figures(engine, year, relation=f"marts{schema_suffix(as_of)}.fig_annual_figures")
    finally:
        engine.dispose()
