"""Liveness: a flow run whose process dies is marked Crashed in Prefect within a bounded time.

Two halves, both Prefect's own mechanism (the "zombie flow runs" recipe of the Prefect 3 docs,
docs.prefect.io/v3/advanced/detect-zombie-flows):

- **Heartbeats.** Every Prefect 3.8 flow run, called directly (``unionwh run``, ``unionwh
  backfill``) or started by a Runner (``unionwh serve``), emits a ``prefect.flow-run.heartbeat``
  event every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds from a daemon thread of its own
  process (``prefect.flow_engine._send_heartbeats``): the heartbeats go on while the flow's
  thread is busy in long synchronous work (dbt, waiting for the warehouse lock) and stop when
  the process dies. Prefect's default is 180 s and its minimum 30 s; unionwh sets it to
  ``heartbeat_seconds`` (default 30): :func:`heartbeats` for the flows this process calls,
  ``heartbeat_seconds`` of the Runner for the flow runs ``unionwh serve`` starts.
- **Detection.** A proactive automation on the Prefect server: after a heartbeat of a flow
  run, expect another event of that flow run (a heartbeat or a state change) within
  ``crashed_after_seconds`` (default 90: three missed heartbeats); if none comes, set the flow
  run to CRASHED. It covers unionwh's flows only (by flow name), so a flow of someone else's
  that heartbeats at Prefect's default 180 s on the same server is never marked crashed.
  :func:`install` creates it, or updates it when the bound changed, idempotently; ``unionwh
  serve``, ``unionwh prefect-server`` and ``unionwh liveness`` call it. The server's triggers
  and actions services evaluate it (``prefect server start`` runs them; proactive triggers are
  evaluated every ``PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY``, 5 s), so a killed run is
  Crashed about ``crashed_after_seconds`` after its last heartbeat, plus up to 5 s.

The warehouse lock needs nothing of this: it dies with the process (flows/warehouse/lock.py).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

    from flows.settings import Settings

AUTOMATION_NAME = "unionwh: mark flow runs without heartbeats crashed"
FLOW_NAMES = ("nightly-load", "backfill", "annual-report")
"""The flows the automation watches (flows/nightly.py, flows/backfill.py, flows/report/annual.py)."""
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"


def crash_message(crashed_after_seconds: int) -> str:
    return (
        f"no heartbeat for {crashed_after_seconds} s: the process running this flow run died "
        "(killed, out of memory, machine lost); the warehouse lock died with it"
    )


def automation(crashed_after_seconds: int) -> AutomationCore:
    """The automation (not yet sent to the server)."""
    # deferred: Prefect (~1 s); importing this module stays light (unionwh liveness checks its settings first)
    from prefect.automations import (
        AutomationCore,
        ChangeFlowRunState,
        EventTrigger,
        Posture,
        ResourceSpecification,
    )
    from prefect.client.schemas.objects import StateType  # deferred: Prefect, as above

    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            f"A unionwh flow run ({', '.join(FLOW_NAMES)}) that sends no heartbeat and changes no state "
            f"for {crashed_after_seconds} s is marked Crashed (installed by unionwh)."
        ),
        trigger=EventTrigger(
            after={HEARTBEAT_EVENT},
            # any event of the flow run: a heartbeat, or a state change whatever the state's name
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": list(FLOW_NAMES)}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crashed_after_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=crash_message(crashed_after_seconds))],
    )


def _comparable(a: Any) -> dict[str, Any]:
    return a.model_dump(
        mode="json",
        include={"name", "description", "enabled", "trigger", "actions"},
        exclude={"trigger": {"id"}},
    )


def install(crashed_after_seconds: int) -> str:
    """Create the automation on the server of ``PREFECT_API_URL``, or bring it up to date;
    returns ``created``, ``updated`` or ``unchanged``. Copies left by a race are removed."""
    from prefect.client.orchestration import get_client  # deferred: Prefect (~1 s), see automation()

    wanted = automation(crashed_after_seconds)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if not existing:
            client.create_automation(wanted)
            return "created"
        keep, *extra = existing
        for other in extra:
            client.delete_automation(other.id)
        if _comparable(keep) == _comparable(wanted):
            return "unchanged"
        client.update_automation(keep.id, wanted)
        return "updated"


def install_or_warn(settings: Settings, out: Any = None) -> str | None:
    """:func:`install` for a long-running command: a server that refuses is told, not fatal."""
    try:
        done = install(settings.crashed_after_seconds)
    except Exception as exc:  # noqa: BLE001 - (an old server, a network error: the command still serves)
        print(
            f"unionwh: warning: could not install the liveness automation: {type(exc).__name__}: {exc}",
            file=out or sys.stderr,
        )
        return None
    print(
        f"liveness automation {done}: a flow run silent for {settings.crashed_after_seconds} s is marked "
        f"Crashed (heartbeats every {settings.heartbeat_seconds} s)",
        file=out or sys.stderr,
        flush=True,
    )
    return done


@contextlib.contextmanager
def heartbeats(settings: Settings) -> Iterator[None]:
    """Flow runs started in this block send a heartbeat every ``heartbeat_seconds``."""
    # deferred: Prefect (~1 s), see automation(); the flows the block calls import it anyway
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: settings.heartbeat_seconds}):
        yield
