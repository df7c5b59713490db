"""The source contract (config/contract-sources.md) as data.

Every reader, expectation suite, loader and dbt source reads its column names,
kinds and code lists from here, so the contract is stated once. Column names are
English snake_case; ``header`` is what the upstream file calls the column.

Kinds and their canonical text form (what readers produce and suites validate):

- ``text``         trimmed, NFKC-normalised text (full-width -> half-width)
- ``code``         as text, but must be one of ``allowed``
- ``uscc``         upper-cased 18-char USCC, GB 32100-2015 check character
- ``resident_id``  upper-cased 18-char resident ID, GB 11643-1999 check character
- ``union_code``   ``GH`` + 10 digits
- ``payee_code``   a USCC or a union code
- ``date``         ``YYYY-MM-DD``
- ``timestamp``    ``YYYY-MM-DD HH:MM:SS``
- ``int``          optional ``-`` then digits
- ``amount``       yuan as a plain decimal (``1234.5``); 万元 already converted
- ``bool``         ``true`` / ``false``
- ``phone``        11 digits
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""What a schema, table or column name interpolated into SQL may be: lower-case ASCII
letters, digits and underscores, not starting with a digit, at most 63 characters (the
PostgreSQL limit). Names never come from file headers (a header only selects which
contract column a value goes to; unknown headers are ignored); this guards the names that
reach SQL text from the contract, from settings and from code."""


