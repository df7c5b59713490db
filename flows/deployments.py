"""The Prefect deployments of unionwh, served by ``unionwh serve`` (``prefect.serve``).

- ``nightly-load/nightly``: every night at ``nightly_cron`` (default ``0 2 * * *``) in the
  configured time zone (default Asia/Shanghai);
- ``backfill/backfill``: on demand, parameters ``date_from`` and ``date_to``;
- ``annual-report/annual-report``: on demand, parameter ``year``.

The serving process runs each flow run in a child process that inherits its environment,
so URLs, keys and notification targets are configured there (environment or config file),
never as deployment parameters. Flows are referenced by module path, so the deployments
work from any working directory of an installed unionwh.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import serve as prefect_serve
from prefect.flows import EntrypointType
from prefect.schedules import Cron

from flows.backfill import backfill
from flows.nightly import nightly_load
from flows.orchestration import liveness
from flows.report.annual import annual_report
from flows.settings import Settings

TAGS = ["unionwh"]


def deployments(settings: Settings) -> list[Any]:
    common: dict[str, Any] = {"tags": TAGS, "entrypoint_type": EntrypointType.MODULE_PATH}
    return [
        nightly_load.to_deployment(
            name="nightly",
            schedule=Cron(settings.nightly_cron, timezone=settings.timezone),
            description=f"The nightly load: every day at {settings.nightly_cron} ({settings.timezone}).",
            **common,
        ),
        backfill.to_deployment(
            name="backfill",
            description="Replay the deliveries dated date_from..date_to, one run per date.",
            **common,
        ),
        annual_report.to_deployment(
            name="annual-report", description="The year's figures, report and fund-audit workbook.", **common
        ),
    ]


def serve(settings: Settings, limit: int | None = None) -> None:
    """Register the deployments with the Prefect API (``PREFECT_API_URL``) and run their
    flow runs until stopped. With a real server (``PREFECT_API_URL`` set), first install the
    liveness automation (flows/orchestration/liveness.py); the flow runs send a heartbeat
    every ``heartbeat_seconds``."""
    if os.environ.get("PREFECT_API_URL"):
        liveness.install_or_warn(settings)
    # the Runner passes PREFECT_FLOWS_HEARTBEAT_FREQUENCY to the processes of its flow runs
    prefect_serve(*deployments(settings), limit=limit, heartbeat_seconds=settings.heartbeat_seconds)
