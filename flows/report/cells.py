"""Text we write into a spreadsheet or a CSV file stays text: never a live formula.

Why: our outputs carry text that came from deliveries (a budget item name 项目名称, a voucher
number 凭证号, a memo 摘要, a payee code). Spreadsheet programs run a cell whose text starts with
``=`` as a formula, and when they import a CSV they do the same for ``+``, ``-`` and ``@`` (and
for such text after a leading tab or carriage return). A delivery holding
``=HYPERLINK("http://evil","click")`` or the DDE payload ``=cmd|' /C calc'!A0`` would otherwise
act on the machine of the auditor who opens our workbook (CSV / formula injection, see OWASP's
"CSV Injection" page). Every writer of a spreadsheet or CSV under ``flows/`` goes through here:

- xlsx (flows/report/audit.py, XlsxWriter): every ``str`` is written with ``write_string`` in a
  workbook opened with ``strings_to_formulas`` off, so it is a string cell, never a formula
  (``<f>``), whatever it starts with; the text is kept exactly.
- CSV has no types, so a text field starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return is prefixed with a single quote ``'``, which spreadsheets show as text (OWASP's advice).
  Numbers (``int``, ``float``, ``Decimal``) are written as they are: a negative amount written as
  a number is a number, not text, and must stay one for whoever sums the column.

A CSV row with a carriage return inside a text field is written with its text fields in double
quotes: with our ``\n`` line ends the csv module would leave a lone CR unquoted, every reader would
end the row there, and what follows would start a new row, which could begin with ``=`` (a way
around the quote) besides breaking the columns.

The quote is part of the written file: a reader of our own CSV (``unionwh report diff`` reads
``figure-rows-<year>.csv``) compares in the written form (``csv_row`` of the new values), since
taking the quote off again could not tell a delivered ``'=x`` from an escaped ``=x``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a CSV field as a formula (OWASP's list)."""


def csv_field(value: Any) -> Any:
    """``value`` as a CSV field that no spreadsheet runs: formula-like text gets a leading ``'``;
    anything that is not a ``str`` (numbers, dates, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """``csv_field`` of each value: the row to give ``csv.writer.writerow``."""
    return [csv_field(v) for v in values]


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """``rows`` (each already made safe by ``csv_row``, or our own header) as CSV text with ``\n``
    line ends; a row with a carriage return in a text field has its text fields quoted, so the CR
    stays inside its field (see the module's docstring); numbers stay unquoted."""
    out = io.StringIO()
    plain = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    for row in rows:
        fields = list(row)
        has_cr = any(isinstance(v, str) and "\r" in v for v in fields)
        (quoted if has_cr else plain).writerow(fields)
    return out.getvalue()
