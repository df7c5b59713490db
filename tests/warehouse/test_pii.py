"""Keyed pseudonyms and the pseudonymisation key: real files, a real DuckDB warehouse."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import polars as pl
import pytest

from flows.errors import ConfigError
from flows.schema import table
from flows.settings import load_settings
from flows.warehouse import pii
from flows.warehouse.ddl import personal_columns
from flows.warehouse.engine import init_warehouse, warehouse_engine

pytestmark = pytest.mark.unit

KEY = b"k" * 32
ID = "120105199003071234"


def test_personal_columns_are_ids_phones_and_names() -> None:
    assert personal_columns(table("members", "member")) == ("id_card", "name", "phone")
    assert personal_columns(table("rights", "cases")) == ("worker_id_card",)
    assert personal_columns(table("training", "competitions")) == ()  # its "name" is a competition's
    assert personal_columns(table("events", "honours")) == ("recipient",)


def test_pseudonyms_are_hmac_sha256_of_the_value() -> None:
    t = table("welfare", "relief")
    frame = pl.DataFrame(
        {"name": ["张三", None, "张三"], "id_card": [ID, None, ID], "amount_yuan": ["1", "2", "3"]}
    )
    out = pii.pseudonymise(frame, t, KEY)
    assert out.columns == [*frame.columns, "name_pseudonym", "id_card_pseudonym"]
    expected = hmac.new(KEY, ID.encode(), hashlib.sha256).hexdigest()
    assert out["id_card_pseudonym"].to_list() == [expected, None, expected]
    assert out["name_pseudonym"][0] != out["id_card_pseudonym"][0]
    other = pii.pseudonymise(frame, t, b"x" * 32)
    assert other["id_card_pseudonym"][0] != expected  # another key, another pseudonym
    assert ID not in out["id_card_pseudonym"][0]


def test_embedded_warehouse_creates_a_private_key_once(tmp_path: Path) -> None:
    settings = load_settings(warehouse=f"duckdb:///{tmp_path / 'wh' / 'w.duckdb'}")
    with pytest.raises(ConfigError, match="no pseudonymisation key"):
        pii.resolve_key(settings)
    key, notice = pii.resolve_key(settings, create=True)
    path = tmp_path / "wh" / "pii.key"
    assert notice is not None and str(path) in notice and key.decode() not in notice
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64
    assert pii.resolve_key(settings, create=True) == (key, None)


def test_configured_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    base = {"warehouse": f"duckdb:///{tmp_path / 'w.duckdb'}"}
    assert pii.resolve_key(load_settings(pii_key="s" * 20, **base)) == (b"s" * 20, None)
    assert not (tmp_path / "pii.key").exists()
    with pytest.raises(ConfigError, match="at least 16"):
        pii.resolve_key(load_settings(pii_key="short", **base))


def test_postgres_without_a_key_refuses_to_start() -> None:
    settings = load_settings(warehouse="postgresql://postgres@127.0.0.1:5432/x")
    with pytest.raises(ConfigError, match="needs a pseudonymisation key"):
        pii.resolve_key(settings, create=True)


def test_a_warehouse_refuses_a_different_key(tmp_path: Path) -> None:
    engine = warehouse_engine(load_settings(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}"))
    try:
        init_warehouse(engine)
        pii.check_fingerprint(engine, KEY)
        pii.check_fingerprint(engine, KEY)
        with pytest.raises(ConfigError, match="differs"):
            pii.check_fingerprint(engine, b"other key, same warehouse")
    finally:
        engine.dispose()


def test_backfill_fills_rows_loaded_before_pseudonyms(tmp_path: Path) -> None:
    """A warehouse loaded before pseudonymisation: its rows get their pseudonyms, once."""
    import sqlalchemy as sa

    engine = warehouse_engine(load_settings(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}"))
    try:
        init_warehouse(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "insert into raw.events__honours (honour_id, year, honour, level, recipient, _load_id, _source, "
                    "_file_name, _file_sha256, _delivery_date, _row_number) values "
                    "('H1', 2021, '优秀志愿者', '区级', '张三', 'l', 'events', 'f', 'h', DATE '2021-12-31', 2), "
                    "('H2', 2021, '优秀志愿者', '区级', null, 'l', 'events', 'f', 'h', DATE '2021-12-31', 3)"
                )
            )
        assert pii.backfill(engine, KEY) == 1
        assert pii.backfill(engine, KEY) == 0
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("select recipient_pseudonym from raw.events__honours order by honour_id")
            ).all()
        assert [r[0] for r in rows] == [pii.pseudonym(KEY, "张三"), None]
    finally:
        engine.dispose()
