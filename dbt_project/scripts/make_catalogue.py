"""Write seeds/figure_catalogue.csv from config/figures.yaml (run after editing the YAML)."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "dbt_project" / "seeds" / "figure_catalogue.csv"


def catalogue_rows() -> list[list[str]]:
    figures = yaml.safe_load((ROOT / "config" / "figures.yaml").read_text(encoding="utf-8"))["figures"]
    return [
        [f["id"], f["zh"], f["en"], f["unit"], f["definition"], str(i + 1)] for i, f in enumerate(figures)
    ]


def main() -> None:
    with SEED.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["figure_id", "label_zh", "label_en", "unit", "definition", "sort_order"])
        writer.writerows(catalogue_rows())


if __name__ == "__main__":
    main()
