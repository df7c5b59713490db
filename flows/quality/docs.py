"""Data Docs: Great Expectations' HTML pages of a run's validations, readable offline, without row values.

The pages are rendered from the validation results the quarantine split used,
after every list of unexpected *values* is removed (they can be resident IDs or
names); counts and percentages stay.

GE's renderers make the pages (``ValidationResultsPageRenderer``,
``ExpectationSuitePageRenderer``) and GE's view writes them, with our versions of
the few page templates that load Bootstrap, jQuery, Font Awesome and Vega from
public CDNs (``templates/``): the pages link a stylesheet and a script of ours,
copied into the run's ``data_docs/static/``, so an office machine without internet
shows them as they are meant (Vega graphs are left out; GE's validation pages
state their figures in tables anyway). Everything a page links stays in the run's
``data_docs`` folder: Home is its ``index.html``, a suite link its
``expectations/<suite>.html``; only the index's history links earlier runs'
folders next to it, while they still exist.
"""

from __future__ import annotations

import copy
import functools
import html
import json
import os
import re
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from flows.schema import table

from .suites import load_suite_dict

VALUE_KEYS = (
    "unexpected_list",
    "partial_unexpected_list",
    "unexpected_index_list",
    "partial_unexpected_index_list",
    "partial_unexpected_counts",
    "unexpected_index_query",
    "unexpected_rows",
    "details",
)

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC = PACKAGE_DIR / "static"
"""Our stylesheet and script (copied into every run's data_docs/static/)."""
TEMPLATES = PACKAGE_DIR / "templates"
"""Our versions of GE's page templates that pull assets from CDNs."""
ASSETS = ("data-docs.css", "data-docs.js")
SUITES = "expectations"
"""Folder of the suite pages, inside data_docs."""
SUMMARY = "summary.json"
"""The run's validation counts (and the history it showed), read by later runs' indexes."""
HISTORY_RUNS = 30
RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
"""A run folder's name (flows.nightly.new_run_id; flows.orchestration.retention.RUN_ID)."""


@dataclass(frozen=True)
class DocPage:
    """One validation page of one file (a file's rows may span pages; a page several files)."""

    source: str
    table: str
    file_name: str
    rows: int
    quarantined: int
    path: Path
    validated_at: str = ""
    """When GE validated it (``YYYY-MM-DD HH:MM:SS``, local time like the run id)."""

    @property
    def suite(self) -> str:
        return f"{self.source}.{self.table}"


@dataclass(frozen=True)
class PastRun:
    """An earlier run in the index's history."""

    run_id: str
    run_time: str
    files: int | None
    passed: int | None
    failed: int | None
    rows: int | None
    quarantined: int | None
    href: str | None = None
    """Its index relative to this run's data_docs, while its folder exists."""


@dataclass(frozen=True)
class Written:
    """What :func:`write_page` wrote."""

    path: Path
    validated_at: str
    success: bool


def scrub(result: Any) -> Any:
    """Drop the unexpected values from a GE ExpectationSuiteValidationResult, in place."""
    for res in result.results:
        for key in VALUE_KEYS:
            res.result.pop(key, None)
    return result


def _percent(part: int | None, whole: int | None) -> float | None:
    return part / whole * 100 if part is not None and whole else None


