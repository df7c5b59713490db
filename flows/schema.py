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

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from flows.errors import ConfigError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""What a schema, table or column name interpolated into SQL may be: lower-case ASCII
letters, digits and underscores, not starting with a digit, at most 63 characters (the
PostgreSQL limit). Names never come from file headers (a header only selects which
contract column a value goes to; unknown headers are ignored); this guards the names that
reach SQL text from the contract, from settings and from code."""


def identifier(name: str) -> str:
    """``name`` if it is a safe SQL identifier (:data:`IDENTIFIER`), else a ConfigError."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ConfigError(
            f"not a safe SQL identifier: {name!r} (allowed: lower-case letters, digits, "
            "underscores; not starting with a digit; at most 63 characters)"
        )
    return name


def relation(name: str) -> str:
    """``schema.table`` with both parts checked by :func:`identifier`."""
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) != 2:
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
class Rule:
    """A rule that ties one column to another, as data: the Great Expectations expectation
    that checks it (``expectation`` and its arguments ``args``, in order), the stable rule id
    the quarantine records, and the reasons a person reads. flows/quality/suites.py writes it
    into the table's suite (a ``row_condition`` is read by pandas' query parser)."""

    id: str
    expectation: str
    en: str
    zh: str
    args: tuple[tuple[str, Any], ...] = ()


def rule(id: str, expectation: str, en: str, zh: str, **args: Any) -> Rule:
    """A :class:`Rule`; its arguments keep the order given."""
    return Rule(id, expectation, en, zh, tuple(args.items()))


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
    rules: tuple[Rule, ...] = ()
    """Rules that tie one column to another (the contract's 'required for …' clauses)."""

    def __post_init__(self) -> None:
        for name in (self.source, self.name, self.raw_table, *self.key):
            identifier(name)

    @property
    def unique_key(self) -> tuple[str, ...]:
        """The columns a row's key is made of, unique within a delivered file; empty when the
        rows have no key of their own (a source whose newer file replaces the older one: its
        rows are replaced with their file, every row counts)."""
        return () if source(self.source).replace == FILE_REPLACES else self.key

    @property
    def row_key_columns(self) -> tuple[str, ...]:
        """What a quarantined row's ``row_key`` (and dbt's listed keys) is built from: the
        unique key, or for a file-replaced source the fields of its file name (welfare:
        station and month)."""
        src = source(self.source)
        return src.file_fields if src.replace == FILE_REPLACES else self.key

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
_TAG = "|".join(map(re.escape, ENTERPRISE_TAGS))
UNION_FORMS = ("独立建会", "联合建会")
UNION_STATUSES = ("正常", "撤销")
EMPLOYMENT_FORMS = ("standard", "courier", "food_delivery", "truck_driver", "ride_hailing", "other")
CARD_ACTIONS = ("new", "renew")
CONDOLENCE_PROGRAMS = ("两节慰问", "外来建设者慰问", "特殊慰问", "新就业形态慰问", "疫情防控慰问")
RECIPIENT_CATEGORIES = (
    "不返乡职工",
    "农民工",
    "退役军人",
    "志愿者",
    "医护人员",
    "社区工作者",
    "快递员",
    "外卖员",
    "货车司机",
    "一线防控人员",
    "困难职工",
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
    "五一劳动奖状",
    "五一劳动奖章",
    "工人先锋号",
    "优秀志愿者",
    "志愿者标兵",
    "优秀志愿服务团队",
    "安康杯优胜单位",
    "安康杯优胜班组",
    "安康杯优秀组织单位",
    "安康杯优秀组织个人",
    "市级先进个人",
    "市级先进集体",
)
HONOUR_LEVELS = ("区级", "新区级", "市级")

C = Column

