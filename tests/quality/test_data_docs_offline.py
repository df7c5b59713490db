"""Data Docs that work offline (issue 20): real GE validations of two small member files through
the pipeline's code path (validate_files -> write_page -> write_index), in an output folder with
earlier runs, opened in headless Chromium with the network off.

One GE validation and one browser session for the module; the index's HTML is also tested as a
pure function."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from flows import schema
from flows.checksums import resident_id_check_char
from flows.quality.docs import DocPage, PastRun, history, index_html, page_name, write_index, write_page
from flows.quality.runner import validate_files
from tests.support import ARTIFACTS, ROOT, chromium_or_skip

RUN = "20261127T020000-0a0b0c"
EARLIER = "20261126T020000-0d0e0f"
REMOVED = "20261125T020000-0f0f0f"
LATER = "20261128T020000-0e0e0e"

ID_OK = "11010119900307" + "123"
ID_OK += resident_id_check_char(ID_OK)
ID_BAD = ID_OK[:-1] + ("1" if ID_OK.endswith("0") else "0")  # a wrong check character: quarantined
PERSONAL = (ID_OK, ID_BAD, "测试甲某", "测试乙某", "13912345678", "13987654321")


def members(
    file: str, ids: list[str], names: list[str], phones: list[str], joined: list[str]
) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "member_id": [str(i + 1) for i in range(n)],
            "id_card": ids,
            "name": names,
            "phone": phones,
            "union_code": ["GH0000000001"] * n,
            "employment_form": ["standard"] * n,
            "is_migrant": ["false"] * n,
            "is_veteran": ["false"] * n,
            "joined_on": joined,
            "updated_at": ["2024-01-01 08:00:00"] * n,
            "deleted_at": [None] * n,
        }
    ).with_columns(
        pl.lit("2024-02-01").alias("_delivery_date"),
        pl.lit(None, pl.String).alias("_parse_error"),
        pl.lit(file).alias("_file_name"),
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<output>/: a removed run (listed by the earlier run's history), an earlier run with no
    validation, and this run's Data Docs of one failing and one passing file (one GE validation).
    Returns this run's data_docs folder."""
    output = tmp_path_factory.mktemp("output")
    write_index(output / REMOVED / "data_docs", REMOVED, [])
    write_index(output / EARLIER / "data_docs", EARLIER, [])
    shutil.rmtree(output / REMOVED)  # retention removed it; EARLIER's summary still lists it
    (output / LATER / "data_docs").mkdir(parents=True)  # a later run is not this run's history
    (output / LATER / "data_docs" / "index.html").write_text("later", encoding="utf-8")

    bad = members(
        "members/2024-02-01/bad.csv",
        [ID_OK, ID_BAD],
        ["测试甲某", "测试乙某"],
        ["13912345678", "13987654321"],
        ["2020-05-01", "2030-01-01"],
    )  # 2030: after the delivery
    good = members("members/2024-02-01/good.csv", [ID_OK], ["测试甲某"], ["13912345678"], ["2019-03-01"])
    t = schema.table("members", "member")
    results, ge_results = validate_files([bad, good], t, "bad.csv and 1 more file")
    assert [r.quarantined.height for r in results] == [1, 0] and len(ge_results) == 1
    docs = output / RUN / "data_docs"
    page = write_page(
        docs / page_name("members", "member", "bad.csv and 1 more file", 0),
        ge_results[0],
        RUN,
        asset="bad.csv and 1 more file",
    )
    assert page.success is False
    pages = [
        DocPage("members", "member", f, frame.height, r.quarantined.height, page.path, page.validated_at)
        for f, frame, r in (("bad.csv", bad, results[0]), ("good.csv", good, results[1]))
    ]
    write_index(docs, RUN, pages)
    return docs


