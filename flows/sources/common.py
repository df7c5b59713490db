"""Shared reading and normalising of the upstream deliveries (pure functions, no Prefect, no GE).

Every reader returns one *canonical frame* per table: the contract columns of
flows/schema.py (``table.all_columns``, all ``pl.String`` in the canonical text
form of their kind, null when blank), then the lineage columns ``_source``,
``_file_name``, ``_file_sha256``, ``_delivery_date``, ``_row_number`` (Int64),
``_parse_error`` and ``_original``. Readers never drop a record and never
validate: what cannot be canonicalised stays as normalised text, for the
expectation suites to quarantine.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from flows import schema
from flows.errors import BatchError
from flows.schema import Column, Table

# ------------------------------------------------------------------ constants
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e"
"""Invisible characters stripped at both ends of every value (NFKC keeps them)."""
STRIP_CHARS = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000" + ZERO_WIDTH
)
"""Whitespace (incl. NBSP U+00A0 and the ideographic space U+3000) and zero-width characters."""

UPPER_KINDS = frozenset({"uscc", "resident_id", "union_code", "payee_code"})
CSV_BOOLS: Mapping[str, str] = {"是": "true", "否": "false"}
"""是/否 in CSV and xlsx (the contract's booleans for files)."""
JSON_BOOLS: Mapping[str, str] = {}
"""JSON booleans are turned into ``true``/``false`` text when the line is parsed."""
DB_BOOLS: Mapping[str, str] = {"1": "true", "0": "false"}
"""0/1 in the members database (PostgreSQL booleans arrive as true/false already)."""

AMOUNT_SUFFIXES: Mapping[str, int] = {"": 1, "(元)": 1, "(万元)": 10000}
"""Accepted header forms of an amount column and the factor to yuan."""

EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31

META_OUT: tuple[str, ...] = (
    "_source",
    "_file_name",
    "_file_sha256",
    "_delivery_date",
    "_row_number",
    "_parse_error",
    "_control_chars",
    "_type_errors",
    "_original",
)
"""Lineage columns of a canonical frame, after the contract columns."""
TYPED_META: tuple[str, ...] = ("_source", "_file_name", "_file_sha256", "_delivery_date", "_row_number")

CONTROL_RE = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
"""C0 control characters a text value may not hold (contract v1.1): all but tab and the line
breaks; NUL is the one PostgreSQL cannot store at all."""
LINE_BREAK_RE = r"[\n\r]"
"""Line breaks: allowed inside a quoted CSV field, a control character anywhere else."""

ENCODING_LABEL = {"gb18030": "GB18030", "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM"}

_DATE_RES: tuple[str, ...] = (
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?: 00:00(?::00)?)?$",
    r"^(\d{4})/(\d{1,2})/(\d{1,2})(?: 00:00(?::00)?)?$",
    r"^(\d{4})年(\d{1,2})月(\d{1,2})日$",
    r"^(\d{4})(\d{2})(\d{2})$",
)
_TIMESTAMP_RES: tuple[str, ...] = (
    r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?$",
    r"^(\d{4})/(\d{1,2})/(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?$",
)
_THOUSANDS_RE = r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"
_NUMBER_RE = r"^-?\d+(?:\.\d+)?$"
_INTEGER_RE = r"^-?\d+$"
_AMOUNT_CAST_RES = (r"^(-?\d{1,24}(?:\.\d{1,10})?)$", r"^(-?\d{1,24}\.\d{10})\d+$")
_INTEGRAL_FLOAT_RE = r"^(-?\d+)\.0+$"
DATE_FOLDER_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ------------------------------------------------------------------ deliveries
UNKNOWN_FILE = "batch.unknown_file"
OUTSIDE_LANDING = "batch.outside_landing"
NOT_A_FILE = "batch.not_a_file"
UNKNOWN_SOURCE = "batch.unknown_source"
LANDING = "landing"
"""The ledger's source of an entry at the top of the landing zone that is no source."""
MEMBERS_FILE = "members.sqlite"
"""The demo's (and the embedded default's) member platform, beside the source folders."""
STRUCTURE = "batch.structure"
"""A file that is not what its name says (rows that cannot be split, a quote left open, a
JSON array in a JSON Lines file, an .xlsx that is not a workbook)."""
FUTURE_DELIVERY = "batch.future_delivery"
UNREAD_RULES = frozenset({OUTSIDE_LANDING, NOT_A_FILE, UNKNOWN_SOURCE, FUTURE_DELIVERY})
"""Problems of entries that are never opened (their identity is their name, not their bytes, so
a folder dated in the future is read once its day has come)."""


@dataclass(frozen=True)
class Delivery:
    """One delivered file: ``rel_name`` is its path under the landing root (posix).

    ``problem`` is set (and ``delivery_date`` may be None) for an entry that is not
    read: a file the source does not know, one outside a valid ``YYYY-MM-DD`` folder,
    a link out of the landing zone, something that is not a regular file; ``rule`` is
    the batch rule its ledger row carries. Such entries are listed so that nothing is
    silently ignored, but they are not read.
    """

    source: str
    delivery_date: date | None
    path: Path
    rel_name: str
    problem: str | None = None
    rule: str = UNKNOWN_FILE

    @property
    def unread(self) -> bool:
        """Whether the entry must never be opened (a link out, a FIFO, a folder)."""
        return self.problem is not None and self.rule in UNREAD_RULES


