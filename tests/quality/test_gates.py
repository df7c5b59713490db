from __future__ import annotations

import pytest

from flows.quality.gates import delivery_kind, duplicate_gate, row_count_gate

pytestmark = pytest.mark.unit


def test_delivery_kind() -> None:
    assert delivery_kind("welfare/2021-03-31/ST01_202103.xlsx") == "ST01"
    assert delivery_kind("registry/2021-03-31/enterprises.csv") == "enterprises.csv"
    assert delivery_kind("members/member") == "member"


def test_duplicate_gate_trips_above_the_share_only() -> None:
    assert duplicate_gate(100, {"key.unique_in_delivery": 5}, 0.05) is None
    msg = duplicate_gate(100, {"key.unique_in_delivery": 6}, 0.05)
    assert msg is not None and "6 of 100" in msg
    assert duplicate_gate(0, {}, 0.05) is None


def test_row_count_gate() -> None:
    assert row_count_gate(10, 100, None) is None  # off by default
    assert row_count_gate(10, None, 0.5) is None  # first delivery of its kind
    assert row_count_gate(50, 100, 0.5) is None
    msg = row_count_gate(49, 100, 0.5)
    assert msg is not None and "49 rows" in msg