@pytest.mark.unit
def test_index_html_is_a_pure_function_of_pages_and_history() -> None:
    pages = [
        DocPage(
            "welfare", "relief", "A<1>.xlsx", 10, 0, Path("welfare.relief.a.0.html"), "2026-11-27 02:01:02"
        ),
        DocPage("welfare", "relief", "B.xlsx", 5, 2, Path("welfare.relief.a.0.html"), "2026-11-27 02:01:02"),
    ]
    past = [
        PastRun(EARLIER, "2026-11-26 02:00:00", 3, 2, 1, 40, 4, f"../../{EARLIER}/data_docs/index.html"),
        PastRun(REMOVED, "2026-11-25 02:00:00", None, None, None, None, None),
    ]
    text = index_html(RUN, pages, past)
    assert text == index_html(RUN, pages, past)
    assert '<a href="welfare.relief.a.0.html">A&lt;1&gt;.xlsx</a>' in text and "A<1>" not in text
    assert text.count("badge-pass") == 1 and text.count("badge-fail") == 1
    assert '<a class="suite" href="expectations/welfare.relief.html">welfare.relief</a>' in text
    assert f'<a class="run" href="../../{EARLIER}/data_docs/index.html">{EARLIER}</a>' in text
    assert f"{REMOVED} <span" in text and f'href="../../{REMOVED}' not in text  # listed, not linked
    assert "2026-11-27 02:00:00" in text and "2026-11-27 02:01:02" in text  # run time, validation time
    files, passed, failed = (
        re.search(rf'<span class="value">([\d,]+)</span><span class="label">{label}', text)
        for label in ("文件", "通过", "有隔离行")
    )
    assert (files and files[1], passed and passed[1], failed and failed[1]) == ("2", "1", "1")
    assert not re.search(r'(?:href|src)="(?:https?:)?//', text)


@pytest.mark.unit
def test_history_lists_earlier_runs_and_the_removed_ones_they_listed(site: Path) -> None:
    past = history(site.parent.parent, RUN)
    assert [(h.run_id, h.href, h.files) for h in past] == [
        (EARLIER, f"../../{EARLIER}/data_docs/index.html", 0),
        (REMOVED, None, 0),
    ]
    earlier = json.loads(
        (site.parent.parent / EARLIER / "data_docs" / "summary.json").read_text(encoding="utf-8")
    )
    assert [h["run_id"] for h in earlier["history"]] == [REMOVED]  # what it showed when written
    assert (
        history(site.parent.parent, EARLIER) == []
    )  # (later runs are not history; REMOVED's folder is gone)


