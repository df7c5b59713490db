"""The summary's narrative template: Markdown text with figure placeholders (pure: no I/O).

The federation edits the text (``config/report/summary.zh.md``); the code fills in:

- ``{figure.id}`` or ``{figure.id:STYLE}``: a figure of ``config/figures.yaml``, written as
  ``flows.report.phrase`` says for STYLE (``{rights.amount_recovered_yuan:万余0.01}``);
- ``{year}``, ``{year-1}``, ``{year+1}``…: the report year, or one relative to it;
- ``{{`` and ``}}``: literal braces.

Numbers typed into the text itself are not computed. ``stated_numbers`` lists them, and the
report's appendix shows them as such, so an auditor can tell the two apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from flows.errors import ConfigError
from flows.report.phrase import parse_style, phrase

PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{(?P<id>year(?:[+-]\d{1,2})?|[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)"
    r"(?::(?P<style>[^{}]*))?\}|\{[^{}]*\}"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def strip_comments(template: str) -> str:
    """HTML comments are notes for the editor, not report text (line numbers are kept)."""
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), template)


@dataclass(frozen=True)
class Part:
    """A piece of the rendered text: literal text, or a figure (``figure_id`` set)."""

    text: str
    figure_id: str | None = None
    style: str = ""


@dataclass(frozen=True)
class Placeholder:
    figure_id: str
    style: str
    line: int
    after: str
    """The template text right after the placeholder, up to the end of its sentence (its unit)."""


def placeholders(template: str) -> list[Placeholder]:
    """Every figure placeholder, in order. Raises ConfigError for a malformed one or a bad style."""
    found = []
    template = strip_comments(template)
    for m in PLACEHOLDER.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        line = template.count("\n", 0, m.start()) + 1
        if m["id"] is None:
            raise ConfigError(
                f"report template line {line}: {token!r} is no placeholder; write "
                "{figure.id}, {figure.id:STYLE} or {year} (and {{ }} for braces)"
            )
        if m["id"].startswith("year"):
            continue
        style = m["style"] or ""
        try:
            parse_style(style)
        except ConfigError as exc:
            raise ConfigError(f"report template line {line}: {exc}") from None
        rest = template[m.end() :]
        after = re.split(r"[。；，、,;\n{]", rest, maxsplit=1)[0]
        found.append(Placeholder(m["id"], style, line, after))
    return found


def render(template: str, year: int, values: Mapping[str, Decimal | int | float]) -> list[Part]:
    """The template with every placeholder filled, as parts (literal runs and figures)."""
    unknown = sorted({p.figure_id for p in placeholders(template)} - set(values))
    if unknown:
        raise ConfigError("report template names figures the catalogue lacks: " + ", ".join(unknown))
    template = strip_comments(template).lstrip("\n")
    parts: list[Part] = []
    pos = 0

    def literal(text: str) -> None:
        if text:
            if parts and parts[-1].figure_id is None:
                parts[-1] = Part(parts[-1].text + text)
            else:
                parts.append(Part(text))

    for m in PLACEHOLDER.finditer(template):
        literal(template[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            literal(token[0])
        elif m["id"].startswith("year"):
            literal(str(year + int(m["id"][4:] or 0)))
        else:
            style = m["style"] or ""
            parts.append(Part(phrase(values[m["id"]], style), m["id"], style))
    literal(template[pos:])
    return parts


def markdown(parts: list[Part]) -> str:
    return "".join(p.text for p in parts)


def stated_numbers(template: str) -> list[tuple[int, str, str]]:
    """Numbers written into the narrative itself: (line, number, its context), headings' own
    numbering (``1、``) excepted."""
    out = []
    for lineno, line in enumerate(strip_comments(template).splitlines(), 1):
        text = PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), line)
        body = re.sub(r"^#+\s*[（(]?\d+[)）、.]?\s*", lambda m: " " * len(m.group(0)), text)
        for m in _NUMBER.finditer(body):
            out.append((lineno, m.group(0), line[max(0, m.start() - 12) : m.end() + 8].strip()))
    return out