def _parse_folder_date(name: str) -> date | None:
    if not DATE_FOLDER_RE.match(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def welfare_file_key(name: str) -> tuple[str, str] | None:
    """(station code, 'YYYYMM') of a welfare workbook name, or None if the name is not one (the
    contract's parser of the name: ``Source.parse_file_name``)."""
    parsed = schema.source("welfare").parse_file_name(name)
    return None if parsed is None else (parsed["station_code"], parsed["ledger_month"])


def table_for_file(source: str, name: str) -> Table | None:
    """The contract table a file name holds, for a source whose files have fixed names, or None."""
    for t in schema.tables_of(source):
        if t.file_pattern == name:
            return t
    return None


def file_problem(source: str, name: str) -> str | None:
    """None when ``name`` is a file name ``source`` delivers, else why not."""
    src = schema.find_source(source)
    if src is not None and src.file_name is not None:  # files named after what they hold
        if src.parse_file_name(name) is not None:
            return None
        return f"unknown file name {name!r}: {source} delivers {src.file_name_hint}"
    if table_for_file(source, name) is not None:
        return None
    known = ", ".join(t.file_pattern for t in schema.tables_of(source))
    return f"unknown file name {name!r}: {source} delivers {known}"


def _is_inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def entry_problem(path: Path, root: Path) -> tuple[str, str] | None:
    """(rule, why) when ``path`` must not be read: a link whose target lies outside the
    resolved landing root ``root`` (or leads nowhere), or an entry that is neither a
    regular file nor a folder (a FIFO would block the reader, a device never ends).
    None for a regular file or folder inside the landing zone, links within it included."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling, or a loop of links
            return NOT_A_FILE, "a link that leads to nothing (dangling or looping): not read"
        if not _is_inside(target, root):
            return OUTSIDE_LANDING, "a link to a place outside the landing zone: never followed"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return NOT_A_FILE, f"cannot be looked at ({type(exc).__name__})"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return NOT_A_FILE, "neither a regular file nor a folder (a FIFO, socket or device): not read"
    return None


def _files_below(folder: Path, root: Path) -> Iterable[tuple[Path, tuple[str, str] | None]]:
    """Every entry below a delivery folder that is not a folder to descend into, with its
    problem (None: a regular file inside the landing zone). Links to folders are never
    descended into (no loops); a link out of the landing zone is reported, not followed."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames):
            sub = here / name
            if sub.is_symlink():
                dirnames.remove(name)
                yield (
                    sub,
                    entry_problem(sub, root)
                    or (UNKNOWN_FILE, "a link to a folder inside the delivery folder: not descended into"),
                )
        dirnames.sort()
        for name in sorted(filenames):
            yield here / name, entry_problem(here / name, root)


def discover(landing: Path, source: str) -> list[Delivery]:
    """Every entry under ``<landing>/<source>/``, sorted by (delivery date, rel_name).

    Files in a valid ``YYYY-MM-DD`` folder with a name the source knows have
    ``problem`` None; everything else is returned flagged with its rule: unknown
    name, folder that is not a date, file outside any delivery folder, file in a
    sub-folder (``batch.unknown_file``); a link that resolves outside the landing
    zone (``batch.outside_landing``: never followed); a FIFO, socket, device or
    dangling link (``batch.not_a_file``: never opened).
    """
    landing = Path(landing)
    root = landing.resolve()
    top = landing / source
    if not (top.exists() or top.is_symlink()):
        return []

    def flagged(path: Path, day: date | None, rule: str, why: str) -> Delivery:
        return Delivery(source, day, path, path.relative_to(landing).as_posix(), why, rule)

    problem = entry_problem(top, root)
    if problem is not None:
        return [flagged(top, None, *problem)]
    if not top.is_dir():
        return [flagged(top, None, NOT_A_FILE, f"{source!r} is a file, not the source's folder: not read")]
    out: list[Delivery] = []
    for entry in sorted(top.iterdir()):
        problem = entry_problem(entry, root)
        if problem is not None:
            out.append(flagged(entry, None, *problem))
            continue
        if entry.is_file():
            out.append(
                flagged(
                    entry,
                    None,
                    UNKNOWN_FILE,
                    f"file {entry.name!r} is not inside a delivery-date folder <YYYY-MM-DD>",
                )
            )
            continue
        folder_date = _parse_folder_date(entry.name)
        found = False
        for path, problem in _files_below(entry, root):
            found = True
            rel = path.relative_to(landing).as_posix()
            if problem is not None:
                out.append(Delivery(source, folder_date, path, rel, problem[1], problem[0]))
            elif folder_date is None:
                out.append(
                    Delivery(
                        source, None, path, rel, f"folder name {entry.name!r} is not a date (YYYY-MM-DD)"
                    )
                )
            elif path.parent != entry:
                inner = path.relative_to(entry).as_posix()
                out.append(
                    Delivery(
                        source,
                        folder_date,
                        path,
                        rel,
                        f"file {inner!r} is in a sub-folder of the delivery folder",
                    )
                )
            else:
                out.append(Delivery(source, folder_date, path, rel, file_problem(source, path.name)))
        if not found and folder_date is None:  # an empty folder that is no delivery: still said
            out.append(
                flagged(
                    entry,
                    None,
                    UNKNOWN_FILE,
                    f"folder name {entry.name!r} is not a date (YYYY-MM-DD); it is empty",
                )
            )
    out.sort(key=lambda d: (d.delivery_date is None, d.delivery_date or date.min, d.rel_name))
    return out


def hold_future(deliveries: Iterable[Delivery], today: date) -> list[Delivery]:
    """Deliveries whose folder is dated after ``today`` flagged ``batch.future_delivery``: such a
    folder would win every "latest delivery wins" rule until its date, and its rows would pass
    the rule that a date may not be later than its folder's. Not read until that day comes."""
    out = []
    for d in deliveries:
        if d.problem is None and d.delivery_date is not None and d.delivery_date > today:
            d = Delivery(
                d.source,
                d.delivery_date,
                d.path,
                d.rel_name,
                f"delivery folder dated {d.delivery_date.isoformat()}, after today "
                f"({today.isoformat()}): not read before that day",
                FUTURE_DELIVERY,
            )
        out.append(d)
    return out


def discover_unknown(landing: Path) -> list[Delivery]:
    """The entries at the top of the landing zone that are no source: anything but the
    source folders (names are exact and lower case: ``Events/`` is not ``events/``) and
    the members database file (with SQLite's journal files beside it). Each is reported
    (``batch.unknown_source``, ledger source ``landing``), never read."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    out = []
    for entry in sorted(landing.iterdir()):
        name = entry.name
        if name in schema.file_sources() or name == MEMBERS_FILE or name.startswith(MEMBERS_FILE + "-"):
            continue
        kind = "folder" if entry.is_dir() and not entry.is_symlink() else "entry"
        out.append(
            Delivery(
                LANDING,
                None,
                entry,
                name + ("/" if kind == "folder" else ""),
                f"{kind} {name!r} is not a source of the landing zone (the sources are "
                f"{', '.join(schema.file_sources())}, exact and lower case, and {MEMBERS_FILE})",
                UNKNOWN_SOURCE,
            )
        )
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_state(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): a file still being written changes it."""
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def delivery_sha256(delivery: Delivery) -> str:
    """The identity of a delivered entry: the SHA-256 of its bytes; for an entry that must not
    be read (a link out, a FIFO, a folder), of its rule and name, so that it is reported once."""
    if delivery.unread or not Path(delivery.path).is_file():
        return sha256_bytes(f"{delivery.rule}:{delivery.rel_name}".encode())
    return sha256_file(delivery.path)


# ------------------------------------------------------------ text and headers
def normalise_str(value: str) -> str:
    """NFKC + strip (whitespace, NBSP, U+3000, zero-width, BOM): Python twin of ``normalise_text``."""
    return unicodedata.normalize("NFKC", value).strip(STRIP_CHARS)


def header_key(value: str) -> str:
    """A header as matched against the contract: NFKC, stripped, inner whitespace removed."""
    return re.sub(r"\s+", "", normalise_str(value))


def normalise_text(expr: pl.Expr) -> pl.Expr:
    """NFKC (full-width -> half-width), strip at both ends, empty -> null."""
    t = expr.cast(pl.String).str.normalize("NFKC").str.strip_chars(STRIP_CHARS)
    return pl.when(t == "").then(None).otherwise(t)


def _first_match(t: pl.Expr, patterns: Sequence[str], build: Any) -> pl.Expr:
    return pl.coalesce([build(t, p) for p in patterns])


def _iso_date_from(t: pl.Expr, pattern: str) -> pl.Expr:
    g = [t.str.extract(pattern, i) for i in (1, 2, 3)]
    return pl.concat_str([g[0], pl.lit("-"), g[1].str.zfill(2), pl.lit("-"), g[2].str.zfill(2)])


def _iso_timestamp_from(t: pl.Expr, pattern: str) -> pl.Expr:
    g = [t.str.extract(pattern, i) for i in range(1, 7)]
    return pl.concat_str(
        [
            g[0],
            pl.lit("-"),
            g[1].str.zfill(2),
            pl.lit("-"),
            g[2].str.zfill(2),
            pl.lit(" "),
            g[3].str.zfill(2),
            pl.lit(":"),
            g[4],
            pl.lit(":"),
            g[5].fill_null("00"),
        ]
    )


def date_expr(t: pl.Expr) -> pl.Expr:
    """Accepted date forms -> 'YYYY-MM-DD' when a real calendar date; else the text unchanged."""
    iso = _first_match(t, _DATE_RES, _iso_date_from)
    parsed = iso.str.to_date("%Y-%m-%d", strict=False)
    ok = parsed.is_not_null() & (parsed.dt.year() >= 1) & (parsed.dt.to_string("%Y-%m-%d") == iso)
    return pl.when(ok).then(iso).otherwise(t)


def timestamp_expr(t: pl.Expr) -> pl.Expr:
    """Accepted timestamp forms -> 'YYYY-MM-DD HH:MM:SS' (fractions dropped); else the text unchanged."""
    iso = _first_match(t, _TIMESTAMP_RES, _iso_timestamp_from)
    parsed = iso.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    ok = parsed.is_not_null() & (parsed.dt.year() >= 1) & (parsed.dt.to_string("%Y-%m-%d %H:%M:%S") == iso)
    return pl.when(ok).then(iso).otherwise(t)


def _drop_thousands(t: pl.Expr) -> pl.Expr:
    return pl.when(t.str.contains(_THOUSANDS_RE)).then(t.str.replace_all(",", "", literal=True)).otherwise(t)


def int_expr(t: pl.Expr) -> pl.Expr:
    """'1,234' -> '1234', '12.0' -> '12'; anything else unchanged."""
    plain = _drop_thousands(t)
    integral = plain.str.extract(_INTEGRAL_FLOAT_RE, 1)
    return (
        pl.when(plain.str.contains(_INTEGER_RE))
        .then(plain)
        .when(integral.is_not_null())
        .then(integral)
        .otherwise(t)
    )


def amount_expr(t: pl.Expr, factor: int = 1) -> pl.Expr:
    """Yuan as a decimal with exactly 2 places ('1234.50'); ``factor`` 10000 for 万元.

    Exact decimal arithmetic (polars Decimal), rounded half away from zero to
    the fen. Text that is not a plain number (after removing thousands
    separators) is left unchanged.
    """
    plain = _drop_thousands(t)
    # At most 24 integer digits (no overflow below) and 10 fraction digits: truncating the
    # fraction at 10 places cannot change the result of rounding to the fen (or 1e-6 万元).
    digits = pl.coalesce([plain.str.extract(p, 1) for p in _AMOUNT_CAST_RES])
    number = digits.cast(pl.Decimal(38, 10), strict=False)
    if factor != 1:
        number = number * pl.lit(factor, dtype=pl.Decimal(38, 0))
    text = number.round(2, mode="half_away_from_zero").cast(pl.Decimal(38, 2)).cast(pl.String)
    return pl.when(text.is_not_null()).then(text).otherwise(t)


def bool_expr(t: pl.Expr, values: Mapping[str, str]) -> pl.Expr:
    if not values:
        return t
    return t.replace(dict(values))


def canonical_expr(col: Column, *, factor: int = 1, bools: Mapping[str, str] = CSV_BOOLS) -> pl.Expr:
    """Raw text of ``col`` -> its canonical text (see flows/schema.py)."""
    t = normalise_text(pl.col(col.name))
    if col.kind in UPPER_KINDS:
        t = t.str.to_uppercase()
    elif col.kind == "date":
        t = date_expr(t)
    elif col.kind == "timestamp":
        t = timestamp_expr(t)
    elif col.kind == "int":
        t = int_expr(t)
    elif col.kind == "amount":
        t = amount_expr(t, factor)
    elif col.kind == "bool":
        t = bool_expr(t, bools)
    return t.alias(col.name)


# ---------------------------------------------------------------- frame build
@dataclass
class RawRows:
    """Records as read, before canonicalisation: raw text per contract column."""

    columns: tuple[str, ...]
    values: dict[str, list[str | None]]
    row_numbers: list[int]
    parse_errors: list[str | None]
    originals: list[str]
    type_errors: list[str | None] = field(default_factory=list)
    """Per row: the columns whose value has the wrong type for the contract (JSON), else None."""

    @classmethod
    def empty(cls, columns: Iterable[str]) -> RawRows:
        cols = tuple(columns)
        return cls(cols, {c: [] for c in cols}, [], [], [], [])

    def add(
        self,
        row_number: int,
        values: Mapping[str, str | None],
        original: Mapping[str, Any] | None,
        type_error: str | None = None,
    ) -> None:
        """A record; ``original`` None: its ``_original`` is set later (:meth:`set_originals`)."""
        for c in self.columns:
            self.values[c].append(values.get(c))
        self.row_numbers.append(row_number)
        self.parse_errors.append(None)
        self.type_errors.append(type_error)
        self.originals.append("" if original is None else json.dumps(original, ensure_ascii=False))

    def set_originals(self, positions: Sequence[int], texts: Sequence[str]) -> None:
        """``_original`` of the records at ``positions`` (added without one), already JSON."""
        for i, text in zip(positions, texts, strict=True):
            self.originals[i] = text

    @classmethod
    def from_columns(
        cls,
        columns: Iterable[str],
        values: Mapping[str, Sequence[str | None]],
        row_numbers: Sequence[int],
        originals: Sequence[str],
    ) -> RawRows:
        """What ``add(row_number, values, original)`` per row gives, built from whole columns
        (``originals`` already JSON, e.g. by :func:`json_objects`)."""
        cols = tuple(columns)
        n = len(row_numbers)
        return cls(
            cols,
            {c: list(values[c]) if c in values else [None] * n for c in cols},
            list(row_numbers),
            [None] * n,
            list(originals),
            [None] * n,
        )

    def add_unparseable(self, row_number: int, error: str, line: str) -> None:
        for c in self.columns:
            self.values[c].append(None)
        self.row_numbers.append(row_number)
        self.parse_errors.append(error)
        self.type_errors.append(None)
        self.originals.append(json.dumps({"_line": line}, ensure_ascii=False))


JSON_ESCAPES: dict[str, str] = {chr(i): json.dumps(chr(i)).strip('"') for i in range(0x20)} | {
    '"': '\\"',
    "\\": "\\\\",
}
"""What ``json.dumps(text, ensure_ascii=False)`` escapes, character by character: these 34 and no
other (tests/sources/test_members_frames_frozen.py checks every code point)."""


def json_string(column: pl.Expr) -> pl.Expr:
    """Each text as ``json.dumps(text, ensure_ascii=False)`` writes it; None stays null."""
    escaped = column.str.replace_many(list(JSON_ESCAPES), list(JSON_ESCAPES.values()))
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')])


def json_objects(fields: Sequence[tuple[str, Sequence[str | None], bool]], n: int) -> list[str]:
    """Per row, ``json.dumps({key: text, …}, ensure_ascii=False)`` of ``fields`` (key, column of
    ``n`` texts or None, whether the key is left out of a row where its text is None), built
    column by column: each key JSON-encoded once, the texts escaped and quoted by Polars
    (:func:`json_string`), joined by Polars."""
    if not fields:
        return ["{}"] * n
    names = [f"c{i}" for i in range(len(fields))]
    texts = pl.DataFrame(
        {name: list(col) for name, (_, col, _) in zip(names, fields, strict=True)},
        schema=dict.fromkeys(names, pl.String),
    )
    parts = []
    for name, (key, _, optional) in zip(names, fields, strict=True):
        value = json_string(pl.col(name))
        if not optional:
            value = value.fill_null(pl.lit("null"))
        parts.append(pl.concat_str([pl.lit(json.dumps(key, ensure_ascii=False) + ": "), value]))
    joined = pl.concat_str(parts, separator=", ", ignore_nulls=True).fill_null(pl.lit(""))
    objects = texts.select(pl.concat_str([pl.lit("{"), joined, pl.lit("}")]).alias("o"))
    return objects.get_column("o").to_list()


_META_SCHEMA: dict[str, pl.DataType] = {
    name: pl.Int64() if name == "_row_number" else pl.String()
    for name in META_OUT
    if name != "_control_chars"
}
"""The lineage columns a reader gives, in ``META_OUT``'s order; ``_control_chars`` is added with the canonical text."""


@dataclass(frozen=True)
class PendingFrame:
    """A table's rows of one delivered file, read but not yet canonical: the raw text of its
    contract columns and its lineage, as frames, and how to canonicalise them.
    :func:`canonical_frames` canonicalises many at once (a slice of files: one Polars query per
    table and header form instead of one per sheet, whose planning is most of a small frame's cost)."""

    table: Table
    raw: pl.DataFrame
    meta: pl.DataFrame
    factors: tuple[tuple[str, int], ...] = ()
    bools: tuple[tuple[str, str], ...] = tuple(CSV_BOOLS.items())
    line_breaks: bool = False

    @property
    def height(self) -> int:
        return self.raw.height

    def canonical(self) -> pl.DataFrame:
        return canonical_frames([self])[0]


def pending_frame(
    table: Table,
    rows: RawRows,
    *,
    source: str,
    file_name: str,
    sha256: str,
    delivery_date: date,
    factors: Mapping[str, int] | None = None,
    bools: Mapping[str, str] = CSV_BOOLS,
    constants: Mapping[str, str] | None = None,
    line_breaks: bool = False,
) -> PendingFrame:
    """A table's raw text rows of one file, with their lineage, to be canonicalised
    (:class:`PendingFrame`, :func:`canonical_frames`).

    ``constants`` fills columns that do not come from the rows (welfare
    ``station_code``/``ledger_month``). ``_control_chars`` names the columns whose value
    holds a control character (``line_breaks``: a line break is none, as inside a quoted
    CSV field); ``_type_errors`` is what the reader found of the wrong type; ``factors``: the
    unit of an amount column as its header gave it; ``bools``: the source's boolean words.
    """
    constants = constants or {}
    n = len(rows.row_numbers)
    data: dict[str, Any] = {}
    for c in table.all_columns:
        if c.name in constants:
            data[c.name] = [constants[c.name]] * n
        else:
            data[c.name] = rows.values.get(c.name, [None] * n)
    raw = pl.DataFrame(data, schema={c.name: pl.String for c in table.all_columns})
    meta = pl.DataFrame(
        {
            "_source": [source] * n,
            "_file_name": [file_name] * n,
            "_file_sha256": [sha256] * n,
            "_delivery_date": [delivery_date.isoformat()] * n,
            "_row_number": rows.row_numbers,
            "_parse_error": rows.parse_errors,
            "_type_errors": rows.type_errors or [None] * n,
            "_original": rows.originals,
        },
        schema=_META_SCHEMA,
    )
    return PendingFrame(table, raw, meta, tuple((factors or {}).items()), tuple(bools.items()), line_breaks)


def canonical_frame(table: Table, rows: RawRows, **how: Any) -> pl.DataFrame:
    """The canonical frame of ``table`` from raw text rows (vectorised canonicalisation) at once:
    ``pending_frame(table, rows, **how).canonical()``, with :func:`pending_frame`'s keywords."""
    return pending_frame(table, rows, **how).canonical()


def canonical_frames(parts: Sequence[PendingFrame | pl.DataFrame]) -> list[pl.DataFrame]:
    """The canonical frame of each part (a frame already canonical is kept as it is), in order.

    Parts of the same table read the same way (header form: its factors; booleans; line breaks)
    are canonicalised together, as one frame: each row's canonical text depends on that row only
    (a date column whose every value is already canonical is only normalised, which gives the
    same text; a row without control characters gets no ``_control_chars`` either way), so this
    is :func:`canonical_frame` of each part, by one query per group instead of one per part."""
    out: list[pl.DataFrame] = [p if isinstance(p, pl.DataFrame) else _NO_FRAME for p in parts]
    groups: dict[tuple[Any, ...], list[tuple[int, PendingFrame]]] = {}
    for i, p in enumerate(parts):
        if isinstance(p, PendingFrame):
            groups.setdefault((p.table, p.factors, p.bools, p.line_breaks), []).append((i, p))
    at = META_OUT.index("_control_chars")
    before, after = list(META_OUT[:at]), list(META_OUT[at + 1 :])
    for (table, factors, bools, line_breaks), members in groups.items():
        raws = [p.raw for _, p in members]
        raw = raws[0] if len(raws) == 1 else pl.concat(raws, how="vertical")
        exprs = _canonical_exprs(table, factors, bools, frozenset(_already_canonical(raw, table)))
        # lazily: the optimiser then computes each shared sub-expression once (a date column's
        # candidate ISO text is used three times); eager select does not, and is ~7x slower here
        frame = raw.lazy().select(exprs + [_control_expr(raw, table, line_breaks)]).collect()
        offset = 0
        for i, p in members:
            part = frame.slice(offset, p.height)
            offset += p.height
            out[i] = pl.concat(
                [
                    part.drop("_control_chars"),
                    p.meta.select(before),
                    part.select("_control_chars"),
                    p.meta.select(after),
                ],
                how="horizontal",
            )
    return out


_NO_FRAME = pl.DataFrame()
"""A placeholder in :func:`canonical_frames` until a part's frame is made."""


_CANONICAL_SHAPES: Mapping[str, str] = {
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
}
"""Text that ``date_expr`` / ``timestamp_expr`` return unchanged: the first accepted form
matches it and rebuilds the same text, which is kept whether or not it is a real date."""


@functools.lru_cache(maxsize=256)
def _canonical_exprs(
    table: Table,
    factors: tuple[tuple[str, int], ...],
    bools: tuple[tuple[str, str], ...],
    canonical: frozenset[str],
) -> list[pl.Expr]:
    """The canonical expressions of ``table``'s columns (those in ``canonical`` only normalised),
    built once per table and header form: building them is a good part of a small frame's cost."""
    factor = dict(factors)
    return [
        normalise_text(pl.col(c.name)).alias(c.name)
        if c.name in canonical
        else canonical_expr(c, factor=factor.get(c.name, 1), bools=dict(bools))
        for c in table.all_columns
    ]


def canonical_columns(
    table: Table, values: Mapping[str, Sequence[str | None]], *, bools: Mapping[str, str] = CSV_BOOLS
) -> pl.DataFrame:
    """The canonical text of some of ``table``'s columns (raw text by column name), as
    :func:`canonical_frame` makes it: the same expressions, each of which reads its own column only."""
    raw = pl.DataFrame(dict(values), schema=dict.fromkeys(values, pl.String))
    exprs = _canonical_exprs(table, (), tuple(bools.items()), frozenset(_already_canonical(raw, table)))
    wanted = [e for e in exprs if e.meta.output_name() in values]
    if not all(set(e.meta.root_names()) <= set(values) for e in wanted):
        raise ValueError(f"a canonical expression of {table.name} reads a column not given")
    return raw.lazy().select(wanted).collect()


def _already_canonical(raw: pl.DataFrame, table: Table) -> set[str]:
    """The date and timestamp columns of ``raw`` whose every value has its canonical shape, so
    that their canonical text is the value itself (a column's dozen regular expressions, most of
    the fixed cost of a small frame, are then not compiled)."""
    shaped = [c for c in table.all_columns if c.kind in _CANONICAL_SHAPES and c.name in raw.columns]
    if not shaped or raw.height == 0:
        return set()
    checks = raw.select(
        pl.col(c.name).str.contains(_CANONICAL_SHAPES[c.kind]).all().alias(c.name) for c in shaped
    ).row(0, named=True)
    return {name for name, ok in checks.items() if ok}


def _control_expr(raw: pl.DataFrame, table: Table, line_breaks: bool) -> pl.Expr:
    """:func:`control_columns`, or a null column when no value of ``raw`` holds a control
    character at all (one scan instead of one regular expression per column)."""
    bad = CONTROL_RE if line_breaks else f"{CONTROL_RE}|{LINE_BREAK_RE}"
    # every alternative is one character: joining the values cannot make a match across them
    joined = pl.concat_str([pl.col(c.name) for c in table.all_columns], ignore_nulls=True)
    if raw.height and raw.select(joined.str.contains(bad).any()).item():
        return control_columns(table, line_breaks)
    return pl.lit(None, dtype=pl.String).alias("_control_chars")


def control_columns(table: Table, line_breaks: bool = False) -> pl.Expr:
    """``_control_chars``: the names of the columns (joined by ``,``) whose value as delivered
    holds a C0 control character other than tab, anywhere in it, else null (contract v1.1:
    they are an error of the row, not whitespace to strip). A line break counts too, except
    inside a quoted CSV field (``line_breaks``). The same on every warehouse: PostgreSQL
    cannot store NUL, so no warehouse gets any of them."""
    bad = CONTROL_RE if line_breaks else f"{CONTROL_RE}|{LINE_BREAK_RE}"
    flags = []
    for c in table.all_columns:
        hit = pl.col(c.name).cast(pl.String).str.contains(bad)
        flags.append(pl.when(hit.fill_null(False)).then(pl.lit(c.name)).otherwise(None))
    joined = pl.concat_str(flags, separator=",", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined).alias("_control_chars")


# ------------------------------------------------------------------- headers
def _position_ranges(positions: Sequence[int], limit: int = 12) -> str:
    """1-based positions as ranges: [1, 2, 3, 5] -> '1-3, 5' (at most ``limit`` ranges)."""
    groups: list[list[int]] = []
    for p in positions:
        if groups and p == groups[-1][1] + 1:
            groups[-1][1] = p
        else:
            groups.append([p, p])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in groups[:limit])
    return text + (", …" if len(groups) > limit else "")