TABLES: tuple[Table, ...] = (
    # ---------------------------------------------------------------- registry
    Table(
        "registry",
        "enterprises",
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
        key=("uscc",),
        file_pattern="enterprises.csv",
        wins="latest updated_at",
        rules=(
            rule(
                "tags.allowed_values",
                "expect_column_values_to_match_regex",
                f"企业标签 must be blank or tags from {'、'.join(ENTERPRISE_TAGS)} joined by 、",
                f"企业标签应为空或由{'、'.join(ENTERPRISE_TAGS)}以、连接",
                column="tags",
                regex=f"^(?:{_TAG})(?:、(?:{_TAG}))*$",
            ),
        ),
    ),
    Table(
        "registry",
        "unions",
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
        key=("union_code",),
        file_pattern="unions.csv",
        wins="latest updated_at",
        rules=(
            rule(
                "uscc.required_for_independent",
                "expect_column_values_to_not_be_null",
                "统一社会信用代码 is required for 独立建会",
                "独立建会必须填写统一社会信用代码",
                column="uscc",
                row_condition='union_form=="独立建会"',
            ),
            rule(
                "uscc.blank_for_joint",
                "expect_column_values_to_be_null",
                "统一社会信用代码 must be blank for 联合建会",
                "联合建会的统一社会信用代码应为空",
                column="uscc",
                row_condition='union_form=="联合建会"',
            ),
            rule(
                "revoked_on.required_when_revoked",
                "expect_column_values_to_not_be_null",
                "撤销日期 is required when 状态 is 撤销",
                "状态为撤销时必须填写撤销日期",
                column="revoked_on",
                row_condition='status=="撤销"',
            ),
            rule(
                "revoked_on.blank_unless_revoked",
                "expect_column_values_to_be_null",
                "撤销日期 must be blank unless 状态 is 撤销",
                "状态不是撤销时撤销日期应为空",
                column="revoked_on",
                row_condition='status=="正常"',
            ),
        ),
    ),
    Table(
        "registry",
        "coverage",
        (
            C("union_code", "工会编码", "union_code"),
            C("uscc", "统一社会信用代码", "uscc"),
            C("start_on", "起始日期", "date"),
            C("end_on", "终止日期", "date", required=False),
        ),
        key=("union_code", "uscc", "start_on"),
        file_pattern="coverage.csv",
        wins="latest delivery",
    ),
    # ----------------------------------------------------------------- members
    Table(
        "members",
        "member",
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
        key=("member_id",),
        file_pattern="member",
        wins="latest updated_at",
    ),
    Table(
        "members",
        "member_card",
        (
            C("card_event_id", "card_event_id", "int", min_value=0),
            C("member_id", "member_id", "int", min_value=0),
            C("card_no", "card_no", "text"),
            C("action", "action", "code", allowed=CARD_ACTIONS),
            C("action_on", "action_on", "date"),
            C("updated_at", "updated_at", "timestamp"),
        ),
        key=("card_event_id",),
        file_pattern="member_card",
        wins="latest updated_at",
    ),
    # ----------------------------------------------------------------- welfare
    Table(
        "welfare",
        "condolence",
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
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 慰问",
        wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    Table(
        "welfare",
        "health_checks",
        (
            C("check_date", "日期", "date"),
            C("name", "姓名", "text"),
            C("id_card", "身份证号", "resident_id"),
            C("recipient_category", "对象类别", "code", allowed=RECIPIENT_CATEGORIES),
            C("provider", "体检机构", "text"),
            C("fee_yuan", "费用", "amount", min_value=0),
        ),
        key=("station_code", "ledger_month", "_row_number"),
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 体检",
        wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    Table(
        "welfare",
        "relief",
        (
            C("relief_date", "日期", "date"),
            C("name", "姓名", "text"),
            C("id_card", "身份证号", "resident_id"),
            C("relief_category", "救助类别", "text"),
            C("amount_yuan", "金额", "amount", min_value=0),
            C("approval_no", "审批单号", "text"),
        ),
        key=("station_code", "ledger_month", "_row_number"),
        file_pattern="<station-code>_<YYYYMM>.xlsx sheet 救助",
        wins="workbook replaces",
        extra_columns=(
            C("station_code", "", "text"),
            C("ledger_month", "", "text"),
        ),
    ),
    # ---------------------------------------------------------------- training
    Table(
        "training",
        "sessions",
        (
            C("session_id", "session_id", "text"),
            C("title", "title", "text"),
            C("mode", "mode", "code", allowed=SESSION_MODES),
            C("start_date", "start_date", "date"),
            C("end_date", "end_date", "date"),
        ),
        key=("session_id",),
        file_pattern="sessions.jsonl",
        wins="latest delivery",
        rules=(
            rule(
                "start_date.not_after_end_date",
                "expect_column_pair_values_to_be_date_not_after",
                "start_date is later than end_date",
                "开始日期晚于结束日期",
                column_A="start_date",
                column_B="end_date",
            ),
        ),
    ),
    Table(
        "training",
        "attendance",
        (
            C("session_id", "session_id", "text"),
            C("id_card", "id_card", "resident_id", required=False),
            C("name", "name", "text"),
            C("union_code", "union_code", "union_code"),
            C("registered", "registered", "bool"),
            C("attended", "attended", "bool"),
            C("replay_views", "replay_views", "int", min_value=0),
        ),
        key=("session_id", "id_card", "name"),
        file_pattern="attendance.jsonl",
        wins="latest delivery",
    ),
    Table(
        "training",
        "competitions",
        (
            C("competition_id", "competition_id", "text"),
            C("competition_name", "name", "text"),
            C("level", "level", "code", allowed=COMPETITION_LEVELS),
            C("role", "role", "code", allowed=COMPETITION_ROLES),
            C("start_date", "start_date", "date"),
            C("participants", "participants", "int", min_value=0),
        ),
        key=("competition_id",),
        file_pattern="competitions.jsonl",
        wins="latest delivery",
    ),
    # ------------------------------------------------------------------ rights
    Table(
        "rights",
        "cases",
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
        key=("case_no",),
        file_pattern="cases.csv",
        wins="latest delivery",
        rules=(
            rule(
                "mediation_result.required_for_dispute",
                "expect_column_values_to_not_be_null",
                "调解结果 is required for 劳动争议",
                "劳动争议必须填写调解结果",
                column="mediation_result",
                row_condition='case_type=="劳动争议"',
            ),
            rule(
                "mediation_result.blank_for_consultation",
                "expect_column_values_to_be_null",
                "调解结果 must be blank for 咨询",
                "咨询案件不应填写调解结果",
                column="mediation_result",
                row_condition='case_type=="咨询"',
            ),
            rule(
                "recovered_yuan.required_when_successful",
                "expect_column_values_to_not_be_null",
                "维权金额 is required when 调解结果 is 成功",
                "调解成功必须填写维权金额",
                column="recovered_yuan",
                row_condition='mediation_result=="成功"',
            ),
            rule(
                "recovered_yuan.only_when_successful",
                "expect_column_values_to_match_regex",
                "维权金额 must be blank or 0 unless 调解结果 is 成功",
                "调解结果不是成功时维权金额应为空或0",
                column="recovered_yuan",
                regex=r"^0+(?:\.0+)?$",
                row_condition='mediation_result!="成功"',
            ),
        ),
    ),
    Table(
        "rights",
        "bargaining",
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
        key=("uscc", "year"),
        file_pattern="bargaining.csv",
        wins="latest delivery",
    ),
    # ----------------------------------------------------------------- finance
    Table(
        "finance",
        "vouchers",
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
        key=("voucher_no", "line_no"),
        file_pattern="vouchers.csv",
        wins="latest delivery",
    ),
    Table(
        "finance",
        "budget",
        (
            C("year", "年度", "int", min_value=1949),
            C("project_code", "项目编码", "code", allowed=PROJECT_CODES),
            C("project_name", "项目名称", "text"),
            C("budget_yuan", "预算金额", "amount", min_value=0),
        ),
        key=("year", "project_code"),
        file_pattern="budget.csv",
        wins="latest delivery",
    ),
    # ------------------------------------------------------------------ events
    Table(
        "events",
        "activities",
        (
            C("activity_id", "活动编号", "text"),
            C("activity_name", "名称", "text"),
            C("category", "类别", "code", allowed=ACTIVITY_CATEGORIES),
            C("activity_date", "日期", "date"),
            C("participation", "参与方式", "code", allowed=PARTICIPATION_MODES),
            C("participants", "参与人次", "int", min_value=0),
        ),
        key=("activity_id",),
        file_pattern="activities.csv",
        wins="latest delivery",
    ),
    Table(
        "events",
        "honours",
        (
            C("honour_id", "荣誉编号", "text"),
            C("year", "年度", "int", min_value=1949),
            C("honour", "荣誉", "code", allowed=HONOURS),
            C("level", "级别", "code", allowed=HONOUR_LEVELS),
            C("recipient", "获奖对象", "text"),
        ),
        key=("honour_id",),
        file_pattern="honours.csv",
        wins="latest delivery",
    ),
)

# ------------------------------------------------------------------ sources
FILES = "files"
DATABASE = "database"
"""Delivery kinds: dated folders of files in the landing zone, or a database pulled incrementally."""
BY_KEY = "later deliveries win per key"
FILE_REPLACES = "a newer file replaces the older one"
"""Replace rules: each row has a key and the latest delivery of a key wins (the rule per table is
``Table.wins``), or a file's rows have no key of their own and the newest file with the same
file-name fields (welfare: station and month) replaces every earlier one, rows and all."""

PERSONAL_KINDS = frozenset({"resident_id", "phone"})
"""Kinds whose columns are personal in every source (flows/warehouse/pii.py)."""


@dataclass(frozen=True)
class Source:
    """One upstream system and what makes it behave as it does.

    Adding a system is a module in flows/sources/ (its ``read``) and one entry here (or
    :func:`register`) with its tables. Nothing else in the pipeline names a system.
    """

    name: str
    delivery: str = FILES
    reader: str | Callable[..., Any] | None = None
    """How a delivered file is read: a module path (its ``read``), ``module:function``, or a
    callable ``(Delivery) -> {table name: canonical frame}``. Resolved on first use, so the
    contract imports no reader. None for a database source (flows/sources/members.py pulls it)."""
    encoding: str | None = None
    """The contract encoding of a text-file source (None: binary files, or a database)."""
    file_name: str | None = None
    """Regular expression of the file names of a source whose files are named after what they
    hold; its named groups are the file's fields (welfare: ``station_code``, ``ledger_month``),
    columns of every row (``Table.extra_columns``). None: each file is named as its table's
    ``file_pattern``."""
    file_name_hint: str = ""
    """``file_name`` as a person reads it (in the message of an unknown file)."""
    kind_fields: tuple[str, ...] = ()
    """The file fields that make two deliveries comparable for the row-count gate (welfare: the
    station); with none, the file name does."""
    replace: str = BY_KEY
    register: str | None = None
    """A raw table ``<source>__<register>`` with one row per loaded file (its file fields and
    lineage): what a newer file replaces (``FILE_REPLACES``)."""
    sheets: tuple[tuple[str, str], ...] = ()
    """(sheet, table) of a workbook that holds several tables."""
    json_types: bool = False
    """Values are checked as JSON types (text wants strings, integers JSON integers)."""
    personal: tuple[str, ...] = ()
    """Columns that are personal by name (besides ``PERSONAL_KINDS``): names of people."""

    def __post_init__(self) -> None:
        identifier(self.name)
        if self.register is not None:
            identifier(self.register_table)
        for name in self.file_fields:
            identifier(name)

    @property
    def register_table(self) -> str:
        assert self.register is not None, f"{self.name} keeps no register of its files"
        return f"{self.name}__{self.register}"

    @property
    def file_fields(self) -> tuple[str, ...]:
        """The named groups of ``file_name``, in order (empty for fixed file names)."""
        if self.file_name is None:
            return ()
        groups = _compiled(self.file_name).groupindex
        return tuple(sorted(groups, key=groups.__getitem__))

    @property
    def sheet_tables(self) -> dict[str, str]:
        return dict(self.sheets)

    def parse_file_name(self, name: str) -> dict[str, str] | None:
        """The fields of a file name (``name`` without folders) of a source whose files are
        named after what they hold, or None if ``name`` is not one (or the source has fixed names)."""
        if self.file_name is None:
            return None
        m = _compiled(self.file_name).match(name)
        return None if m is None else m.groupdict()

    def file_key(self, name: str) -> tuple[str, ...] | None:
        """The file fields' values of a file name, in ``file_fields`` order, or None."""
        parsed = self.parse_file_name(PurePosixPath(name).name)
        return None if parsed is None else tuple(parsed[f] for f in self.file_fields)

    def tables_of_file(self, file_name: str) -> tuple[str, ...]:
        """The tables a delivered file holds: a workbook's sheets' tables; every table of a source
        whose files are named after what they hold; else the one table a file is named after
        (``enterprises.csv`` holds ``enterprises``)."""
        if self.sheets:
            return tuple(t for _, t in self.sheets)
        if self.file_name is not None:
            return tuple(t.name for t in tables_of(self.name))
        return (PurePosixPath(file_name).stem,)

    def kind_of(self, file_name: str) -> str:
        """What makes two deliveries comparable: the file name, or the ``kind_fields`` of it."""
        name = PurePosixPath(file_name).name
        parsed = self.parse_file_name(name) if self.kind_fields else None
        return name if parsed is None else "_".join(parsed[f] for f in self.kind_fields)

    def read(self, delivery: Any) -> dict[str, Any]:
        """Table name -> canonical frame of one delivered file (the source's reader)."""
        return _reader(self)(delivery)

    def read_pending(self, delivery: Any) -> dict[str, Any]:
        """Table name -> the frame of one delivered file, canonical or still to be canonicalised
        (``flows.sources.common.PendingFrame``): the reader module's ``read_pending`` where it has
        one, else its reader's canonical frames."""
        return _reader(self, "read_pending")(delivery)


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _COMPILED:
        _COMPILED[pattern] = re.compile(pattern)
    return _COMPILED[pattern]


def _reader(src: Source, pending: str | None = None) -> Callable[..., Any]:
    """The source's reader; ``pending``: the name of its module's function that reads without
    canonicalising, used where the module has one (not for a callable or a named function)."""
    if src.reader is None:
        raise KeyError(f"{src.name} is a {src.delivery} source without a file reader")
    if callable(src.reader):
        return src.reader
    module, _, function = src.reader.partition(":")
    loaded = importlib.import_module(module)
    if pending and not function and hasattr(loaded, pending):
        return getattr(loaded, pending)  # type: ignore[no-any-return]
    return getattr(loaded, function or "read")  # type: ignore[no-any-return]


SOURCE_ENTRIES: tuple[Source, ...] = (
    Source("registry", reader="flows.sources.registry", encoding="gb18030"),
    Source(
        "welfare",
        reader="flows.sources.welfare",
        file_name=r"^(?P<station_code>[A-Za-z0-9-]+)_(?P<ledger_month>\d{4}(?:0[1-9]|1[0-2]))\.xlsx$",
        file_name_hint="<station-code>_<YYYYMM>.xlsx",
        kind_fields=("station_code",),
        replace=FILE_REPLACES,
        register="workbooks",
        sheets=(("慰问", "condolence"), ("体检", "health_checks"), ("救助", "relief")),
        personal=("name",),
    ),
    Source(
        "training", reader="flows.sources.training", encoding="utf-8", json_types=True, personal=("name",)
    ),
    Source("rights", reader="flows.sources.rights", encoding="utf-8-sig"),
    Source("finance", reader="flows.sources.finance", encoding="gb18030"),
    Source("events", reader="flows.sources.events", encoding="utf-8", personal=("recipient",)),
    Source("members", delivery=DATABASE, personal=("name",)),
)
"""The seven systems of config/contract-sources.md (file sources in landing-zone order)."""

FILE_SOURCES: tuple[str, ...] = tuple(s.name for s in SOURCE_ENTRIES if s.delivery == FILES)
SOURCES: tuple[str, ...] = FILE_SOURCES + tuple(s.name for s in SOURCE_ENTRIES if s.delivery != FILES)

ENCODINGS: dict[str, str] = {s.name: s.encoding for s in SOURCE_ENTRIES if s.encoding is not None}

WELFARE_SHEETS: dict[str, str] = dict(SOURCE_ENTRIES[1].sheets)

_REGISTERED: dict[str, tuple[Source, tuple[Table, ...]]] = {}
"""Sources added at run time by :func:`register` (a test's toy source), with their tables."""


def register(src: Source, tables: tuple[Table, ...]) -> None:
    """Add a source and its tables to the contract (undo with :func:`unregister`)."""
    if find_source(src.name) is not None:
        raise ValueError(f"source {src.name!r} is already in the contract")
    for t in tables:
        if t.source != src.name:
            raise ValueError(f"table {t.source}.{t.name} does not belong to source {src.name!r}")
    _REGISTERED[src.name] = (src, tuple(tables))


def unregister(name: str) -> None:
    """Remove a source added by :func:`register`."""
    del _REGISTERED[name]


def sources() -> tuple[Source, ...]:
    """Every source of the contract, the registered ones last."""
    return SOURCE_ENTRIES + tuple(s for s, _ in _REGISTERED.values())


def find_source(name: str) -> Source | None:
    for s in SOURCE_ENTRIES:
        if s.name == name:
            return s
    entry = _REGISTERED.get(name)
    return None if entry is None else entry[0]


def source(name: str) -> Source:
    found = find_source(name)
    if found is None:
        raise KeyError(name)
    return found


def file_sources() -> tuple[str, ...]:
    """The names of the file sources (``FILE_SOURCES`` and any registered one)."""
    return tuple(s.name for s in sources() if s.delivery == FILES)


def all_tables() -> tuple[Table, ...]:
    """``TABLES`` and the tables of registered sources."""
    return TABLES + tuple(t for _, ts in _REGISTERED.values() for t in ts)


def personal_columns(t: Table) -> tuple[str, ...]:
    """Personal columns of a table: resident IDs, phones, and the source's names of people."""
    names = source(t.source).personal
    return tuple(c.name for c in t.all_columns if c.kind in PERSONAL_KINDS or c.name in names)


def table(source: str, name: str) -> Table:
    for t in all_tables():
        if t.source == source and t.name == name:
            return t
    raise KeyError(f"{source}.{name}")


def tables_of(source: str) -> tuple[Table, ...]:
    return tuple(t for t in all_tables() if t.source == source)
