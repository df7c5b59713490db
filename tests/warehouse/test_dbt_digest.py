"""dbt's output in the run's log is a digest (flows/warehouse/dbt.py ``Digest``): the start, every
failure, error and warning with its node, a progress line at most every ~10 s and the summary;
not one Prefect log record per line (issue 22). The lines are dbt 1.11's, as in dbt-output.log."""

from __future__ import annotations

from flows.warehouse.dbt import Digest

BUILD = """\
04:31:42  Running with dbt=1.11.16
04:31:49  Registered adapter: duckdb=1.11.1
04:32:00  Found 55 models, 1 seed, 298 data tests, 20 sources, 537 macros
04:32:00
04:32:00  Concurrency: 2 threads (target='duckdb')
04:32:00
04:32:02  1 of 6 START sql table model marts.dim_date .................................. [RUN]
04:32:06  1 of 6 OK created sql table model marts.dim_date ............................. [OK in 3.50s]
04:32:06  2 of 6 START test unique_audit_exceptions_exception_id ....................... [RUN]
04:32:06  2 of 6 PASS unique_audit_exceptions_exception_id ............................. [PASS in 0.10s]
04:32:06  3 of 6 START test not_null_fig_annual_figures_value .......................... [RUN]
04:32:07  3 of 6 FAIL 3 not_null_fig_annual_figures_value .............................. [FAIL 3 in 0.12s]
04:32:07  4 of 6 WARN 1 accepted_values_audit_exceptions_rule .......................... [WARN 1 in 0.08s]
04:32:20  5 of 6 OK created sql table model marts.fig_figure_rows ...................... [OK in 0.30s]
04:32:21  6 of 6 ERROR creating sql table model marts.fig_annual_figures ............... [ERROR in 0.20s]
04:32:21
04:32:21  Finished running 1 seed, 3 table models, 2 data tests in 0 hours 0 minutes and 39.00 seconds (39.00s).
04:32:21
04:32:21  Completed with 2 errors, 0 partial successes, and 1 warning:
04:32:21
04:32:21  Failure in test not_null_fig_annual_figures_value (models/marts/figures.yml)
04:32:21    Got 3 results, configured to fail if != 0
04:32:21
04:32:21    compiled code at /tmp/run/dbt/compiled/unionwh/models/marts/figures.yml/not_null.sql
04:32:21
04:32:21  Done. PASS=3 WARN=1 ERROR=2 SKIP=0 NO-OP=0 TOTAL=6
04:32:22  Running with dbt=1.11.16
04:32:22  Building catalog
04:32:25  Catalog written to /tmp/run/dbt/catalog.json
"""


class Clock:
    """Seconds as dbt's timestamps say (the line's time), so progress lines are deterministic."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def digest(text: str) -> list[str]:
    out: list[str] = []
    clock = Clock()
    feed = Digest(out.append, every=10.0, clock=clock)
    for line in text.splitlines():
        h, m, s = (int(x) for x in line[:8].split(":"))
        clock.now = h * 3600 + m * 60 + s
        feed(line)
    return out


def test_the_log_gets_the_start_failures_progress_and_summary_not_every_line() -> None:
    assert digest(BUILD) == [
        "Running with dbt=1.11.16",
        "Found 55 models, 1 seed, 298 data tests, 20 sources, 537 macros",
        "1 of 6 nodes done, 0 failed",  # 24 s after the start
        "3 of 6 FAIL 3 not_null_fig_annual_figures_value .............................. [FAIL 3 in 0.12s]",
        "4 of 6 WARN 1 accepted_values_audit_exceptions_rule .......................... [WARN 1 in 0.08s]",
        "5 of 6 nodes done, 1 failed",  # 14 s after the last progress line
        "6 of 6 ERROR creating sql table model marts.fig_annual_figures ............... [ERROR in 0.20s]",
        "Finished running 1 seed, 3 table models, 2 data tests in 0 hours 0 minutes and 39.00 seconds (39.00s).",
        "Completed with 2 errors, 0 partial successes, and 1 warning:",
        "Failure in test not_null_fig_annual_figures_value (models/marts/figures.yml)",
        "  Got 3 results, configured to fail if != 0",
        "  compiled code at /tmp/run/dbt/compiled/unionwh/models/marts/figures.yml/not_null.sql",
        "Done. PASS=3 WARN=1 ERROR=2 SKIP=0 NO-OP=0 TOTAL=6",
    ]


def test_a_long_build_says_how_far_it_got_at_most_every_ten_seconds() -> None:
    lines = ["00:00:00  Running with dbt=1.11.16"]
    lines += [
        f"00:{i // 60:02d}:{i % 60:02d}  {i} of 300 OK created sql view model m{i} [OK]"
        for i in range(1, 301)
    ]
    lines += ["00:05:00  Completed successfully", "00:05:00  Done. PASS=300 WARN=0 ERROR=0 SKIP=0 TOTAL=300"]
    out = digest("\n".join(lines))
    progress = [line for line in out if line.endswith("nodes done, 0 failed")]
    assert progress[:2] == ["10 of 300 nodes done, 0 failed", "20 of 300 nodes done, 0 failed"]
    assert len(progress) == 30  # 300 s of per-node lines: 30 progress lines instead of 300
    assert out[0] == "Running with dbt=1.11.16"
    assert out[-2:] == ["Completed successfully", "Done. PASS=300 WARN=0 ERROR=0 SKIP=0 TOTAL=300"]
