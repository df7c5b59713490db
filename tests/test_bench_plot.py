"""The size-vs-time plot drawn from recorded benchmark lines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flows.bench.plot import main, newest_by_scale

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"


def result(scale: int, rows: int, seconds: float, commit: str) -> dict:
    run = {"seconds": seconds, "peak_mb": 500.0 + scale, "rows": rows}
    return {
        "scale": scale,
        "commit": commit,
        "runs": {
            "pipeline": run,
            "baseline": {**run, "seconds": seconds / 2},
            "delta": {**run, "seconds": seconds / 10},
        },
    }


def test_newest_result_per_scale_drawn_on_log_axes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lines = [
        result(10, 1_500_000, 90.0, "old"),
        result(1, 150_000, 30.0, "a"),
        result(10, 1_500_000, 80.0, "new"),
    ]
    assert [r["commit"] for r in newest_by_scale(lines)] == ["a", "new"]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    out = tmp_path / "plot.svg"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    root = ET.parse(out).getroot()
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 4 * 2  # four series, two scales
    titles = [c.find(f"{SVG}title").text for c in circles]  # type: ignore[union-attr]
    assert (
        "pipeline (s): 80.0 at 1,500,000 rows" in titles
        and "pipeline (s): 90.0 at 1,500,000 rows" not in titles
    )
    # log axes: ten times the rows is one decade to the right, whatever the scale
    xs = sorted({float(c.get("cx", "0")) for c in circles})
    assert len(xs) == 2 and xs[1] > xs[0]
    printed = capsys.readouterr().out
    assert "N=  10   1,500,000 rows  pipeline     80.0 s" in printed and "(new)" in printed
