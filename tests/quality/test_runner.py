"""Real Great Expectations validations of canonical frames, rule by rule."""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.checksums import resident_id_check_char, uscc_check_char
from flows.quality.runner import validate, validate_files
from flows.quality.suites import SUITE_DIR, build_suite, load_suite_dict
from flows.schema import META_COLUMNS, TABLES, table

pytestmark = pytest.mark.unit

GOOD_USCC = "91120116MA05K8XQ3" + uscc_check_char("91120116MA05K8XQ3")
BAD_USCC = GOOD_USCC[:17] + ("0" if GOOD_USCC[17] != "0" else "1")
GOOD_ID = "12010519900307123" + resident_id_check_char("12010519900307123")
BAD_DATE_ID = "12010519900230123" + resident_id_check_char("12010519900230123")


def canonical(
    t_source: str,
    t_name: str,
    rows: list[dict[str, str | None]],
    delivery: str = "2021-06-30",
    unique_key: str | None = None,
):
    """A reader-like canonical frame; ``unique_key`` gives each row its own key value."""
    t = table(t_source, t_name)
    if unique_key:
        rows = [
            r | {unique_key: f"{r[unique_key]}-{i}"} if r.get(unique_key) else r for i, r in enumerate(rows)
        ]
    cols = [c.name for c in t.all_columns]
    data = {c: [r.get(c) for r in rows] for c in cols}
    n = len(rows)
    data |= {
        "_source": [t_source] * n,
        "_file_name": ["f.csv"] * n,
        "_file_sha256": ["0" * 64] * n,
        "_delivery_date": [delivery] * n,
        "_row_number": list(range(2, n + 2)),
        "_parse_error": [r.get("_parse_error") for r in rows],
        "_original": ["{}"] * n,
    }
    schema = {c: pl.String for c in data} | {"_row_number": pl.Int64}
    return pl.DataFrame(data, schema=schema), t


def case(**over: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "case_no": "C1",
        "case_type": "咨询",
        "received_on": "2021-03-05",
        "uscc": None,
        "worker_id_card": None,
        "mediation_result": None,
        "closed_on": None,
        "recovered_yuan": None,
    }
    row.update(over)
    return row


def rules_by_row(result) -> dict[int, set[str]]:
    return {r["_row_number"]: set(r["rules"].split(";")) for r in result.quarantined.iter_rows(named=True)}


def test_each_rule_quarantines_exactly_the_breaking_rows() -> None:
    rows = [
        case(),  # 2 ok
        case(uscc=GOOD_USCC, worker_id_card=GOOD_ID),  # 3 ok
        case(uscc=BAD_USCC),  # 4 check char
        case(worker_id_card=BAD_DATE_ID),  # 5 impossible birth date
        case(received_on="2021-02-30"),  # 6 not a calendar date
        case(received_on="2021-07-01"),  # 7 after delivery
        case(case_type="投诉"),  # 8 unknown code
        case(case_no=None),  # 9 required
        case(case_type="劳动争议", mediation_result="成功"),  # 10 amount missing
        case(case_type="劳动争议", mediation_result="成功", recovered_yuan="-5"),  # 11 negative
        case(case_type="劳动争议", mediation_result="调解中", recovered_yuan="12"),  # 12 amount not allowed
        case(case_type="劳动争议", mediation_result="成功", recovered_yuan="1200.50"),  # 13 ok
        case(
            _parse_error="row has 3 fields, header has 8", case_no=None, case_type=None, received_on=None
        ),  # 14
        case(received_on="1948-12-31"),  # 15 before 1949
    ]
    frame, t = canonical("rights", "cases", rows, unique_key="case_no")
    result = validate(frame, t, "rights/2021-06-30/cases.csv")
    got = rules_by_row(result)
    assert sorted(result.passed["_row_number"].to_list()) == [2, 3, 13]
    assert got[4] == {"uscc.uscc"}
    assert got[5] == {"worker_id_card.resident_id"}
    assert got[6] == {"received_on.date_format"}
    assert got[7] == {"received_on.after_delivery"}
    assert got[8] == {"case_type.allowed_values"}
    assert got[9] == {"case_no.required"}
    assert got[10] == {"recovered_yuan.required_when_successful"}
    assert got[11] == {"recovered_yuan.amount"}
    assert got[12] == {"recovered_yuan.only_when_successful"}
    assert {"row.parse", "case_no.required", "case_type.required", "received_on.required"} <= got[14]
    assert got[15] == {"received_on.before_1949"}
    assert result.passed.height + result.quarantined.height == frame.height


