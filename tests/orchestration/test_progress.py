"""The run log's progress lines state true rates (issue 19: `validate members 1/1 tables,
40,001 rows, 3,646,399,269 rows/s`, the rows counted before the table was validated and
divided by the microseconds since the clock started). Pure: a fake clock, no Prefect."""

from __future__ import annotations

import re

import pytest

from flows.orchestration.progress import MIN_RATE_SECONDS, Progress

pytestmark = pytest.mark.unit


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rate(line: str) -> float | None:
    found = re.search(r", ([\d,]+) rows/s$", line)
    return None if found is None else float(found.group(1).replace(",", ""))


def test_a_single_item_is_timed_over_its_work_not_before_it() -> None:
    """The members case: one table of 40,001 rows whose validation takes 2.5 s."""
    clock, lines = Clock(), []
    progress = Progress("validate members", 1, "tables", lines.append, clock=clock)
    for _table in progress.over(["member"]):
        progress.rows += 40_001
        assert lines == []  # nothing logged before the work is done
        clock.now += 2.5  # the validation
    assert lines == ["validate members 1/1 tables, 40,001 rows in 2.5 s, 16,000 rows/s"]
    assert rate(lines[0]) == round(40_001 / 2.5)


def test_no_rate_below_half_a_second_or_without_rows() -> None:
    clock, lines = Clock(), []
    quick = Progress("load members", 1, "batches", lines.append, clock=clock)
    clock.now += 0.2
    quick.step(39_002)
    assert lines == ["load members 1/1 batches, 39,002 rows in 0.2 s"]
    clock.now += MIN_RATE_SECONDS  # the same rows over 0.7 s: now a rate is stated
    assert quick.line() == "load members 1/1 batches, 39,002 rows in 0.7 s, 55,717 rows/s"

    clock, lines = Clock(), []
    empty = Progress("extract events", 2, "files", lines.append, clock=clock)
    clock.now += 1
    empty.step()
    clock.now += 2
    empty.step()
    assert lines == ["extract events 2/2 files, 0 rows in 3.0 s"]
    assert [rate(x) for x in lines] == [None]


def test_lines_every_few_seconds_and_after_the_last_item() -> None:
    clock, lines = Clock(), []
    progress = Progress("extract welfare", 5, "files", lines.append, every=2.0, clock=clock)
    for _f in progress.over(range(5)):
        clock.now += 1.5
        progress.rows += 1_000
    assert lines == [
        "extract welfare 2/5 files, 2,000 rows in 3.0 s, 667 rows/s",
        "extract welfare 4/5 files, 4,000 rows in 6.0 s, 667 rows/s",
        "extract welfare 5/5 files, 5,000 rows in 7.5 s, 667 rows/s",
    ]


def test_continue_counts_the_item_break_and_failure_do_not() -> None:
    clock, lines = Clock(), []
    progress = Progress("extract registry", 4, "files", lines.append, clock=clock)
    for i in progress.over(range(4)):
        if progress.rows >= 20:
            break  # the slice is full (extract's max_rows): this file is left for the next slice
        if i == 0:
            continue  # a file unchanged since an earlier run: dealt with
        progress.rows += 10
        clock.now += 1
    assert progress.done == 3
    assert lines == ["extract registry 3/4 files, 20 rows in 2.0 s, 10 rows/s"]
    try:
        for _i in progress.over(range(1)):
            raise ValueError("a file changed while it was read")
    except ValueError:
        pass
    assert progress.done == 3
