"""Failure notifications through Apprise (mail, Slack, WeCom, DingTalk, a webhook…).

``notify_url`` (env ``UNIONWH_NOTIFY_URL``) is one Apprise URL or several separated by
spaces; it is a secret (tokens live in it) and is never logged. The message names the
run, its status and the first errors (file, rule, reason: no row values, so no personal
data), and where the run's report files are.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

logger = logging.getLogger(__name__)


def message(run_id: str, status: str, errors: list[str], warehouse: str) -> tuple[str, str]:
    """(title, body) of a failure notification (pure)."""
    title = f"unionwh run {run_id} {status}"
    lines = [f"run {run_id}: {status}", f"warehouse: {warehouse}"]
    if errors:
        lines.append(f"{len(errors)} error(s):")
        lines += [f"- {e[:500]}" for e in errors[:10]]
        if len(errors) > 10:
            lines.append(f"- ... and {len(errors) - 10} more (unionwh status, ops.load_ledger)")
    return title, "\n".join(lines)


def send(url: SecretStr | None, title: str, body: str) -> bool:
    """Send to every configured Apprise URL; False (and a log line) when it did not go out.
    A notification failure never fails the run."""
    if url is None or not url.get_secret_value().strip():
        return False
    import apprise  # deferred: Apprise (~0.5 s), only when a notify_url is set and a run failed

    sender = apprise.Apprise()
    for one in url.get_secret_value().split():
        if not sender.add(one):
            logger.error("notify_url: one of the Apprise URLs is not valid; nothing sent to it")
    if len(sender) == 0:
        return False
    ok = bool(sender.notify(title=title, body=body))
    if not ok:
        logger.error("the failure notification could not be delivered")
    return ok