def _merge_counts(results: list[dict[str, Any]], mostly: float | None) -> tuple[dict[str, Any], bool | None]:
    """One expectation's counts over several chunks (GE's map result: element, missing and
    unexpected counts, percentages as GE computes them), and its success when ``mostly`` says
    it (None: every chunk's own success decides)."""
    merged = dict(results[0])
    for key in ("element_count", "unexpected_count", "missing_count"):
        values = [r.get(key) for r in results]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            merged[key] = sum(values)  # type: ignore[arg-type]
    elements, unexpected = merged.get("element_count"), merged.get("unexpected_count")
    if not isinstance(elements, int) or not isinstance(unexpected, int):
        return merged, None
    missing = merged.get("missing_count") if isinstance(merged.get("missing_count"), int) else None
    nonmissing = elements - missing if missing is not None else elements
    total = _percent(unexpected, elements)
    if "unexpected_percent_total" in merged:
        merged["unexpected_percent_total"] = total
    if "missing_percent" in merged:
        merged["missing_percent"] = _percent(missing, elements)
    in_nonmissing = _percent(unexpected, nonmissing) if missing is not None else total
    for key in ("unexpected_percent", "unexpected_percent_nonmissing"):
        if key in merged:
            merged[key] = in_nonmissing
    if mostly is None:
        return merged, None
    return merged, not nonmissing or (nonmissing - unexpected) / nonmissing >= mostly


def merge_results(results: list[Any]) -> Any:
    """One validation result of several chunks of one validation (the same suite on disjoint
    rows), for one Data Docs page: each expectation's counts summed (its percentages from the
    sums), a success only when every chunk's is (or, with ``mostly``, from the sums), the
    statistics recounted; the batch's meta is the first chunk's, without its fingerprint (of
    that chunk alone). A single result is returned as it is."""
    if len(results) == 1:
        return results[0]
    merged = copy.deepcopy(results[0])
    for i, res in enumerate(merged.results):
        parts = [r.results[i] for r in results]
        if any(p.expectation_config.type != res.expectation_config.type for p in parts):
            raise ValueError("chunks of one validation ran different expectations")  # pragma: no cover
        mostly = res.expectation_config.kwargs.get("mostly")
        counts, success = _merge_counts(
            [p.result or {} for p in parts], mostly if isinstance(mostly, (int, float)) else None
        )
        res.result = counts
        res.success = all(p.success for p in parts) if success is None else success
        raised = next(
            (p.exception_info for p in parts if p.exception_info and _raised(p.exception_info)), None
        )
        if raised is not None:
            res.exception_info = raised
    evaluated = len(merged.results)
    successful = sum(1 for r in merged.results if r.success)
    merged.success = successful == evaluated
    merged.statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": successful / evaluated * 100 if evaluated else None,
    }
    markers = merged.meta.get("batch_markers")
    if isinstance(markers, dict):
        markers.pop("pandas_data_fingerprint", None)
    return merged


def _raised(info: dict[str, Any]) -> bool:
    return bool(info.get("raised_exception")) or any(
        isinstance(v, dict) and v.get("raised_exception") for v in info.values()
    )


def run_time(run_id: str) -> str:
    """A run id's start time, ``YYYY-MM-DD HH:MM:SS`` (empty when it is not a run id)."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ""


def page_name(source: str, table: str, file_name: str, chunk: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", file_name).strip("_")
    return f"{source}.{table}.{slug}.{chunk}.html"


def suite_href(suite: str) -> str:
    """A suite page's path relative to data_docs."""
    return f"{SUITES}/{re.sub(r'[^A-Za-z0-9._-]+', '_', suite)}.html"


# ------------------------------------------------------------------ pages
@functools.lru_cache(maxsize=1)
def _view() -> Any:
    """GE's page view, with our templates found before GE's own."""
    # deferred: Great Expectations (~2 s, with its Jinja), only when a page is rendered
    from great_expectations.render.view import DefaultJinjaPageView
    from jinja2 import ChoiceLoader, FileSystemLoader

    view = DefaultJinjaPageView()
    view.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), view.env.loader])
    return view


def _link_suite(document: Any, href: str) -> None:
    """Point the overview's suite link (GE writes ``../../../../../expectations/<a>/<b>.html``
    for its own site layout) at the suite page in this data_docs folder."""
    for section in document.sections[:1]:
        for block in section.content_blocks:
            template = getattr(getattr(block, "subheader", None), "string_template", None) or {}
            link = template.get("styling", {}).get("params", {}).get("expectation_suite_name")
            if link and "attributes" in link:
                link["attributes"]["href"] = href