def found_text(
    names: Sequence[str],
    known: Iterable[str],
    *,
    item: str = "column",
    what: str = "contract header",
    positions: bool = True,
    hint: str | None = None,
) -> str:
    """``found: …`` of a structure error, quoting only the names the contract knows.

    What stands where a header (sheet name, JSON key, database column) should be may be
    data: a delivery that lost its header row has its first record there, a name and a
    resident ID among it, and contract v1.1 keeps every cell value of a personal column out
    of messages. So the names that are not contract names are counted and located, never
    quoted. ``names`` are normalised ("" for a blank); ``hint`` is added when none is known.
    """
    known = set(known)
    recognised = [n for n in names if n in known]
    others = [i for i, n in enumerate(names, start=1) if n and n not in known]
    text = "found: " + (", ".join(recognised) if recognised else f"no {what}")
    if others:
        total = sum(1 for n in names if n)
        verb = f"is not a {what}" if len(others) == 1 else f"are not {what}s"
        where = f" ({item}{'s' if len(others) > 1 else ''} {_position_ranges(others)})" if positions else ""
        text += f"; {len(others)} of {total} {item}s {verb}{where}"
        if hint and not recognised:
            text += f": {hint}"
    return text


def match_headers(
    headers: Sequence[str | None], table: Table, file: str, where: str = ""
) -> tuple[dict[str, int], dict[str, int]]:
    """Map each contract column of ``table`` to its header position, and amount factors.

    Headers are compared after NFKC, stripping and removing inner whitespace;
    an amount column may be headed ``<h>``, ``<h>(元)`` or ``<h>(万元)``. A
    contract column that is missing, or present more than once, is a
    ``batch.columns`` error; unknown extra columns are ignored.
    """
    keys = [header_key(h) if h is not None else "" for h in headers]
    positions: dict[str, int] = {}
    factors: dict[str, int] = {}
    missing: list[str] = []
    duplicated: list[str] = []
    known: set[str] = set()
    for c in table.columns:
        wanted = {header_key(c.header): 1}
        if c.kind == "amount":
            wanted = {header_key(c.header + s): f for s, f in AMOUNT_SUFFIXES.items()}
        found = [(i, wanted[k]) for i, k in enumerate(keys) if k in wanted]
        if not found:
            missing.append(c.header + ("(元)/(万元)" if c.kind == "amount" else ""))
        elif len(found) > 1:
            # (these headers normalise to a contract header: contract text, not data)
            duplicated.append(" / ".join(headers[i] or "" for i, _ in found))
        else:
            positions[c.name], factors[c.name] = found[0]
        known.update(wanted)
    prefix = f"{where}: " if where else ""
    # never the unknown headers' text: without its header row a file's first record is there
    shown = found_text(keys, known, hint="is the header row missing?")
    if missing:
        raise BatchError(file, "batch.columns", f"{prefix}missing column(s) {', '.join(missing)}; {shown}")
    if duplicated:
        raise BatchError(
            file,
            "batch.columns",
            f"{prefix}column(s) present more than once: {'; '.join(duplicated)}; {shown}",
        )
    return positions, factors