def test_a_row_breaking_several_rules_lists_them_all_with_reasons() -> None:
    frame, t = canonical("rights", "cases", [case(uscc=BAD_USCC, received_on="abc", case_type="x")])
    result = validate(frame, t, "f")
    row = result.quarantined.row(0, named=True)
    assert set(row["rules"].split(";")) == {
        "uscc.uscc",
        "received_on.date_format",
        "case_type.allowed_values",
    }
    reasons = json.loads(row["reasons"])
    assert {r["rule"] for r in reasons} == set(row["rules"].split(";"))
    assert all(r["en"] and r["zh"] for r in reasons)


def test_conditional_union_rules() -> None:
    base = {
        "union_code": "GH0000000001",
        "union_name": "某工会",
        "union_form": "独立建会",
        "uscc": GOOD_USCC,
        "founded_on": "2020-01-01",
        "has_party_org": "true",
        "status": "正常",
        "revoked_on": None,
        "updated_at": "2021-01-01 08:00:00",
    }
    rows = [
        base,
        base | {"uscc": None},  # 3 independent without USCC
        base | {"union_form": "联合建会"},  # 4 joint with USCC
        base | {"status": "撤销"},  # 5 revoked without date
        base | {"revoked_on": "2021-01-01"},  # 6 date but not revoked
        base | {"union_code": "GH123"},  # 7 bad union code
        base | {"has_party_org": "yes"},  # 8 not a boolean
        base | {"updated_at": "2021-07-01 00:00:01"},  # 9 after delivery
        base | {"updated_at": "2021-06-30 23:59:59"},  # 10 same day: fine
    ]
    frame, t = canonical(
        "registry",
        "unions",
        [
            r | {"union_code": r["union_code"][:-2] + f"{i:02d}"} if len(r["union_code"]) == 12 else r
            for i, r in enumerate(rows)
        ],
    )
    got = rules_by_row(validate(frame, t, "f"))
    assert got == {
        3: {"uscc.required_for_independent"},
        4: {"uscc.blank_for_joint"},
        5: {"revoked_on.required_when_revoked"},
        6: {"revoked_on.blank_unless_revoked"},
        7: {"union_code.union_code"},
        8: {"has_party_org.boolean"},
        9: {"updated_at.after_delivery"},
    }


def test_numbers_and_payee_codes_in_vouchers() -> None:
    base = {
        "voucher_no": "V1",
        "line_no": "1",
        "posted_on": "2021-05-01",
        "account_code": "5001",
        "account_name": "业务支出",
        "summary": "补助",
        "debit_yuan": "100.00",
        "credit_yuan": "0",
        "project_code": "XMBZ",
        "payee_code": GOOD_USCC,
        "approval_no": None,
    }
    rows = [
        base,
        base | {"payee_code": "GH0000000002"},
        base | {"payee_code": "XYZ"},
        base | {"line_no": "1.5"},
        base | {"debit_yuan": "-1"},
        base | {"credit_yuan": "-30.5"},
        base | {"project_code": "ABCD"},
    ]
    frame, t = canonical("finance", "vouchers", rows, unique_key="voucher_no")
    got = rules_by_row(validate(frame, t, "f"))
    assert got == {
        4: {"payee_code.payee_code"},
        5: {"line_no.integer"},
        6: {"debit_yuan.amount"},
        8: {"project_code.allowed_values"},
    }


def test_empty_frame_validates_to_nothing() -> None:
    frame, t = canonical("events", "honours", [])
    result = validate(frame, t, "f")
    assert result.passed.height == 0 and result.quarantined.height == 0


def test_stored_suites_cover_every_contract_column() -> None:
    for t in TABLES:
        stored = load_suite_dict(t)
        assert stored == build_suite(t), f"{t.source}.{t.name}: rerun python -m flows.quality.suites"
        columns = {e["kwargs"].get("column") or e["kwargs"].get("column_A") for e in stored["expectations"]}
        columns |= {c for e in stored["expectations"] for c in e["kwargs"].get("column_list", [])}
        for c in t.columns:
            if c.kind == "text" and not c.required:
                continue  # free text that may be blank: nothing to check
            assert c.name in columns, f"{t.source}.{t.name}.{c.name} has no expectation"
        assert all(
            e["meta"]["rule"] and e["meta"]["reason_en"] and e["meta"]["reason_zh"]
            for e in stored["expectations"]
        )
    assert len(list(SUITE_DIR.glob("*.json"))) == len(TABLES)
    assert META_COLUMNS[0] == "_load_id"