def render_page(result: Any, run_id: str, asset: str | None = None) -> str:
    """A validation result's page, for ``data_docs/`` of run ``run_id``: the run's name and
    time in GE's Info block and title (set on the result's meta as GE reads them), ``asset``
    (the files validated) as its data asset."""
    # deferred: Great Expectations (~2 s), only when a page is rendered (runner.warm_up loads it early)
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    from . import expectations as _registered  # noqa: F401  (their renderers)

    started = run_time(run_id)
    # GE prints a run time as UTC ("…Z"): the run id's local time, converted
    at = datetime.fromisoformat(started).astimezone(UTC) if started else None
    # GE reads a run name as a date when dateutil can (its page title compares the two): a run id
    # whose random suffix starts with four digits ("…-5733ad") reads as a time zone 57 hours off,
    # and the page failed, and with it the run. A name that is no date is never read as one.
    result.meta["run_id"] = RunIdentifier(run_name=f"run {run_id}", run_time=at)
    if asset is not None:
        spec = result.meta.get("batch_spec")
        if isinstance(spec, dict):
            spec["data_asset_name"] = asset
    document = ValidationResultsPageRenderer().render(result)
    _link_suite(document, suite_href(result.suite_name))
    document.page_title = " / ".join(x for x in (result.suite_name, asset) if x)  # (the run is in the navbar)
    return str(
        _view().render(
            document, home_url="index.html", static_dir="static/", run_name=run_id, run_time=started
        )
    )


def render_suite_page(suite: Any, run_id: str) -> str:
    """An expectation suite's page, for ``data_docs/expectations/``."""
    # deferred: Great Expectations (~2 s), as in render_page
    from great_expectations.render.renderer import ExpectationSuitePageRenderer

    from . import expectations as _registered  # noqa: F401  (their renderers)

    document = ExpectationSuitePageRenderer().render(suite)
    return str(
        _view().render(
            document,
            home_url="../index.html",
            static_dir="../static/",
            run_name=run_id,
            run_time=run_time(run_id),
        )
    )


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all: slices of a source validate in parallel threads (or Dask
    workers) and may write the same asset or suite page at once."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def write_assets(directory: Path) -> None:
    """The stylesheet, script and icon the pages of ``directory`` link (``static/``)."""
    static = directory / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        _write(static / name, (STATIC / name).read_bytes())
    icon = resources.files("great_expectations") / "render" / "view" / "static" / "images" / "favicon.ico"
    _write(static / "favicon.ico", icon.read_bytes())


def write_suite_page(directory: Path, suite_name: str, run_id: str) -> Path:
    """``directory``/expectations/<suite>.html, once per run (the suite of ``source.table``)."""
    path = directory / suite_href(suite_name)
    if path.exists():
        return path
    import great_expectations as gx  # deferred: Great Expectations (~2 s), as in render_page

    source, name = suite_name.split(".", 1)
    suite = gx.ExpectationSuite(**load_suite_dict(table(source, name)))
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, render_suite_page(suite, run_id).encode("utf-8"))
    return path


def write_page(path: Path, result: Any, run_id: str, asset: str | None = None) -> Written:
    """A validation result's page at ``path`` (in a run's data_docs), with its suite's page
    and the static assets beside it."""
    directory = path.parent
    if not (directory / "static" / ASSETS[0]).exists():
        write_assets(directory)
    write_suite_page(directory, result.suite_name, run_id)
    path.write_text(render_page(result, run_id, asset), encoding="utf-8")
    return Written(path, datetime.now().strftime("%Y-%m-%d %H:%M:%S"), bool(result.success))


# ------------------------------------------------------------------ index
def counts(pages: list[DocPage]) -> dict[str, int]:
    """Files validated, passed (no row quarantined), failed, rows and rows quarantined. A file
    whose rows span pages counts once."""
    files: dict[tuple[str, str, str], tuple[int, int]] = {}
    for p in pages:
        files[(p.source, p.table, p.file_name)] = (p.rows, p.quarantined)
    failed = sum(1 for _, q in files.values() if q)
    return {
        "files": len(files),
        "passed": len(files) - failed,
        "failed": failed,
        "rows": sum(r for r, _ in files.values()),
        "quarantined": sum(q for _, q in files.values()),
    }


