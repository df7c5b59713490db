"""events — activities and honours: activities.csv, honours.csv (CSV, UTF-8).

One file holds one table (the one its name gives); see config/contract-sources.md.
"""

from __future__ import annotations

import polars as pl

from flows.sources import common

SOURCE = "events"


def read(delivery: common.Delivery) -> dict[str, pl.DataFrame]:
    """Table name -> canonical frame of one delivered file; BatchError for batch-level problems."""
    return common.read_csv_source(delivery, SOURCE)


def read_pending(delivery: common.Delivery) -> dict[str, common.PendingFrame]:
    """:func:`read`, the frames not yet canonical (the extract canonicalises a slice of files at once)."""
    return common.read_csv_source_pending(delivery, SOURCE)