# ------------------------------------------------------------------ encodings
def decode(data: bytes, source: str, file: str) -> str:
    """Decode a delivered file strictly in its contract encoding (``Source.encoding``).

    A GB18030 source given UTF-8 (a UTF-8 BOM, or bytes that are valid UTF-8
    with non-ASCII characters) is rejected even though GB18030 would decode
    it to garbage without complaint. A leading BOM is dropped.
    """
    encoding = schema.source(source).encoding
    if encoding is None:
        raise KeyError(f"{source} has no contract encoding (not a text-file source)")
    label = ENCODING_LABEL.get(encoding, encoding)
    contract = f"(contract: {source} files are {label})"
    if encoding == "gb18030":
        if data.startswith(codecs.BOM_UTF8):
            raise BatchError(
                file,
                "batch.encoding",
                f"not valid GB18030: the file starts with a UTF-8 byte-order mark {contract}",
            )
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise BatchError(
                    file, "batch.encoding", f"not valid GB18030: the file is UTF-8-encoded {contract}"
                )
    try:
        text = data.decode(encoding, errors="strict")
    except UnicodeDecodeError as exc:
        raise BatchError(
            file, "batch.encoding", f"not valid {label}: undecodable bytes at offset {exc.start} {contract}"
        ) from None
    return text.removeprefix("\ufeff")


BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive (an xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an OLE2 file (an xls workbook?)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def read_bytes(delivery: Delivery) -> bytes:
    data = Path(delivery.path).read_bytes()
    if not data:
        raise BatchError(delivery.rel_name, "batch.empty", "the file is empty (0 bytes)")
    return data


def check_text_file(data: bytes, file: str) -> None:
    """A CSV or JSON Lines delivery must be text: a workbook, archive or image under that name
    is rejected as what it is, not decoded into garbage rows."""
    for magic, what in BINARY_MAGIC:
        if data.startswith(magic):
            raise BatchError(file, STRUCTURE, f"not a text file but {what}")


def check_delivery(delivery: Delivery) -> None:
    if delivery.problem:
        raise BatchError(delivery.rel_name, delivery.rule, delivery.problem)
    if delivery.delivery_date is None:
        raise BatchError(delivery.rel_name, UNKNOWN_FILE, "the file has no delivery date")


# ------------------------------------------------------------------------ CSV
def _blank(fields: Sequence[str]) -> bool:
    return all(not normalise_str(f) for f in fields)


def _original_object(headers: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for h, v in zip(headers, values, strict=False):
        key = h
        i = 2
        while key in out:
            key = f"{h}#{i}"
            i += 1
        out[key] = v
    return out


def read_csv_delivery(delivery: Delivery, table: Table) -> pl.DataFrame:
    """Read one CSV delivery of ``table`` into its canonical frame (:func:`read_csv_pending`)."""
    return read_csv_pending(delivery, table).canonical()


def read_csv_pending(delivery: Delivery, table: Table) -> PendingFrame:
    """Read one CSV delivery of ``table``, to be canonicalised (:func:`canonical_frames`).

    Records are numbered with the header as record 1; blank records (empty
    lines, or every field blank) carry no data and are skipped but still
    counted. A record whose field count differs from the header's becomes a
    ``_parse_error`` row.
    """
    check_delivery(delivery)
    file = delivery.rel_name
    data = read_bytes(delivery)
    sha = sha256_bytes(data)
    check_text_file(data, file)
    text = decode(data, delivery.source, file)
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines)
    header: list[str] | None = None
    rows = RawRows.empty(c.name for c in table.columns)
    positions: dict[str, int] = {}
    factors: dict[str, int] = {}
    record = 0
    prev_line = 0
    first_line = 0
    whole: list[list[str]] = []  # records with the header's width: their _original is built by column
    at: list[int] = []  # (their places among the rows)
    try:
        for fields in reader:
            first_line, prev_line = prev_line, reader.line_num
            if header is None:
                if _blank(fields):
                    continue
                header = [f.removeprefix("\ufeff") for f in fields]
                record = 1
                positions, factors = match_headers(header, table, file)
                continue
            record += 1
            if _blank(fields):
                continue
            spans = reader.line_num - first_line
            if spans > 1 and _swallows_rows(fields, len(header), len(fields) != len(header)):
                raise BatchError(
                    file,
                    STRUCTURE,
                    f"a quoted field opened on line {first_line + 1} runs over {spans - 1} line "
                    f"break(s) to line {reader.line_num} and takes in what looks like rows of "
                    'their own: an unbalanced quote (")?',
                )
            if len(fields) != len(header):
                raw_line = "".join(lines[first_line : reader.line_num]).rstrip("\r\n")
                error = f"row has {len(fields)} fields, header has {len(header)}"
                rows.add_unparseable(record, error, raw_line)
                continue
            at.append(len(rows.row_numbers))
            whole.append(fields)
            rows.add(record, {name: fields[i] for name, i in positions.items()}, None)
    except csv.Error as exc:
        raise BatchError(
            file, "batch.unreadable", f"CSV cannot be parsed near line {reader.line_num}: {exc}"
        ) from None
    if header is None:
        raise BatchError(file, "batch.empty", "the file has no header row")
    last = "".join(lines[first_line:])
    if last.count('"') % 2 and any("\n" in f or "\r" in f for f in fields):
        raise BatchError(
            file,
            STRUCTURE,
            f"a quoted field opened on line {first_line + 1} is never closed "
            '(an unbalanced quote (") runs to the end of the file)',
        )
    if rows.row_numbers and not whole:
        raise BatchError(
            file,
            STRUCTURE,
            f"not one of its {len(rows.row_numbers)} data rows splits into the header's "
            f"{len(header)} comma-separated columns: is it delimited text of this table?",
        )
    keys = _original_object(header, header)  # (the header's names, a repeated one as name#2)
    columns = [(key, [f[i] for f in whole], False) for i, key in enumerate(keys)]
    rows.set_originals(at, json_objects(columns, len(whole)))
    return pending_frame(
        table,
        rows,
        source=delivery.source,
        file_name=file,
        sha256=sha,
        delivery_date=delivery.delivery_date,
        factors=factors,  # type: ignore[arg-type]
        line_breaks=True,
    )


def _swallows_rows(fields: Sequence[str], width: int, ragged: bool) -> bool:
    """Whether a record that spans lines holds a quoted field that took in other fields: a field
    with a line break and a row's worth of commas (rows folded into one value), or, when the
    record has the wrong width, with any comma (a stray quote closed by a later quoted field).
    A memo of two lines is fine, and so is a ragged row with one (a ``row.parse`` row)."""
    need = max(1, width - 1) if not ragged else 1
    return any(("\n" in v or "\r" in v) and v.count(",") >= need for v in fields)


def check_source(delivery: Delivery, source: str) -> None:
    if delivery.source != source:
        raise ValueError(f"{delivery.rel_name}: a {delivery.source} delivery given to the {source} reader")


def read_csv_source(delivery: Delivery, source: str) -> dict[str, pl.DataFrame]:
    """``read`` of a CSV source: the file name picks the table."""
    return canonical_dict(read_csv_source_pending(delivery, source))


def canonical_dict(parts: Mapping[str, PendingFrame | pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Table name -> canonical frame, of a reader's ``read_pending`` (:func:`canonical_frames`)."""
    return dict(zip(parts, canonical_frames(list(parts.values())), strict=True))


def read_csv_source_pending(delivery: Delivery, source: str) -> dict[str, PendingFrame]:
    """``read_pending`` of a CSV source: the file name picks the table."""
    check_source(delivery, source)
    check_delivery(delivery)
    table = table_for_file(delivery.source, Path(delivery.path).name)
    if table is None:  # pragma: no cover - discover() flags these already
        raise BatchError(
            delivery.rel_name,
            "batch.unknown_file",
            file_problem(delivery.source, Path(delivery.path).name) or "unknown file",
        )
    return {table.name: read_csv_pending(delivery, table)}


# ----------------------------------------------------------------- cell text
def number_text(value: float | Decimal) -> str:
    """A number as plain text: integers without '.0', no exponent."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer():
            return str(int(value))
        value = Decimal(repr(value))
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def timestamp_text(value: datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS', plus '.ffffff' when there are microseconds (dropped by canonicalisation)."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{value.microsecond:06d}" if value.microsecond else "")


def excel_serial_date(value: float) -> str | None:
    """An Excel serial day number (1900 system) as 'YYYY-MM-DD', or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if not 1 <= value <= EXCEL_MAX_SERIAL:
        return None
    return date.fromordinal(EXCEL_EPOCH.toordinal() + value).isoformat()


def cell_text(value: Any, kind: str) -> str | None:
    """An xlsx cell (openpyxl value) as raw text for a column of ``kind``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if kind == "date":
            return value.date().isoformat()
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        if kind == "date" and not isinstance(value, Decimal):
            serial = excel_serial_date(value)
            if serial is not None:
                return serial
        return number_text(value)
    return str(value)


def original_text(value: Any) -> str | None:
    """A cell or column value as text for ``_original`` (what a person reads in quarantine)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int | float | Decimal):
        return number_text(value)
    return str(value)


# ------------------------------------------------------------------ typing
def to_typed(frame: pl.DataFrame, table: Table, strict: bool = True) -> pl.DataFrame:
    """Cast validated canonical text to the warehouse types (strict: a failure is a validator bug;
    ``strict=False``, for unvalidated text in the benchmark baseline: what does not cast is null).

    Output columns: ``table.all_columns`` then ``_source``, ``_file_name``,
    ``_file_sha256``, ``_delivery_date`` (Date), ``_row_number`` (Int64).
    """
    exprs: list[pl.Expr] = []
    for c in table.all_columns:
        col = pl.col(c.name).cast(pl.String)
        if c.kind == "date":
            e = col.str.to_date("%Y-%m-%d", strict=strict)
        elif c.kind == "timestamp":
            e = col.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=strict)
        elif c.kind == "int":
            e = col.cast(pl.Int64, strict=strict)
        elif c.kind == "amount":
            e = col.cast(pl.Decimal(18, 2), strict=strict)
        elif c.kind == "bool":
            mapping = {"true": True, "false": False}
            e = (
                col.replace_strict(mapping, return_dtype=pl.Boolean)
                if strict
                else col.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
            )
        else:
            e = col
        exprs.append(e.alias(c.name))
    exprs += [
        pl.col("_source").cast(pl.String),
        pl.col("_file_name").cast(pl.String),
        pl.col("_file_sha256").cast(pl.String),
        pl.col("_delivery_date").cast(pl.String).str.to_date("%Y-%m-%d", strict=strict),
        pl.col("_row_number").cast(pl.Int64, strict=strict),
    ]
    return frame.select(exprs)