def _num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _status(quarantined: int) -> str:
    if quarantined:
        return '<span class="badge badge-fail">✖ 未通过 failed</span>'
    return '<span class="badge badge-pass">✔ 通过 passed</span>'


def _run_cell(run: PastRun) -> str:
    if run.href:
        return f'<a class="run" href="{html.escape(run.href)}">{html.escape(run.run_id)}</a>'
    return f'{html.escape(run.run_id)} <span class="text-muted">（文件夹已清理 folder removed）</span>'


def index_html(run_id: str, pages: list[DocPage], history: list[PastRun]) -> str:
    """The run's Data Docs index: per file pass/fail, rows, quarantined, validation time and
    page; the suites; the earlier runs. Links are relative to data_docs/."""
    e = html.escape
    c = counts(pages)
    stats = "".join(
        f'<div class="stat{cls}"><span class="value">{c[key]:,}</span><span class="label">{label}</span></div>'
        for key, label, cls in (
            ("files", "文件 files", ""),
            ("passed", "通过 passed", " ok"),
            ("failed", "有隔离行 with quarantined rows", " bad" if c["failed"] else ""),
            ("rows", "行 rows", ""),
            ("quarantined", "隔离行 quarantined", ""),
        )
    )
    if pages:
        ordered = sorted(
            pages, key=lambda p: (p.quarantined == 0, p.source, p.table, p.file_name)
        )  # failed first
        rows = "\n".join(
            f"<tr><td>{e(p.source)}</td><td>{e(p.table)}</td>"
            f'<td><a href="{e(p.path.name)}">{e(p.file_name)}</a></td>'
            f'<td>{_status(p.quarantined)}</td><td class="num">{p.rows:,}</td>'
            f'<td class="num">{p.quarantined:,}</td><td class="num">{e(p.validated_at) or "—"}</td>'
            f'<td><a class="suite" href="{e(suite_href(p.suite))}">{e(p.suite)}</a></td></tr>'
            for p in ordered
        )
        files = (
            '<table class="table table-sm files"><thead><tr><th>来源 source</th><th>表 table</th>'
            '<th>文件 file（校验页 page）</th><th>结果 result</th><th class="num">行 rows</th>'
            '<th class="num">隔离 quarantined</th><th class="num">校验时间 validated</th><th>规则集 suite</th>'
            f"</tr></thead><tbody>\n{rows}\n</tbody></table>"
        )
    else:
        files = '<p class="empty">本次运行没有校验任何文件。 This run validated no file.</p>'
    if history:
        past = "\n".join(
            f"<tr><td>{_run_cell(h)}</td>"
            f'<td class="num">{e(h.run_time) or "—"}</td><td class="num">{_num(h.files)}</td>'
            f'<td class="num">{_num(h.passed)}</td><td class="num">{_num(h.failed)}</td>'
            f'<td class="num">{_num(h.rows)}</td><td class="num">{_num(h.quarantined)}</td></tr>'
            for h in history
        )
        earlier = (
            '<table class="table table-sm history"><thead><tr><th>运行 run</th><th class="num">时间 time</th>'
            '<th class="num">文件 files</th><th class="num">通过 passed</th><th class="num">未通过 failed</th>'
            '<th class="num">行 rows</th><th class="num">隔离 quarantined</th></tr></thead><tbody>\n'
            f'<tr class="current"><td>{e(run_id)}（本次 this run）</td><td class="num">{e(run_time(run_id)) or "—"}</td>'
            f'<td class="num">{c["files"]:,}</td><td class="num">{c["passed"]:,}</td>'
            f'<td class="num">{c["failed"]:,}</td><td class="num">{c["rows"]:,}</td>'
            f'<td class="num">{c["quarantined"]:,}</td></tr>\n{past}\n</tbody></table>'
        )
    else:
        earlier = '<p class="empty">没有更早的运行。 No earlier run in this output folder.</p>'
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f'<title>Data Docs {e(run_id)}</title><link rel="stylesheet" href="static/data-docs.css">'
        '<link rel="icon" href="static/favicon.ico" type="image/x-icon"></head><body>\n'
        '<nav class="navbar sticky-top border-bottom"><a class="navbar-brand" href="index.html">数据校验 '
        '<span class="brand-en">Data Docs</span></a>'
        f'<span class="navbar-run">运行 run <code>{e(run_id)}</code> · {e(run_time(run_id))}</span></nav>\n'
        '<main class="docs-main">'
        f'<h1>本次运行的数据校验结果 <span class="brand-en">Validation results of run {e(run_id)}</span></h1>'
        '<p class="subtitle">每个交付文件按其规则集（Great Expectations）校验；未通过的行进入隔离区，'
        "页面只列计数，不含任何行值。 Each delivered file is validated against its suite; failing rows go "
        "to quarantine. Pages show counts, never row values.</p>\n"
        f'<div class="stats">{stats}</div>\n<h2>文件 Files</h2>\n{files}\n'
        f"<h2>历次运行 Earlier runs</h2>\n{earlier}\n</main>"
        '<footer class="ge-footer">unionwh · Great Expectations Data Docs · 离线可读 works offline</footer>'
        "</body></html>\n"
    )


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _past(entry: dict[str, Any], href: str | None) -> PastRun | None:
    run_id = entry.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        return None

    def number(key: str) -> int | None:
        value = entry.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return PastRun(
        run_id,
        run_time(run_id),
        number("files"),
        number("passed"),
        number("failed"),
        number("rows"),
        number("quarantined"),
        href,
    )


