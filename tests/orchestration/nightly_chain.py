"""The nightly runs of test_backfill.py, in a child process of the test session:

    python -m tests.orchestration.nightly_chain DAY...

One real ``nightly_load`` flow run per delivery day, in order, each seeing the deliveries up
to its day; only the last one builds (dbt). The environment (landing zone, warehouse,
Prefect API) is the caller's. Prints, as JSON, each run's day, status and ledger size.

Why a child: the test's backfill runs meanwhile in the pytest process, on a warehouse of its
own; each keeps about one of CI's two cores busy, so the two sequences overlap.
"""

from __future__ import annotations

import json
import sys
from datetime import date


def main(argv: list[str]) -> int:
    from flows.nightly import nightly_load

    days = [date.fromisoformat(d) for d in argv]
    runs = []
    for day in days:  # the night after each delivery: the landing zone as it was then
        run = nightly_load(deliveries_to=day, build=day == days[-1])
        runs.append({"day": day.isoformat(), "status": run.status, "ledger": len(run.ledger)})
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