@pytest.mark.parametrize(
    "value,ok", [("2021-03-05 08:00:00", True), ("2021-13-05 08:00:00", False), ("2021-03-05", False)]
)
def test_timestamp_format(value: str, ok: bool) -> None:
    row = {
        "uscc": GOOD_USCC,
        "enterprise_name": "某公司",
        "zone": "海港",
        "industry_section": "C",
        "employees": "10",
        "tags": "百强、科技领军",
        "registered_on": "2020-01-01",
        "updated_at": value,
    }
    frame, t = canonical("registry", "enterprises", [row])
    assert validate(frame, t, "f").passed.height == (1 if ok else 0)


def test_duplicate_keys_in_one_delivery_are_all_quarantined() -> None:
    row = {
        "session_id": "S1",
        "id_card": None,
        "name": "张三",
        "union_code": "GH0000000001",
        "registered": "true",
        "attended": "false",
        "replay_views": "0",
    }
    rows = [row, row | {"name": "李四"}, row | {"replay_views": "3"}, row | {"id_card": GOOD_ID}]
    frame, t = canonical("training", "attendance", rows)
    got = rules_by_row(validate(frame, t, "f"))
    assert got == {2: {"key.unique_in_delivery"}, 4: {"key.unique_in_delivery"}}


def test_rows_without_any_part_of_a_compound_key_do_not_share_a_key() -> None:
    """Garbled rows (every key part blank) have no key: they break their own rules, and never
    count as duplicates of each other (which would push a file over the duplicate gate)."""
    row = {
        "session_id": "S1",
        "id_card": None,
        "name": "张三",
        "union_code": "GH0000000001",
        "registered": "true",
        "attended": "false",
        "replay_views": "0",
    }
    blank = row | {"session_id": None, "name": None}  # (the key: session, ID number, name)
    frame, t = canonical("training", "attendance", [row, blank, blank | {"replay_views": "2"}, blank])
    got = rules_by_row(validate(frame, t, "f"))
    assert set(got) == {3, 4, 5}
    assert all("key.unique_in_delivery" not in rules and rules for rules in got.values()), got


def test_key_uniqueness_holds_across_chunks() -> None:
    """A file larger than one validation chunk: a key repeated far apart is still caught, and
    every row is in exactly one chunk."""
    rows = [case(case_no=f"C{i:03d}") for i in range(40)]
    rows[39]["case_no"] = "C000"  # same key as the first row, 39 rows later
    frame, t = canonical("rights", "cases", rows)
    result = validate(frame, t, "f", chunk_rows=7)
    assert len(result.ge_results) >= 5
    assert rules_by_row(result) == {2: {"key.unique_in_delivery"}, 41: {"key.unique_in_delivery"}}
    assert result.passed.height == 38


def test_several_files_validated_at_once_equal_each_file_alone() -> None:
    """The nightly run validates all files of a table in one go: a key may recur across
    deliveries (latest wins) but not within one, and each file gets exactly its own rows."""
    first, t = canonical(
        "rights",
        "cases",
        [case(case_no="C1"), case(case_no="C2"), case(case_no="C2"), case(case_no="C3", uscc="bad")],
    )
    second, _ = canonical("rights", "cases", [case(case_no="C1"), case(case_no="C2")], delivery="2021-09-30")
    second = second.with_columns(pl.lit("g.csv").alias("_file_name"))
    together, ge_results = validate_files([first, second], t, "2 files")
    alone = [validate(first, t, "f.csv"), validate(second, t, "g.csv")]
    assert len(ge_results) == 1
    for got, want in zip(together, alone, strict=True):
        assert rules_by_row(got) == rules_by_row(want)
        assert got.passed.sort("_row_number").equals(want.passed.sort("_row_number"))
        assert got.failures_by_rule == want.failures_by_rule
    assert rules_by_row(together[0]) == {
        3: {"key.unique_in_delivery"},
        4: {"key.unique_in_delivery"},
        5: {"uscc.uscc"},
    }
    assert rules_by_row(together[1]) == {} and together[1].passed.height == 2