def history(output_dir: Path, run_id: str, limit: int = HISTORY_RUNS) -> list[PastRun]:
    """The runs before ``run_id``, newest first: every run folder of ``output_dir`` with Data
    Docs (linked), and the runs the newest of them listed whose folders retention removed."""
    try:
        folders = sorted(
            (
                p.name
                for p in output_dir.iterdir()
                if RUN_ID.fullmatch(p.name) and p.name < run_id and not p.is_symlink() and p.is_dir()
            ),
            reverse=True,
        )
    except OSError:
        folders = []
    found: dict[str, PastRun] = {}
    listed: list[dict[str, Any]] = []
    for folder in folders:
        docs = output_dir / folder / "data_docs"
        if not (docs / "index.html").is_file():
            continue
        href = f"../../{folder}/data_docs/index.html"
        summary = _read_summary(docs / SUMMARY) or {"run_id": folder}
        entry = _past({**summary, "run_id": folder}, href)
        if entry is not None:
            found[folder] = entry
        if not listed and isinstance(summary.get("history"), list):
            listed = [h for h in summary["history"] if isinstance(h, dict)]
    for item in listed:
        entry = _past(item, None)
        if entry is not None and entry.run_id < run_id and entry.run_id not in found:
            found[entry.run_id] = entry
    return sorted(found.values(), key=lambda h: h.run_id, reverse=True)[:limit]


def write_index(directory: Path, run_id: str, pages: list[DocPage]) -> Path:
    """``directory``/index.html (a run's data_docs), its assets, and summary.json for the
    indexes of later runs."""
    directory.mkdir(parents=True, exist_ok=True)  # (a run that validated nothing made no page)
    write_assets(directory)
    past = history(directory.parent.parent, run_id)
    summary = {
        "run_id": run_id,
        "run_time": run_time(run_id),
        **counts(pages),
        "history": [{k: v for k, v in asdict(h).items() if k != "href"} for h in past],
    }
    (directory / SUMMARY).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    path = directory / "index.html"
    path.write_text(index_html(run_id, pages, past), encoding="utf-8")
    return path
