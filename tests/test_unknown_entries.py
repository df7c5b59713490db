"""An entry of the landing zone that belongs to no source (ledger source ``landing``) is a file of one
table, its name, and is rejected whole; asking which tables it holds never consults the contract."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flows.pipeline.extract import tables_of_file as _tables_of_file

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("source", "name", "tables"),
    [
        ("landing", "hr", ["hr"]),
        ("landing", "notes.txt", ["notes"]),
        ("registry", "registry/2021-01-01/enterprises.csv", ["enterprises"]),
        ("welfare", "welfare/2021-01-01/TJ01_202101.xlsx", ["condolence", "health_checks", "relief"]),
    ],
)
def test_the_tables_of_a_delivered_entry(source: str, name: str, tables: list[str]) -> None:
    assert sorted(_tables_of_file(source, SimpleNamespace(rel_name=name))) == tables  # type: ignore[arg-type]