def identifier(name: str) -> str:
    """``name`` if it is a safe SQL identifier (:data:`IDENTIFIER`), else a ConfigError."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        from flows.errors import ConfigError

        raise ConfigError(f"not a safe SQL identifier: {name!r} (allowed: lower-case letters, digits, "
                          "underscores; not starting with a digit; at most 63 characters)")
    return name


def relation(name: str) -> str:
    """``schema.table`` with both parts checked by :func:`identifier`."""
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) != 2:
        from flows.errors import ConfigError

        raise ConfigError(f"not a safe SQL identifier: {name!r} (expected schema.table)")
    return ".".join(identifier(p) for p in parts)

META_COLUMNS: tuple[str, ...] = (
    "_load_id",
    "_source",
    "_file_name",
    "_file_sha256",
    "_delivery_date",
    "_row_number",
)
"""Lineage columns on every raw row: the load, the file (path relative to the
landing zone), its SHA-256, the delivery folder's date and the 1-based line or
sheet row number of origin (the header is row 1 in CSV and xlsx)."""


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    kind: str
    required: bool = True
    allowed: tuple[str, ...] = ()
    min_value: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        identifier(self.name)


@dataclass(frozen=True)
class Table:
    source: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    file_pattern: str
    wins: str
    extra_columns: tuple[Column, ...] = field(default_factory=tuple)
    """Columns derived from the file name (welfare station and month)."""

    def __post_init__(self) -> None:
        for name in (self.source, self.name, self.raw_table, *self.key):
            identifier(name)

    @property
    def raw_table(self) -> str:
        return f"{self.source}__{self.name}"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.extra_columns + self.columns

    def column(self, name: str) -> Column:
        for col in self.all_columns:
            if col.name == name:
                return col
        raise KeyError(name)


ZONES = ("海港", "空港", "临港")
INDUSTRY_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRST")
ENTERPRISE_TAGS = ("百强", "科技领军")
UNION_FORMS = ("独立建会", "联合建会")
UNION_STATUSES = ("正常", "撤销")
EMPLOYMENT_FORMS = ("standard", "courier", "food_delivery", "truck_driver", "ride_hailing", "other")
CARD_ACTIONS = ("new", "renew")
CONDOLENCE_PROGRAMS = ("两节慰问", "外来建设者慰问", "特殊慰问", "新就业形态慰问", "疫情防控慰问")
RECIPIENT_CATEGORIES = (
    "不返乡职工", "农民工", "退役军人", "志愿者", "医护人员", "社区工作者",
    "快递员", "外卖员", "货车司机", "一线防控人员", "困难职工",
)
CONDOLENCE_FORMS = ("现金", "物资")
SESSION_MODES = ("online", "offline")
COMPETITION_LEVELS = ("city", "new_area", "zone")
COMPETITION_ROLES = ("host", "co_host")
CASE_TYPES = ("咨询", "劳动争议")
MEDIATION_RESULTS = ("成功", "不成功", "调解中", "撤回")
PROJECT_CODES = ("XMBZ", "LZJT", "YQWZ", "LJWW", "XJYW", "TJ", "JZ")
ACTIVITY_CATEGORIES = ("文体", "宣传", "安全", "疫情防控")
PARTICIPATION_MODES = ("举办", "参与")
HONOURS = (
    "五一劳动奖状", "五一劳动奖章", "工人先锋号", "优秀志愿者", "志愿者标兵", "优秀志愿服务团队",
    "安康杯优胜单位", "安康杯优胜班组", "安康杯优秀组织单位", "安康杯优秀组织个人",
    "市级先进个人", "市级先进集体",
)
HONOUR_LEVELS = ("区级", "新区级", "市级")

C = Column

TABLES: tuple[Table, ...] = (
    # ---------------------------------------------------------------- registry
    Table(
        "registry", "enterprises",
        (
            C("uscc", "统一社会信用代码", "uscc"),
            C("enterprise_name", "企业名称", "text"),
            C("zone", "所属片区", "code", allowed=ZONES),
            C("industry_section", "行业门类", "code", allowed=INDUSTRY_SECTIONS),
            C("employees", "职工人数", "int", min_value=0),
            C("tags", "企业标签", "text", required=False),
            C("registered_on", "注册日期", "date"),
            C("updated_at", "更新时间", "timestamp"),
        ),
        key=("uscc",), file_pattern="enterprises.csv", wins="latest updated_at",
    ),
    Table(
        "registry", "unions",
        (
            C("union_code", "工会编码", "union_code"),
            C("union_name", "工会名称", "text"),
            C("union_form", "建会形式", "code", allowed=UNION_FORMS),
            C("uscc", "统一社会信用代码", "uscc", required=False),
            C("founded_on", "成立日期", "date"),
            C("has_party_org", "党组织", "bool"),
            C("status", "状态", "code", allowed=UNION_STATUSES),
            C("revoked_on", "撤销日期", "date", required=False),
            C("updated_at", "更新时间", "timestamp"),
        ),
        key=("union_code",), file_pattern="unions.csv", wins="latest updated_at",
    ),
    Table(
        "registry", "coverage",
        (
            C("union_code", "工会编码", "union_code"),
            C("uscc", "统一社会信用代码", "uscc"),
            C("start_on", "起始日期", "date"),
            C("end_on", "终止日期", "date", required=False),
        ),
        key=("union_code", "uscc", "start_on"), file_pattern="coverage.csv", wins="latest delivery",
    ),
    # ----------------------------------------------------------------- members
    Table(
        "members", "member",
        (
            C("member_id", "member_id", "int", min_value=0),
            C("id_card", "id_card", "resident_id"),
            C("name", "name", "text"),
            C("phone", "phone", "phone", required=False),
            C("union_code", "union_code", "union_code"),
            C("employment_form", "employment_form", "code", allowed=EMPLOYMENT_FORMS),
            C("is_migrant", "is_migrant", "bool"),
            C("is_veteran", "is_veteran", "bool"),
            C("joined_on", "joined_on", "date"),
            C("updated_at", "updated_at", "timestamp"),
            C("deleted_at", "deleted_at", "timestamp", required=False),
        ),
        key=("member_id",), file_pattern="member", wins="latest updated_at",
    ),
    Table(
        "members", "member_card",
        (
            C("card_event_id", "card_event_id", "int", min_value=0),
            C("member_id", "member_id", "int", min_value=0),
            C("card_no", "card_no", "text"),
            C("action", "action", "code", allowed=CARD_ACTIONS),
            C("action_on", "action_on", "date"),
            C("updated_at", "updated_at", "timestamp"),
        ),
        key=("card_event_id",), file_pattern="member_card", wins="latest updated_at",
    ),
    # ----------------------------------------------------------------- welfare
    Table(
        "welfare", "condolence",
        (
            C("visit_date", "日期", "date"),
            C("program", "慰问项目", "code", allowed=CONDOLENCE_PROGRAMS),
            C("recipient_category", "对象类别", "code", allowed=RECIPIENT_CATEGORIES),
            C("name", "姓名", "text"),
            C("id_card", "身份证号", "resident_id", required=False),
            C("union_code", "所属工会编码", "union_code", required=False),
            C("form", "形式", "code", allowed=CONDOLENCE_FORMS),
            C("amount_yuan", "金额", "amount", min_value=0),
        ),
        key=("station_code", "ledger_month", "_row_number"),
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 慰问", wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    Table(
        "welfare", "health_checks",
        (
            C("check_date", "日期", "date"),
            C("name", "姓名", "text"),
            C("id_card", "身份证号", "resident_id"),
            C("recipient_category", "对象类别", "code", allowed=RECIPIENT_CATEGORIES),
            C("provider", "体检机构", "text"),
            C("fee_yuan", "费用", "amount", min_value=0),
        ),
        key=("station_code", "ledger_month", "_row_number"),
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 体检", wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    Table(
        "welfare", "relief",
        (
            C("relief_date", "日期", "date"),
            C("name", "姓名", "text"),
            C("id_card", "身份证号", "resident_id"),
            C("relief_category", "救助类别", "text"),
            C("amount_yuan", "金额", "amount", min_value=0),
            C("approval_no", "审批单号", "text"),
        ),
        key=("station_code", "ledger_month", "_row_number"),
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 救助", wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    # ---------------------------------------------------------------- training
    Table(
        "training", "sessions",
        (
            C("session_id", "session_id", "text"),
            C("title", "title", "text"),
            C("mode", "mode", "code", allowed=SESSION_MODES),
            C("start_date", "start_date", "date"),
            C("end_date", "end_date", "date"),
        ),
        key=("session_id",), file_pattern="sessions.jsonl", wins="latest delivery",
    ),
    Table(
        "training", "attendance",
        (
            C("session_id", "session_id", "text"),
            C("id_card", "id_card", "resident_id", required=False),
            C("name", "name", "text"),
            C("union_code", "union_code", "union_code"),
            C("registered", "registered", "bool"),
            C("attended", "attended", "bool"),
            C("replay_views", "replay_views", "int", min_value=0),
        ),
        key=("session_id", "id_card", "name"), file_pattern="attendance.jsonl", wins="latest delivery",
    ),
    Table(
        "training", "competitions",
        (
            C("competition_id", "competition_id", "text"),
            C("competition_name", "name", "text"),
            C("level", "level", "code", allowed=COMPETITION_LEVELS),
            C("role", "role", "code", allowed=COMPETITION_ROLES),
            C("start_date", "start_date", "date"),
            C("participants", "participants", "int", min_value=0),
        ),
        key=("competition_id",), file_pattern="competitions.jsonl", wins="latest delivery",
    ),
    # ------------------------------------------------------------------ rights
    Table(
        "rights", "cases",
        (
            C("case_no", "案件编号", "text"),
            C("case_type", "类型", "code", allowed=CASE_TYPES),
            C("received_on", "受理日期", "date"),
            C("uscc", "统一社会信用代码", "uscc", required=False),
            C("worker_id_card", "职工身份证号", "resident_id", required=False),
            C("mediation_result", "调解结果", "code", required=False, allowed=MEDIATION_RESULTS),
            C("closed_on", "结案日期", "date", required=False),
            C("recovered_yuan", "维权金额", "amount", required=False, min_value=0),
        ),
        key=("case_no",), file_pattern="cases.csv", wins="latest delivery",
    ),
    Table(
        "rights", "bargaining",
        (
            C("uscc", "统一社会信用代码", "uscc"),
            C("year", "年度", "int", min_value=1949),
            C("bargained", "开展集体协商", "bool"),
            C("evaluated", "质效评估", "bool"),
            C("mechanism_established", "建立协商机制", "bool"),
            C("wage_agreement_signed", "签订工资协议", "bool"),
            C("agreement_signed_on", "协议签订日期", "date", required=False),
            C("entered_on", "录入日期", "date"),
        ),
        key=("uscc", "year"), file_pattern="bargaining.csv", wins="latest delivery",
    ),
    # ----------------------------------------------------------------- finance
    Table(
        "finance", "vouchers",
        (
            C("voucher_no", "凭证号", "text"),
            C("line_no", "行号", "int", min_value=1),
            C("posted_on", "记账日期", "date"),
            C("account_code", "科目编码", "text"),
            C("account_name", "科目名称", "text"),
            C("summary", "摘要", "text"),
            C("debit_yuan", "借方金额", "amount", min_value=0),
            C("credit_yuan", "贷方金额", "amount"),
            C("project_code", "项目编码", "code", allowed=PROJECT_CODES),
            C("payee_code", "收款方编码", "payee_code", required=False),
            C("approval_no", "审批单号", "text", required=False),
        ),
        key=("voucher_no", "line_no"), file_pattern="vouchers.csv", wins="latest delivery",
    ),
    Table(
        "finance", "budget",
        (
            C("year", "年度", "int", min_value=1949),
            C("project_code", "项目编码", "code", allowed=PROJECT_CODES),
            C("project_name", "项目名称", "text"),
            C("budget_yuan", "预算金额", "amount", min_value=0),
        ),
        key=("year", "project_code"), file_pattern="budget.csv", wins="latest delivery",
    ),
    # ------------------------------------------------------------------ events
    Table(
        "events", "activities",
        (
            C("activity_id", "活动编号", "text"),
            C("activity_name", "名称", "text"),
            C("category", "类别", "code", allowed=ACTIVITY_CATEGORIES),
            C("activity_date", "日期", "date"),
            C("participation", "参与方式", "code", allowed=PARTICIPATION_MODES),
            C("participants", "参与人次", "int", min_value=0),
        ),
        key=("activity_id",), file_pattern="activities.csv", wins="latest delivery",
    ),
    Table(
        "events", "honours",
        (
            C("honour_id", "荣誉编号", "text"),
            C("year", "年度", "int", min_value=1949),
            C("honour", "荣誉", "code", allowed=HONOURS),
            C("level", "级别", "code", allowed=HONOUR_LEVELS),
            C("recipient", "获奖对象", "text"),
        ),
        key=("honour_id",), file_pattern="honours.csv", wins="latest delivery",
    ),
)

FILE_SOURCES: tuple[str, ...] = ("registry", "welfare", "training", "rights", "finance", "events")
SOURCES: tuple[str, ...] = FILE_SOURCES + ("members",)

ENCODINGS: dict[str, str] = {
    "registry": "gb18030",
    "rights": "utf-8-sig",
    "finance": "gb18030",
    "events": "utf-8",
    "training": "utf-8",
}

WELFARE_SHEETS: dict[str, str] = {"慰问": "condolence", "体检": "health_checks", "救助": "relief"}


def table(source: str, name: str) -> Table:
    for t in TABLES:
        if t.source == source and t.name == name:
            return t
    raise KeyError(f"{source}.{name}")


def tables_of(source: str) -> tuple[Table, ...]:
    return tuple(t for t in TABLES if t.source == source)