def test_data_docs_offline_in_headless_chromium(site: Path) -> None:
    """Every page of the run's data_docs loads with the network off, styled by the local
    stylesheet; Home, suite and history links resolve; run name and time shown; custom
    expectations read as text; no row value anywhere."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    files = [p for p in site.rglob("*") if p.is_file()]
    texts = {p: p.read_text(encoding="utf-8") for p in files if p.suffix in (".html", ".css", ".js", ".json")}
    assert {p.relative_to(site).as_posix() for p in files} >= {
        "index.html",
        "summary.json",
        "static/data-docs.css",
        "static/data-docs.js",
        "static/favicon.ico",
        "expectations/members.member.html",
        "members.member.bad.csv_and_1_more_file.0.html",
    }
    assert not [p for p in files if p.name.endswith(".tmp")]
    for path, text in texts.items():
        assert not re.search(
            r'(?:(?:href|src)\s*=\s*["\']?|url\(\s*["\']?|@import\s+["\']?)(?:https?:)?//', text
        ), path
        assert "__none__" not in text and "**{" not in text and "batch_id" not in text, path
        assert not [v for v in PERSONAL if v in text], path
        for href in re.findall(r'(?:href|src)="([^"#?]+)', text):  # every relative link resolves
            assert (path.parent / href).resolve().exists(), (path, href)

    browser, driver_path = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=zh-CN",
        "--window-size=1280,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.set_network_conditions(offline=True, latency=0, throughput=0)
        style = "return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]]"
        loaded = "return performance.getEntriesByType('resource').map(e => e.name)"

        driver.get((site / "index.html").as_uri())
        assert driver.title == f"Data Docs {RUN}"
        assert driver.execute_script(style, ".badge-pass", "backgroundColor") not in ("rgba(0, 0, 0, 0)", "")
        assert (
            driver.execute_script(style, "table.files", "borderCollapse") == "collapse"
        )  # default: separate
        assert "2026-11-27 02:00:00" in driver.find_element(By.CSS_SELECTOR, ".navbar-run").text
        rows = driver.find_elements(By.CSS_SELECTOR, "table.files tbody tr")
        assert [(r.find_elements(By.TAG_NAME, "td")[2].text, "passed" in r.text) for r in rows] == [
            ("bad.csv", False),
            ("good.csv", True),
        ]
        earlier = driver.find_element(By.CSS_SELECTOR, "table.history a.run")
        assert (
            earlier.text == EARLIER and REMOVED in driver.find_element(By.CSS_SELECTOR, "table.history").text
        )
        assert all(u.startswith(site.as_uri() + "/") for u in driver.execute_script(loaded))
        earlier.click()
        assert driver.title == f"Data Docs {EARLIER}"
        driver.back()

        driver.find_element(By.LINK_TEXT, "bad.csv").click()
        assert driver.current_url.endswith(".0.html")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "入会日期 不晚于 交付目录日期 / joined_on is not after _delivery_date." in body
        assert "身份证号 为有效的居民身份证号" in body and "is a valid resident ID" in body
        assert "入会日期 不早于 1949-01-01" in body and "会员编号 为整数，且不小于 0" in body
        assert RUN in body and "2026-11-27 02:00:00" in body and "bad.csv and 1 more file" in body
        assert driver.execute_script(style, ".alert-secondary", "backgroundColor") != "rgba(0, 0, 0, 0)"
        assert driver.execute_script(style, ".fa-times", "color") == "rgb(180, 35, 24)"  # the ✖ in red
        assert all(u.startswith(site.as_uri() + "/") for u in driver.execute_script(loaded))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "data-docs.png"))
        info = driver.find_element(By.PARTIAL_LINK_TEXT, "Show more info")
        target = driver.find_element(By.ID, info.get_attribute("href").split("#", 1)[1])
        assert not target.is_displayed()
        info.click()
        assert target.is_displayed() and "Run Name" in target.text and RUN in target.text
        passed = driver.find_elements(By.CSS_SELECTOR, ".hide-succeeded-validation-target-child")
        failed = driver.find_elements(By.CSS_SELECTOR, "td .fa-times")
        assert passed and failed and all(e.is_displayed() for e in passed + failed)
        driver.find_element(By.CSS_SELECTOR, '[data-filter="failed"]').click()  # "Failed only"
        assert not any(e.is_displayed() for e in passed) and all(e.is_displayed() for e in failed)
        driver.find_element(By.CSS_SELECTOR, '[data-filter="all"]').click()
        assert all(e.is_displayed() for e in passed)

        driver.find_element(By.LINK_TEXT, "members.member").click()
        assert driver.current_url.endswith("/expectations/members.member.html")
        assert "入会日期 不晚于 交付目录日期" in driver.find_element(By.TAG_NAME, "body").text
        driver.find_element(By.LINK_TEXT, "Home").click()
        assert driver.current_url == (site / "index.html").as_uri()
    finally:
        driver.quit()


@pytest.mark.unit
def test_the_assets_ship_with_the_package() -> None:
    """The stylesheet, script and templates are package data (pyproject), not only files of the
    source tree: a wheel built from the project includes them."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["flows.quality"]
    root = ROOT / "flows" / "quality"
    shipped = {p.relative_to(root).as_posix() for pattern in patterns for p in root.glob(pattern)}
    assert {
        "static/data-docs.css",
        "static/data-docs.js",
        "templates/page.j2",
        "templates/top_navbar.j2",
    } <= shipped


@pytest.mark.unit
def test_every_custom_expectation_of_every_suite_reads_as_text() -> None:
    """Each custom expectation has its own prescriptive renderer (not GE's raw-Python fallback),
    in Chinese and English, with every $parameter of its text filled from the suite's kwargs."""
    import json as _json
    from string import Template

    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.registry import get_renderer_impl

    from flows.quality import expectations as custom

    types = {
        c.__name__
        for c in vars(custom).values()
        if isinstance(c, type) and issubclass(c, custom.Described) and c is not custom.Described
    }
    assert len(types) == 8
    seen = set()
    for suite in sorted((ROOT / "expectations").glob("*.json")):
        for e in _json.loads(suite.read_text(encoding="utf-8"))["expectations"]:
            impl = get_renderer_impl(e["type"], "renderer.prescriptive")
            assert impl is not None, e["type"]
            if impl[0].__name__ not in types:
                continue
            seen.add(impl[0].__name__)
            block = impl[1](configuration=ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]))[0]
            template = block.string_template["template"]
            text = Template(template).substitute(
                block.string_template["params"]
            )  # (KeyError: a $name unfilled)
            zh, en = text.split(" / ")
            assert re.search(r"[\u4e00-\u9fff]", zh) and re.fullmatch(r"[ -~]+", en), text
            assert "**" not in text and "$" not in text, text
    assert seen == types
