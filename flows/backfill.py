"""The ``backfill`` flow: replay the deliveries of a date range in order, one run per delivery date.

Each delivery date becomes its own ``nightly-load`` run (a subflow) that sees only the
delivery folders of that day, exactly as the nightly run of that day would have; the marts
and figures are built once, by the last one. Deliveries already loaded are skipped as in
any run (keyed by file hash), so a backfill over loaded days changes nothing.
"""

from __future__ import annotations

import signal
from datetime import date

from prefect import flow, get_run_logger
from prefect.exceptions import TerminationSignal

from flows.errors import ConfigError
from flows.nightly import nightly_load, runner_cancels, stop_signal
from flows.orchestration import interrupt
from flows.pipeline.extract import delivery_dates
from flows.pipeline.run import CARRIES_ON
from flows.pipeline.state import RunSummary
from flows.settings import settings_for_run


@flow(name="backfill", log_prints=True)
def backfill(
    date_from: date, date_to: date, landing: str | None = None, year: int | None = None, build: bool = True
) -> list[RunSummary]:
    """Replay every delivery folder dated date_from..date_to (inclusive), oldest first.

    date_from, date_to: the delivery-folder dates to replay; landing: landing-zone folder
    (default from settings); year: report year; build: False skips the final dbt build.
    """
    if date_from > date_to:
        raise ConfigError(f"backfill: --from {date_from} is after --to {date_to}")
    settings = settings_for_run(landing=landing, report_year=year)
    logger = get_run_logger()
    days = delivery_dates(settings.landing_dir, (date_from, date_to))
    if not days:
        raise ConfigError(
            f"backfill: no delivery folders dated {date_from}..{date_to} under {settings.landing_dir}"
        )
    earlier = delivery_dates(settings.landing_dir, (None, date_from.fromordinal(date_from.toordinal() - 1)))
    if earlier:
        logger.info(
            "backfill: %d earlier delivery dates (up to %s) are not part of this backfill",
            len(earlier),
            earlier[-1],
        )
    logger.info("backfill: %d delivery dates: %s", len(days), ", ".join(d.isoformat() for d in days))
    runs = []
    with interrupt.watch():
        for i, day in enumerate(days):
            last = i == len(days) - 1
            try:
                # each day's run named for its day in the Prefect UI (not a random name)
                day_run = nightly_load.with_options(flow_run_name=f"deliveries-{day.isoformat()}")
                runs.append(
                    day_run(
                        landing=landing,
                        year=year,
                        deliveries_from=day,
                        deliveries_to=day,
                        build=build and last,
                    )
                )
            except (KeyboardInterrupt, TerminationSignal) as exc:  # Ctrl-C, SIGTERM: the run recorded itself
                if runner_cancels(exc):
                    raise
                raise _stopped(exc, day, i, len(days)) from None
    return runs


def _stopped(exc: BaseException, day: date, done: int, total: int) -> interrupt.Interrupted:
    """The backfill's one line: where it stopped, and what the stopped run (if one had begun) left."""
    signum = stop_signal(exc) or signal.SIGINT
    if isinstance(exc, interrupt.Interrupted) and exc.detail:
        run = exc.detail.removesuffix(CARRIES_ON)
    else:
        run = f"stopped by {interrupt.signal_name(signum)} before the run for that date began"
    return interrupt.Interrupted(
        signum,
        f"backfill stopped at delivery date {day} ({done} of {total} dates done "
        f"before it): {run}; the same backfill again carries on",
    )
