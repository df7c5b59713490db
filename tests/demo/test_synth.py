"""The demo landing zone: deterministic, in the contract's formats, with its plants."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sqlite3
from pathlib import Path

import pytest

from flows.checksums import is_valid_uscc
from flows.demo.synth import TARGETS, generate
from flows.sources.common import discover
from tests.support import ROOT

ENCODINGS = {
    "registry": "gb18030",
    "rights": "utf-8-sig",
    "finance": "gb18030",
    "events": "utf-8",
    "training": "utf-8",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    landing = tmp_path_factory.mktemp("demo") / "landing"
    return generate(landing, year=2021, seed=2021)


def digests(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_same_seed_same_bytes(demo, tmp_path: Path) -> None:
    again = generate(tmp_path / "landing", year=2021, seed=2021)
    assert digests(again.files, again.landing) == digests(demo.files, demo.landing)


def test_every_file_is_one_the_contract_knows_in_its_encoding(demo) -> None:
    for source in ("registry", "welfare", "training", "rights", "finance", "events"):
        found = discover(demo.landing, source)
        assert found and all(d.problem is None for d in found), source
        for d in found:
            if source in ENCODINGS:
                d.path.read_bytes().decode(ENCODINGS[source])
    assert (demo.landing / "members.sqlite").exists()
    assert (demo.landing / "rights" / "2021-04-01" / "cases.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_csv_rows_are_not_later_than_their_folder_except_the_planted_one(demo) -> None:
    late = 0
    for path in (demo.landing / "rights").glob("*/cases.csv"):
        folder = path.parent.name
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
            m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", row["受理日期"])
            if m and row["受理日期"] > folder:
                late += 1
    assert late == 1


def test_identifiers_are_valid_but_the_planted_ones(demo) -> None:
    path = demo.landing / "registry" / "2021-04-01" / "enterprises.csv"
    codes = [
        r["统一社会信用代码"].upper() for r in csv.DictReader(io.StringIO(path.read_text(encoding="gb18030")))
    ]
    assert sum(not is_valid_uscc(c) for c in codes) == 1
    con = sqlite3.connect(demo.landing / "members.sqlite")
    assert (
        con.execute("select count(*) from member_card where action_on like '2021-%'").fetchone()[0] == 36002
    )
    con.close()


def test_targets_are_inside_the_seed_ranges(demo, figure_catalogue: list[dict]) -> None:
    ranges = {f["id"]: f["seed_range"] for f in figure_catalogue}
    assert set(TARGETS) == set(ranges)
    for fid, value in TARGETS.items():
        assert ranges[fid][0] <= value <= ranges[fid][1], fid
    assert set(demo.audit) == {
        "budget_overrun",
        "unapproved_payment",
        "revoked_payee",
        "duplicate_relief",
        "reconciliation_gap",
    }
    assert len(demo.quarantine) >= 15
    assert (ROOT / "config" / "figures.yaml").exists()


def test_a_scaled_demo_is_n_copies_with_their_own_identifiers(tmp_path: Path, demo) -> None:
    """--scale 2: every file holds both copies' rows under one header, with no key shared by the
    copies; workbooks per station copy; members twice; budgets summed per project."""
    one = demo.landing
    two = tmp_path / "landing"
    manifest = generate(two, year=2021, seed=2021, scale=2)
    assert len(manifest.quarantine) == 2 * len(demo.quarantine)

    def rows(root: Path, rel: str, encoding: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO((root / rel).read_bytes().decode(encoding), newline="")))

    for rel, encoding, key in (
        ("rights/2021-07-01/cases.csv", "utf-8-sig", 0),
        ("finance/2021-07-01/vouchers.csv", "gb18030", 0),
        ("registry/2021-04-01/unions.csv", "gb18030", 0),
    ):
        a, b = rows(one, rel, encoding), rows(two, rel, encoding)
        assert b[0] == a[0] and len(b) - 1 > 2 * (len(a) - 1) * 0.9, (
            rel
        )  # copy 1's own random rows differ a little
        keys = [r[key] for r in b[1:]]
        assert len(set(keys)) == len(keys), rel
    assert (two / "rights/2021-07-01/cases.csv").read_bytes()[:3] == b"\xef\xbb\xbf"  # one BOM, at the start
    assert (two / "rights/2021-07-01/cases.csv").read_bytes().count(b"\xef\xbb\xbf") == 1
    books = sorted(p.name for p in (two / "welfare").rglob("*.xlsx"))
    assert len(books) == 2 * len(list((one / "welfare").rglob("*.xlsx")))
    assert "HG01_202103.xlsx" in books and "HG01-1_202103.xlsx" in books
    con = sqlite3.connect(two / "members.sqlite")
    assert con.execute("select count(*), count(distinct member_id) from member").fetchone() == (80002, 80002)
    assert con.execute("select count(distinct card_no) from member_card").fetchone()[0] == 78004
    con.close()
    budget_one = {r[1]: r[3] for r in rows(one, "finance/2021-04-01/budget.csv", "gb18030")[1:]}
    budget_two = {r[1]: r[3] for r in rows(two, "finance/2021-04-01/budget.csv", "gb18030")[1:]}
    assert budget_two["XMBZ"] == "240000.00" == f"{2 * float(budget_one['XMBZ']):.2f}"
    assert (two / "finance/2021-04-01/budget.csv").read_bytes() == (
        two / "finance/2021-10-01/budget.csv"
    ).read_bytes()
